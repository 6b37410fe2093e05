package dist

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// Fuzz tests: no input makes a decoder or a whole handshake panic, every
// failure is one of the handshake's errors, and what decodes re-encodes to
// the same fields.

func FuzzHandshakeDecodeName(f *testing.F) {
	f.Add(hsAppendName(nil, DefaultHandshakeFlags, 1, testPeer)[2:])
	f.Add(oldName(DefaultHandshakeFlags, testPeer)[2:])
	f.Add([]byte{'N'})
	f.Add([]byte{'n', 0, 5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := hsDecodeName(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedHandshake) {
				t.Fatalf("error %v is not ErrMalformedHandshake", err)
			}
			return
		}
		if m.Old || len(m.Name) > 0xffff {
			return
		}
		again, err := hsDecodeName(hsAppendName(nil, m.Flags, m.Creation, m.Name)[2:])
		if err != nil || again != m {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", m, again, err)
		}
	})
}

func FuzzHandshakeDecodeStatus(f *testing.F) {
	for _, s := range []string{"ok", "ok_simultaneous", "nok", "not_allowed", "alive", "true", "false", "named:\x00\x03a@b\x00\x00\x00\x01"} {
		f.Add(append([]byte{'s'}, s...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := hsDecodeStatus(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedHandshake) {
				t.Fatalf("error %v is not ErrMalformedHandshake", err)
			}
			return
		}
		if s == hsStatusNamed {
			return
		}
		if again, err := hsDecodeStatus(hsAppendStatus(nil, s)[2:]); err != nil || again != s {
			t.Fatalf("status %q re-decodes to %q, %v", s, again, err)
		}
	})
}

func FuzzHandshakeDecodeChallenge(f *testing.F) {
	f.Add(hsAppendChallenge(nil, DefaultHandshakeFlags, 7, 9, testSelf)[2:])
	f.Add([]byte{'N', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := hsDecodeChallenge(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedHandshake) {
				t.Fatalf("error %v is not ErrMalformedHandshake", err)
			}
			return
		}
		again, err := hsDecodeChallenge(hsAppendChallenge(nil, m.Flags, m.Challenge, m.Creation, m.Name)[2:])
		if err != nil || again != m {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", m, again, err)
		}
	})
}

func FuzzHandshakeDecodeComplement(f *testing.F) {
	f.Add(hsAppendComplement(nil, 0x7, 0x1234)[2:])
	f.Fuzz(func(t *testing.T, b []byte) {
		hi, cr, err := hsDecodeComplement(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedHandshake) {
				t.Fatalf("error %v is not ErrMalformedHandshake", err)
			}
			return
		}
		if !bytes.Equal(hsAppendComplement(nil, hi, cr)[2:], b) {
			t.Fatalf("complement does not round-trip")
		}
	})
}

func FuzzHandshakeDecodeChallengeReply(f *testing.F) {
	f.Add(hsAppendChallengeReply(nil, 5, hsDigest(5, testCookie))[2:])
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, d, err := hsDecodeChallengeReply(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedHandshake) {
				t.Fatalf("error %v is not ErrMalformedHandshake", err)
			}
			return
		}
		if !bytes.Equal(hsAppendChallengeReply(nil, ch, d)[2:], b) {
			t.Fatalf("challenge reply does not round-trip")
		}
	})
}

func FuzzHandshakeDecodeChallengeAck(f *testing.F) {
	f.Add(hsAppendChallengeAck(nil, hsDigest(5, testCookie))[2:])
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := hsDecodeChallengeAck(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedHandshake) {
				t.Fatalf("error %v is not ErrMalformedHandshake", err)
			}
			return
		}
		if !bytes.Equal(hsAppendChallengeAck(nil, d)[2:], b) {
			t.Fatalf("challenge ack does not round-trip")
		}
	})
}

// streamConn is a connection whose peer's bytes are fixed in advance and
// whose writes are discarded: a whole handshake against arbitrary input.
type streamConn struct{ r io.Reader }

func (c streamConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c streamConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c streamConn) SetWriteDeadline(time.Time) error { return nil }

// handshakeErrors are the sentinels a failed handshake against a byte
// stream may wrap (a stream never times out and no cookie can match a
// digest made without knowing our random challenge, except by chance); a
// stream that starts like a TLS record is a TLS node talking to a plain one.
var handshakeErrors = []error{ErrMalformedHandshake, ErrConnectionClosed, ErrWrongCookie, ErrMissingFlags,
	ErrPeerRefused, ErrNotAllowed, ErrSimultaneousConnect, ErrTLS}

func checkHandshakeError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, want := range handshakeErrors {
		if errors.Is(err, want) {
			return
		}
	}
	t.Fatalf("error %v wraps none of the handshake's errors", err)
}

func FuzzHandshakeAccept(f *testing.F) {
	valid := append(hsAppendName(nil, DefaultHandshakeFlags, 1, testPeer), hsAppendChallengeReply(nil, 1, [16]byte{})...)
	f.Add(valid)
	f.Add(append(oldName(DefaultHandshakeFlags, testPeer), hsAppendComplement(nil, 0xff, 1)...))
	f.Add(append(hsAppendName(nil, DefaultHandshakeFlags, 1, testPeer), hsAppendStatus(nil, "true")...))
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		h := newFuzzHS(t, testSelf)
		_, err := h.Accept(pipeAddr(), streamConn{bytes.NewReader(b)}, false, testCookie)
		checkHandshakeError(t, err)
	})
}

func FuzzHandshakeStart(f *testing.F) {
	f.Add(append(hsAppendStatus(nil, "ok"), hsAppendChallenge(nil, DefaultHandshakeFlags, 1, 2, testSelf)...))
	f.Add(append(hsAppendStatus(nil, "alive"), hsAppendChallenge(nil, 0, 1, 2, testSelf)...))
	f.Add(hsAppendStatus(nil, "nok"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := newFuzzHS(t, testPeer)
		_, err := h.Start(pipeAddr(), streamConn{bytes.NewReader(b)}, false, testCookie)
		checkHandshakeError(t, err)
	})
}

func newFuzzHS(t *testing.T, name string) *Handshake {
	cfg := DefaultHandshakeConfig()
	// Every other node looks connected, so the alive path is fuzzed too.
	cfg.Connections = &fakeConnections{connected: map[string]bool{testPeer: true, testSelf: true}}
	h, err := NewHandshake(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Init(name, 1, ergoDefaultFlags()); err != nil {
		t.Fatal(err)
	}
	return h
}
