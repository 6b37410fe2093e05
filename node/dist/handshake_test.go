package dist

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/testutil"

	"github.com/ergo-services/ergo/node"
	"go.uber.org/goleak"
)

func ergoDefaultFlags() node.Flags { return node.DefaultFlags() }

// Unit tests of the handshake: the message codec, and whole handshakes over
// net.Pipe against our own other side or against a scripted peer that plays
// OTP's part byte by byte.

const (
	testSelf   = "b@127.0.0.1"
	testPeer   = "a@127.0.0.1"
	testCookie = "sesame-cookie-7f3a"
)

// syncBuffer collects a logger's concurrent writes.
type syncBuffer = testutil.SyncBuffer

// observation is one ObserveHandshake call's direction and result.
type observation struct {
	Dir    Direction
	Result ConnectResult
}

type recordingObserver struct {
	mu     sync.Mutex
	events []HandshakeEvent
}

func (r *recordingObserver) ObserveHandshake(e HandshakeEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recordingObserver) all() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]observation, len(r.events))
	for i, e := range r.events {
		out[i] = observation{e.Direction, e.Result}
	}
	return out
}

// peers returns the peer names of the events, in order.
func (r *recordingObserver) peers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = e.Peer
	}
	return out
}

func (r *recordingObserver) count(o observation) int {
	n := 0
	for _, got := range r.all() {
		if got == o {
			n++
		}
	}
	return n
}

func (r *recordingObserver) has(o observation) bool {
	for _, got := range r.all() {
		if got == o {
			return true
		}
	}
	return false
}

// fakeConnections is an in-memory Connections.
type fakeConnections struct {
	mu           sync.Mutex
	connected    map[string]bool
	disconnected []string
}

func (f *fakeConnections) Connected(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected[node]
}

func (f *fakeConnections) Disconnect(_ context.Context, node string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.connected, node)
	f.disconnected = append(f.disconnected, node)
	return nil
}

func (f *fakeConnections) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.disconnected...)
}

type testHS struct {
	*Handshake
	logs *syncBuffer
	obs  *recordingObserver
}

func newTestHS(t *testing.T, name string, mutate func(*HandshakeConfig)) testHS {
	t.Helper()
	logs := &syncBuffer{}
	obs := &recordingObserver{}
	cfg := DefaultHandshakeConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Observer = obs
	cfg.HandshakeTimeout = 10 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := NewHandshake(cfg)
	if err != nil {
		t.Fatalf("NewHandshake: %v", err)
	}
	if err := h.Init(name, 42, ergoDefaultFlags()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, logs.String())
		}
	})
	return testHS{h, logs, obs}
}

func pipeAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242} }

// frame prefixes a message body with its 2-byte length.
func frame(body []byte) []byte {
	return append([]byte{byte(len(body) >> 8), byte(len(body))}, body...)
}

// oldName is the framed version 5 name message an OTP 23/24 node sends
// when it does not know our version: low 32 flag bits, no creation.
func oldName(f Flags, name string) []byte {
	b := []byte{'n', 0, 5}
	b = binary.BigEndian.AppendUint32(b, uint32(f))
	return frame(append(b, name...))
}

// readMsg reads one framed handshake message on the scripted peer's side.
func readMsg(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Errorf("peer: read length: %v", err)
		return nil
	}
	b := make([]byte, int(hdr[0])<<8|int(hdr[1]))
	if _, err := io.ReadFull(r, b); err != nil {
		t.Errorf("peer: read body: %v", err)
		return nil
	}
	return b
}

func TestHandshakeDigestMatchesOTP(t *testing.T) {
	// erlang:md5([atom_to_list(secret)|integer_to_list(3735928559)]) on OTP 25.
	want := "c3939b31d7a913d82e2ace09247c7b41"
	d := hsDigest(3735928559, "secret")
	if got := hex.EncodeToString(d[:]); got != want {
		t.Fatalf("digest = %s, want %s", got, want)
	}
}

func TestHandshakeConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*HandshakeConfig)
		want   []string
	}{
		{"default", func(*HandshakeConfig) {}, nil},
		{"zero timeout", func(c *HandshakeConfig) { c.HandshakeTimeout = 0 }, []string{"HandshakeTimeout"}},
		{"no handshake 23", func(c *HandshakeConfig) { c.Flags &^= FlagHandshake23 }, []string{"HANDSHAKE_23"}},
		{"name me", func(c *HandshakeConfig) { c.Flags |= FlagNameMe; c.Required |= FlagNameMe }, []string{"Flags must not include NAME_ME", "Required flags must not"}},
		{"everything wrong", func(c *HandshakeConfig) { c.HandshakeTimeout = -1; c.Flags = FlagNameMe }, []string{"HandshakeTimeout", "HANDSHAKE_23", "NAME_ME"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultHandshakeConfig()
			tt.mutate(&cfg)
			before := cfg
			err := cfg.Validate()
			if cfg != before {
				t.Errorf("Validate modified the config")
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := NewHandshake(cfg); err != nil {
					t.Fatalf("NewHandshake: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors mentioning %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			if _, err := NewHandshake(cfg); err == nil {
				t.Errorf("NewHandshake accepted an invalid config")
			}
		})
	}
}

func TestHandshakeDefaultFlags(t *testing.T) {
	f := DefaultHandshakeConfig().Flags
	for _, want := range []Flags{FlagsMandatory25, FlagsMandatory26, FlagPublished, FlagDistMonitor,
		FlagDistMonitorName, FlagSendSender, FlagExitPayload, FlagFragments, FlagSpawn, FlagAlias,
		FlagAltactSig, FlagBigSeqtraceLabels, FlagMandatory25Digest} {
		if !f.Has(want) {
			t.Errorf("default flags lack %s", f.Missing(want))
		}
	}
	for _, not := range []Flags{FlagDistHdrAtomCache, FlagNameMe, FlagAtomCache} {
		if f&not != 0 {
			t.Errorf("default flags include %s", not)
		}
	}
	h := newTestHS(t, testSelf, func(c *HandshakeConfig) { c.Hidden = true })
	if h.Flags()&FlagPublished != 0 {
		t.Errorf("hidden handshake advertises PUBLISHED")
	}
}

func TestHandshakeDecideStatus(t *testing.T) {
	tests := []struct {
		name               string
		self, peer         string
		dialing, connected bool
		want               string
	}{
		{"fresh", "b@h", "a@h", false, false, hsStatusOK},
		{"simultaneous, our name greater", "b@h", "a@h", true, false, hsStatusNOK},
		{"simultaneous, their name greater", "a@h", "b@h", true, false, hsStatusOKSimultaneous},
		{"already connected", "a@h", "b@h", false, true, hsStatusAlive},
		{"byte order like Erlang atoms", "Z@h", "a@h", true, false, hsStatusOKSimultaneous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hsDecideStatus(tt.self, tt.peer, tt.dialing, tt.connected); got != tt.want {
				t.Errorf("hsDecideStatus = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHandshakeCodecRoundTrip(t *testing.T) {
	flags := DefaultHandshakeFlags | FlagAltactSig
	t.Run("name", func(t *testing.T) {
		b := hsAppendName(nil, flags, 0xdeadbeef, testPeer)
		m, err := hsDecodeName(b[2:])
		if err != nil {
			t.Fatal(err)
		}
		if want := (hsNameMsg{Flags: flags, Creation: 0xdeadbeef, Name: testPeer}); m != want {
			t.Fatalf("got %+v, want %+v", m, want)
		}
	})
	t.Run("challenge", func(t *testing.T) {
		b := hsAppendChallenge(nil, flags, 7, 9, testSelf)
		m, err := hsDecodeChallenge(b[2:])
		if err != nil {
			t.Fatal(err)
		}
		if want := (hsChallengeMsg{Flags: flags, Challenge: 7, Creation: 9, Name: testSelf}); m != want {
			t.Fatalf("got %+v, want %+v", m, want)
		}
	})
	t.Run("status", func(t *testing.T) {
		for _, s := range []string{hsStatusOK, hsStatusOKSimultaneous, hsStatusNOK, hsStatusNotAllowed, hsStatusAlive, hsStatusTrue, hsStatusFalse} {
			got, err := hsDecodeStatus(hsAppendStatus(nil, s)[2:])
			if err != nil || got != s {
				t.Errorf("status %q: got %q, %v", s, got, err)
			}
		}
	})
	t.Run("complement", func(t *testing.T) {
		hi, cr, err := hsDecodeComplement(hsAppendComplement(nil, 0x1234, 0x5678)[2:])
		if err != nil || hi != 0x1234 || cr != 0x5678 {
			t.Fatalf("got %x %x %v", hi, cr, err)
		}
	})
	t.Run("reply and ack", func(t *testing.T) {
		d := hsDigest(99, testCookie)
		ch, got, err := hsDecodeChallengeReply(hsAppendChallengeReply(nil, 77, d)[2:])
		if err != nil || ch != 77 || got != d {
			t.Fatalf("reply: got %d %x %v", ch, got, err)
		}
		got, err = hsDecodeChallengeAck(hsAppendChallengeAck(nil, d)[2:])
		if err != nil || got != d {
			t.Fatalf("ack: got %x %v", got, err)
		}
	})
	t.Run("trailing data after the name is ignored", func(t *testing.T) {
		b := append(hsAppendName(nil, flags, 1, testPeer)[2:], "future"...)
		m, err := hsDecodeName(b)
		if err != nil || m.Name != testPeer {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
}

func TestHandshakeDecodeErrors(t *testing.T) {
	name := hsAppendName(nil, DefaultHandshakeFlags, 1, testPeer)[2:]
	challenge := hsAppendChallenge(nil, DefaultHandshakeFlags, 1, 2, testPeer)[2:]
	tests := []struct {
		name   string
		decode func([]byte) error
		in     []byte
	}{
		{"name empty", decodeNameErr, nil},
		{"name wrong tag", decodeNameErr, []byte("s" + "ok")},
		{"name short", decodeNameErr, name[:10]},
		{"name length beyond message", decodeNameErr, name[:len(name)-1]},
		{"old name short", decodeNameErr, []byte{'n', 0, 5, 0}},
		{"old name wrong version", decodeNameErr, []byte{'n', 0, 6, 0, 0, 0, 0, 'a', '@', 'b'}},
		{"status empty", decodeStatusErr, nil},
		{"status wrong tag", decodeStatusErr, []byte("xok")},
		{"status unknown", decodeStatusErr, []byte("sbogus")},
		{"challenge wrong tag", decodeChallengeErr, name},
		{"challenge short", decodeChallengeErr, challenge[:18]},
		{"challenge length beyond message", decodeChallengeErr, challenge[:len(challenge)-1]},
		{"complement short", decodeComplementErr, []byte{'c', 0, 0, 0, 0, 0, 0, 0}},
		{"complement long", decodeComplementErr, []byte{'c', 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"complement wrong tag", decodeComplementErr, []byte{'x', 0, 0, 0, 0, 0, 0, 0, 0}},
		{"reply short", decodeReplyErr, make([]byte, 20)},
		{"reply wrong tag", decodeReplyErr, make([]byte, 21)},
		{"ack short", decodeAckErr, []byte{'a', 1, 2}},
		{"ack wrong tag", decodeAckErr, make([]byte, 17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.in)
			if !errors.Is(err, ErrMalformedHandshake) {
				t.Fatalf("error = %v, want ErrMalformedHandshake", err)
			}
		})
	}
}

func decodeNameErr(b []byte) error       { _, err := hsDecodeName(b); return err }
func decodeStatusErr(b []byte) error     { _, err := hsDecodeStatus(b); return err }
func decodeChallengeErr(b []byte) error  { _, err := hsDecodeChallenge(b); return err }
func decodeComplementErr(b []byte) error { _, _, err := hsDecodeComplement(b); return err }
func decodeReplyErr(b []byte) error      { _, _, err := hsDecodeChallengeReply(b); return err }
func decodeAckErr(b []byte) error        { _, err := hsDecodeChallengeAck(b); return err }
func validNameErr(s string) error        { return hsValidNodeName(s) }
func mustNotContain(t *testing.T, what, s, secret string) {
	t.Helper()
	if strings.Contains(s, secret) {
		t.Errorf("%s reveals the cookie: %s", what, s)
	}
}

func TestHandshakeNodeNames(t *testing.T) {
	good := []string{"a@b", "node@127.0.0.1", "my-app_1@host.example.com", "ünï@hóst", strings.Repeat("a", 127) + "@" + strings.Repeat("b", 127)}
	bad := []string{"", "a", "@b", "a@", "a@b@c", "a@b\x00", "a@b\n", string([]byte{'a', '@', 0xff}), strings.Repeat("a", 200) + "@" + strings.Repeat("b", 60)}
	for _, n := range good {
		if err := validNameErr(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := validNameErr(n); !errors.Is(err, ErrMalformedHandshake) {
			t.Errorf("%q: error %v, want ErrMalformedHandshake", n, err)
		}
	}
}

type hsOutcome struct {
	details any
	name    string
	peer    Peer
	err     error
}

// runPair runs a Start (initiator a) against an Accept (acceptor b) over net.Pipe.
func runPair(t *testing.T, a, b testHS, cookieA, cookieB string) (out, in hsOutcome) {
	t.Helper()
	ca, cb := net.Pipe()
	t.Cleanup(func() { ca.Close(); cb.Close() })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d, err := b.Accept(pipeAddr(), cb, false, cookieB)
		p, _ := d.Custom.(Peer)
		in = hsOutcome{d, d.Name, p, err}
		if err != nil {
			cb.Close()
		}
	}()
	d, err := a.Start(pipeAddr(), ca, false, cookieA)
	p, _ := d.Custom.(Peer)
	out = hsOutcome{d, d.Name, p, err}
	if err != nil {
		ca.Close()
	}
	wg.Wait()
	return out, in
}

func TestHandshakeGoToGo(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a := newTestHS(t, testPeer, nil)
	b := newTestHS(t, testSelf, func(c *HandshakeConfig) { c.Hidden = true })
	out, in := runPair(t, a, b, testCookie, testCookie)
	if out.err != nil || in.err != nil {
		t.Fatalf("start: %v, accept: %v", out.err, in.err)
	}
	if out.name != testSelf || in.name != testPeer {
		t.Errorf("names: start got %q, accept got %q", out.name, in.name)
	}
	wantOut := Peer{Name: testSelf, Ours: a.Flags(), Theirs: b.Flags() | FlagsMandatory25, Creation: 42, Initiator: true}
	if out.peer != wantOut {
		t.Errorf("start peer = %+v, want %+v", out.peer, wantOut)
	}
	if in.peer.Initiator || in.peer.Theirs != a.Flags()|FlagsMandatory25 || in.peer.Creation != 42 {
		t.Errorf("accept peer = %+v", in.peer)
	}
	if out.peer.Negotiated()&FlagPublished != 0 {
		t.Errorf("a hidden peer negotiated PUBLISHED")
	}
	if !a.obs.has(observation{DirectionOut, ResultOK}) || !b.obs.has(observation{DirectionIn, ResultOK}) {
		t.Errorf("observations: a %v, b %v", a.obs.all(), b.obs.all())
	}
	if got, got2 := a.obs.peers(), b.obs.peers(); !slices.Equal(got, []string{testSelf}) || !slices.Equal(got2, []string{testPeer}) {
		t.Errorf("observed peers: a %q, want [%s]; b %q, want [%s]", got, testSelf, got2, testPeer)
	}
	if !strings.Contains(a.logs.String(), "component=dist.handshake") {
		t.Errorf("log lines lack component=dist.handshake:\n%s", a.logs.String())
	}
}

func TestHandshakeGoToGoDetails(t *testing.T) {
	a := newTestHS(t, testPeer, nil)
	b := newTestHS(t, testSelf, nil)
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	errc := make(chan error, 1)
	go func() { _, err := b.Accept(pipeAddr(), cb, false, testCookie); errc <- err }()
	d, err := a.Start(pipeAddr(), ca, false, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if d.Version != 6 || d.NumHandlers != 1 || d.Buffer != nil || d.Creation != 42 {
		t.Errorf("details = %+v", d)
	}
	f := d.Flags
	if !f.Enable || !f.EnableBigCreation || !f.EnableBigPidRef || !f.EnableFragmentation || !f.EnableAlias ||
		!f.EnableRemoteSpawn || f.EnableHeaderAtomCache || f.EnableCompression || f.EnableProxy {
		t.Errorf("ergo flags = %+v", f)
	}
}

func TestHandshakeWrongCookie(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a := newTestHS(t, testPeer, nil)
	b := newTestHS(t, testSelf, nil)
	const otherCookie = "another-cookie-91c2"
	out, in := runPair(t, a, b, testCookie, otherCookie)
	if !errors.Is(in.err, ErrWrongCookie) {
		t.Errorf("accept error = %v, want ErrWrongCookie", in.err)
	}
	if !errors.Is(out.err, ErrWrongCookie) {
		t.Errorf("start error = %v, want ErrWrongCookie", out.err)
	}
	for _, h := range []testHS{a, b} {
		for _, c := range []string{testCookie, otherCookie} {
			mustNotContain(t, "log", h.logs.String(), c)
		}
	}
	for _, e := range []error{in.err, out.err} {
		for _, c := range []string{testCookie, otherCookie} {
			mustNotContain(t, "error", e.Error(), c)
		}
	}
	if !strings.Contains(b.logs.String(), "cookie mismatch") || !strings.Contains(b.logs.String(), "peer="+testPeer) {
		t.Errorf("acceptor log lacks the cookie mismatch line:\n%s", b.logs.String())
	}
	if !strings.Contains(a.logs.String(), "cookie mismatch") || !strings.Contains(a.logs.String(), "peer="+testSelf) {
		t.Errorf("initiator log lacks the cookie mismatch line:\n%s", a.logs.String())
	}
	if !a.obs.has(observation{DirectionOut, ResultBadCookie}) || !b.obs.has(observation{DirectionIn, ResultBadCookie}) {
		t.Errorf("observations: a %v, b %v", a.obs.all(), b.obs.all())
	}
	// Both sides learned the other's name before the cookie failed.
	if got, got2 := a.obs.peers(), b.obs.peers(); !slices.Equal(got, []string{testSelf}) || !slices.Equal(got2, []string{testPeer}) {
		t.Errorf("observed peers: a %q, want [%s]; b %q, want [%s]", got, testSelf, got2, testPeer)
	}
}

func TestHandshakeMissingFlags(t *testing.T) {
	tests := []struct {
		name    string
		lacking Flags
		want    []string
	}{
		{"OTP 26 flags", FlagsMandatory26, []string{"UNLINK_ID", "V4_NC"}},
		{"one OTP 25 flag", FlagMapTag | FlagMandatory25Digest, []string{"MAP_TAG"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestHS(t, testPeer, func(c *HandshakeConfig) {
				c.Flags &^= tt.lacking
				c.Required = 0
			})
			b := newTestHS(t, testSelf, nil)
			out, in := runPair(t, a, b, testCookie, testCookie)
			if !errors.Is(in.err, ErrMissingFlags) {
				t.Fatalf("accept error = %v, want ErrMissingFlags", in.err)
			}
			if !errors.Is(out.err, ErrNotAllowed) {
				t.Errorf("start error = %v, want ErrNotAllowed", out.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(in.err.Error(), w) || !strings.Contains(b.logs.String(), w) {
					t.Errorf("error %q or log does not name %s", in.err, w)
				}
			}
			if !b.obs.has(observation{DirectionIn, ResultMissingFlags}) || !a.obs.has(observation{DirectionOut, ResultRefused}) {
				t.Errorf("observations: a %v, b %v", a.obs.all(), b.obs.all())
			}
		})
	}
	t.Run("initiator refuses an acceptor", func(t *testing.T) {
		a := newTestHS(t, testPeer, nil)
		b := newTestHS(t, testSelf, func(c *HandshakeConfig) {
			c.Flags &^= FlagUnlinkID
			c.Required = 0
		})
		out, _ := runPair(t, a, b, testCookie, testCookie)
		if !errors.Is(out.err, ErrMissingFlags) || !strings.Contains(out.err.Error(), "UNLINK_ID") {
			t.Fatalf("start error = %v, want ErrMissingFlags naming UNLINK_ID", out.err)
		}
	})
}

// scripted runs fn as the peer on one end of a pipe and returns the other end.
func scripted(t *testing.T, fn func(peer net.Conn)) net.Conn {
	t.Helper()
	ours, peer := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer peer.Close()
		fn(peer)
	}()
	t.Cleanup(func() {
		ours.Close()
		<-done
	})
	return ours
}

// otpAcceptor plays an OTP acceptor up to and including the status answer,
// then the challenge; it returns the challenge it sent.
func otpAcceptorChallenge(t *testing.T, peer net.Conn, status string) (uint32, bool) {
	t.Helper()
	if m := readMsg(t, peer); len(m) == 0 || m[0] != 'N' {
		t.Errorf("peer: first message %q, want a name", m)
		return 0, false
	}
	if _, err := peer.Write(hsAppendStatus(nil, status)); err != nil {
		return 0, false
	}
	const challenge = 123456789
	if _, err := peer.Write(hsAppendChallenge(nil, DefaultHandshakeFlags, challenge, 7, testSelf)); err != nil {
		return 0, false
	}
	return challenge, true
}

func TestHandshakeStartScripted(t *testing.T) {
	tests := []struct {
		name    string
		peer    func(t *testing.T, peer net.Conn)
		wantErr error
		result  ConnectResult
	}{
		{
			name: "ok_simultaneous continues",
			peer: func(t *testing.T, peer net.Conn) {
				ch, ok := otpAcceptorChallenge(t, peer, hsStatusOKSimultaneous)
				if !ok {
					return
				}
				finishAsAcceptor(t, peer, ch)
			},
			result: ResultOK,
		},
		{
			name: "alive is answered true and continues",
			peer: func(t *testing.T, peer net.Conn) {
				readMsg(t, peer)
				peer.Write(hsAppendStatus(nil, hsStatusAlive))
				if got, err := hsDecodeStatus(readMsg(t, peer)); err != nil || got != hsStatusTrue {
					t.Errorf("peer: answer to alive = %q, %v; want true", got, err)
					return
				}
				peer.Write(hsAppendChallenge(nil, DefaultHandshakeFlags, 5, 7, testSelf))
				finishAsAcceptor(t, peer, 5)
			},
			result: ResultOK,
		},
		{
			name: "nok",
			peer: func(t *testing.T, peer net.Conn) {
				readMsg(t, peer)
				peer.Write(hsAppendStatus(nil, hsStatusNOK))
			},
			wantErr: ErrPeerRefused, result: ResultRefused,
		},
		{
			name: "not_allowed",
			peer: func(t *testing.T, peer net.Conn) {
				readMsg(t, peer)
				peer.Write(hsAppendStatus(nil, hsStatusNotAllowed))
			},
			wantErr: ErrNotAllowed, result: ResultRefused,
		},
		{
			name: "named: without asking",
			peer: func(t *testing.T, peer net.Conn) {
				readMsg(t, peer)
				peer.Write(frame([]byte("snamed:\x00\x03a@b\x00\x00\x00\x01")))
			},
			wantErr: ErrMalformedHandshake, result: ResultError,
		},
		{
			name: "closes before the status",
			peer: func(t *testing.T, peer net.Conn) {
				readMsg(t, peer)
			},
			wantErr: ErrConnectionClosed, result: ResultError,
		},
		{
			name: "truncated challenge",
			peer: func(t *testing.T, peer net.Conn) {
				readMsg(t, peer)
				peer.Write(hsAppendStatus(nil, hsStatusOK))
				c := hsAppendChallenge(nil, DefaultHandshakeFlags, 1, 2, testSelf)
				peer.Write(c[:len(c)-4])
			},
			wantErr: ErrConnectionClosed, result: ResultError,
		},
		{
			name: "oversized message",
			peer: func(t *testing.T, peer net.Conn) {
				readMsg(t, peer)
				peer.Write([]byte{0xff, 0xff, 's'})
			},
			wantErr: ErrMalformedHandshake, result: ResultError,
		},
		{
			name: "bad challenge ack",
			peer: func(t *testing.T, peer net.Conn) {
				if _, ok := otpAcceptorChallenge(t, peer, hsStatusOK); !ok {
					return
				}
				readMsg(t, peer)
				peer.Write(hsAppendChallengeAck(nil, [16]byte{1, 2, 3}))
			},
			wantErr: ErrWrongCookie, result: ResultBadCookie,
		},
		{
			name: "challenge with our own name",
			peer: func(t *testing.T, peer net.Conn) {
				readMsg(t, peer)
				peer.Write(hsAppendStatus(nil, hsStatusOK))
				peer.Write(hsAppendChallenge(nil, DefaultHandshakeFlags, 1, 2, testPeer))
			},
			wantErr: ErrNotAllowed, result: ResultRefused,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHS(t, testPeer, nil)
			conn := scripted(t, func(peer net.Conn) { tt.peer(t, peer) })
			d, err := h.Start(pipeAddr(), conn, false, testCookie)
			conn.Close()
			if tt.wantErr == nil {
				if err != nil || d.Name != testSelf {
					t.Fatalf("Start = %q, %v; want %s", d.Name, err, testSelf)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Start error = %v, want %v", err, tt.wantErr)
			}
			if got := h.obs.all(); len(got) != 1 || got[0] != (observation{DirectionOut, tt.result}) {
				t.Errorf("observations = %v, want [{out %s}]", got, tt.result)
			}
		})
	}
}

// finishAsAcceptor checks the initiator's challenge reply and acknowledges it.
func finishAsAcceptor(t *testing.T, peer net.Conn, challenge uint32) {
	t.Helper()
	theirs, digest, err := hsDecodeChallengeReply(readMsg(t, peer))
	if err != nil {
		t.Errorf("peer: %v", err)
		return
	}
	if digest != hsDigest(challenge, testCookie) {
		t.Errorf("peer: wrong digest from the initiator")
		return
	}
	peer.Write(hsAppendChallengeAck(nil, hsDigest(theirs, testCookie)))
}

// otpInitiator plays an OTP initiator: it sends name and reads the status.
func otpInitiatorName(t *testing.T, peer net.Conn, name string, flags Flags) string {
	t.Helper()
	peer.Write(hsAppendName(nil, flags, 3, name))
	s, err := hsDecodeStatus(readMsg(t, peer))
	if err != nil {
		t.Errorf("peer: status: %v", err)
	}
	return s
}

// finishAsInitiator reads the challenge, replies and checks the ack.
func finishAsInitiator(t *testing.T, peer net.Conn, cookie string) {
	t.Helper()
	ch, err := hsDecodeChallenge(readMsg(t, peer))
	if err != nil {
		t.Errorf("peer: challenge: %v", err)
		return
	}
	const mine = 987654321
	peer.Write(hsAppendChallengeReply(nil, mine, hsDigest(ch.Challenge, cookie)))
	b := readMsg(t, peer)
	if b == nil {
		return
	}
	d, err := hsDecodeChallengeAck(b)
	if err != nil || d != hsDigest(mine, cookie) {
		t.Errorf("peer: bad ack %x, %v", d, err)
	}
}

func TestHandshakeAcceptScripted(t *testing.T) {
	tests := []struct {
		name      string
		connected bool
		dialing   bool
		self      string
		peer      func(t *testing.T, peer net.Conn)
		wantErr   error
		result    ConnectResult
		// wantDisconnect: the old connection must have been closed.
		wantDisconnect bool
	}{
		{
			name: "plain",
			peer: func(t *testing.T, peer net.Conn) {
				if s := otpInitiatorName(t, peer, testPeer, DefaultHandshakeFlags); s != hsStatusOK {
					t.Errorf("status %q, want ok", s)
				}
				finishAsInitiator(t, peer, testCookie)
			},
			result: ResultOK,
		},
		{
			name: "old name message and complement (OTP 23/24 without epmd)",
			peer: func(t *testing.T, peer net.Conn) {
				peer.Write(oldName(DefaultHandshakeFlags, testPeer))
				if s, _ := hsDecodeStatus(readMsg(t, peer)); s != hsStatusOK {
					t.Errorf("status %q, want ok", s)
				}
				ch, err := hsDecodeChallenge(readMsg(t, peer))
				if err != nil {
					t.Errorf("peer: %v", err)
					return
				}
				peer.Write(hsAppendComplement(nil, uint32(DefaultHandshakeFlags>>32), 77))
				peer.Write(hsAppendChallengeReply(nil, 1, hsDigest(ch.Challenge, testCookie)))
				readMsg(t, peer)
			},
			result: ResultOK,
		},
		{
			name: "old name message whose complement lacks OTP 26 flags",
			peer: func(t *testing.T, peer net.Conn) {
				peer.Write(oldName(DefaultHandshakeFlags, testPeer))
				readMsg(t, peer)
				readMsg(t, peer)
				peer.Write(hsAppendComplement(nil, 0, 77))
			},
			wantErr: ErrMissingFlags, result: ResultMissingFlags,
		},
		{
			name:    "simultaneous, our name greater: nok",
			dialing: true,
			peer: func(t *testing.T, peer net.Conn) {
				if s := otpInitiatorName(t, peer, testPeer, DefaultHandshakeFlags); s != hsStatusNOK {
					t.Errorf("status %q, want nok", s)
				}
			},
			wantErr: ErrSimultaneousConnect, result: ResultRefused,
		},
		{
			name:    "simultaneous, their name greater: ok_simultaneous",
			dialing: true,
			self:    "0@127.0.0.1",
			peer: func(t *testing.T, peer net.Conn) {
				if s := otpInitiatorName(t, peer, testPeer, DefaultHandshakeFlags); s != hsStatusOKSimultaneous {
					t.Errorf("status %q, want ok_simultaneous", s)
				}
				finishAsInitiator(t, peer, testCookie)
			},
			result: ResultOK,
		},
		{
			name:      "alive answered true replaces the old connection",
			connected: true,
			peer: func(t *testing.T, peer net.Conn) {
				if s := otpInitiatorName(t, peer, testPeer, DefaultHandshakeFlags); s != hsStatusAlive {
					t.Errorf("status %q, want alive", s)
				}
				peer.Write(hsAppendStatus(nil, hsStatusTrue))
				finishAsInitiator(t, peer, testCookie)
			},
			result: ResultOK, wantDisconnect: true,
		},
		{
			name:      "alive answered false",
			connected: true,
			peer: func(t *testing.T, peer net.Conn) {
				otpInitiatorName(t, peer, testPeer, DefaultHandshakeFlags)
				peer.Write(hsAppendStatus(nil, hsStatusFalse))
			},
			wantErr: ErrPeerRefused, result: ResultRefused,
		},
		{
			name:      "alive answered true with a wrong cookie keeps the old connection",
			connected: true,
			peer: func(t *testing.T, peer net.Conn) {
				otpInitiatorName(t, peer, testPeer, DefaultHandshakeFlags)
				peer.Write(hsAppendStatus(nil, hsStatusTrue))
				ch, _ := hsDecodeChallenge(readMsg(t, peer))
				peer.Write(hsAppendChallengeReply(nil, 1, hsDigest(ch.Challenge, "not-"+testCookie)))
			},
			wantErr: ErrWrongCookie, result: ResultBadCookie,
		},
		{
			name: "dynamic name request",
			peer: func(t *testing.T, peer net.Conn) {
				if s := otpInitiatorName(t, peer, "127.0.0.1", DefaultHandshakeFlags|FlagNameMe); s != hsStatusNotAllowed {
					t.Errorf("status %q, want not_allowed", s)
				}
			},
			wantErr: ErrNotAllowed, result: ResultRefused,
		},
		{
			name: "our own name",
			peer: func(t *testing.T, peer net.Conn) {
				otpInitiatorName(t, peer, testSelf, DefaultHandshakeFlags)
			},
			wantErr: ErrNotAllowed, result: ResultRefused,
		},
		{
			name: "absurd name",
			peer: func(t *testing.T, peer net.Conn) {
				peer.Write(hsAppendName(nil, DefaultHandshakeFlags, 1, strings.Repeat("x", 300)+"@h"))
			},
			wantErr: ErrMalformedHandshake, result: ResultError,
		},
		{
			name: "closes after the status",
			peer: func(t *testing.T, peer net.Conn) {
				otpInitiatorName(t, peer, testPeer, DefaultHandshakeFlags)
			},
			wantErr: ErrConnectionClosed, result: ResultError,
		},
		{
			name: "zero-length message",
			peer: func(t *testing.T, peer net.Conn) {
				peer.Write([]byte{0, 0})
			},
			wantErr: ErrMalformedHandshake, result: ResultError,
		},
		{
			name: "wrong message instead of the reply",
			peer: func(t *testing.T, peer net.Conn) {
				otpInitiatorName(t, peer, testPeer, DefaultHandshakeFlags)
				readMsg(t, peer)
				peer.Write(hsAppendStatus(nil, hsStatusOK))
			},
			wantErr: ErrMalformedHandshake, result: ResultError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conns := &fakeConnections{connected: map[string]bool{testPeer: tt.connected}}
			self := tt.self
			if self == "" {
				self = testSelf
			}
			h := newTestHS(t, self, func(c *HandshakeConfig) { c.Connections = conns })
			if tt.dialing {
				defer h.Dialing(testPeer)()
			}
			conn := scripted(t, func(peer net.Conn) { tt.peer(t, peer) })
			d, err := h.Accept(pipeAddr(), conn, false, testCookie)
			conn.Close()
			if tt.wantErr == nil {
				if err != nil || d.Name != testPeer {
					t.Fatalf("Accept = %q, %v; want %s", d.Name, err, testPeer)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Accept error = %v, want %v", err, tt.wantErr)
			}
			if got := h.obs.all(); len(got) != 1 || got[0] != (observation{DirectionIn, tt.result}) {
				t.Errorf("observations = %v, want [{in %s}]", got, tt.result)
			}
			if disc := conns.calls(); tt.wantDisconnect != (len(disc) == 1) {
				t.Errorf("Disconnect calls = %v, want disconnect: %v", disc, tt.wantDisconnect)
			}
		})
	}
}

func TestHandshakeAcceptOldNameCreation(t *testing.T) {
	h := newTestHS(t, testSelf, nil)
	conn := scripted(t, func(peer net.Conn) {
		f := DefaultHandshakeFlags
		peer.Write(oldName(f, testPeer))
		readMsg(t, peer)
		ch, _ := hsDecodeChallenge(readMsg(t, peer))
		peer.Write(hsAppendComplement(nil, uint32(f>>32), 77))
		peer.Write(hsAppendChallengeReply(nil, 1, hsDigest(ch.Challenge, testCookie)))
		readMsg(t, peer)
	})
	d, err := h.Accept(pipeAddr(), conn, false, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	p := d.Custom.(Peer)
	if p.Creation != 77 || d.Creation != 77 || !p.Theirs.Has(FlagsMandatory26) {
		t.Errorf("peer = %+v, want creation 77 and the complement's high flags", p)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	for _, dir := range []Direction{DirectionIn, DirectionOut} {
		t.Run(string(dir), func(t *testing.T) {
			h := newTestHS(t, testSelf, func(c *HandshakeConfig) { c.HandshakeTimeout = 50 * time.Millisecond })
			// The peer reads what it is sent and never answers.
			conn := scripted(t, func(peer net.Conn) { io.Copy(io.Discard, peer) })
			var err error
			if dir == DirectionIn {
				_, err = h.Accept(pipeAddr(), conn, false, testCookie)
			} else {
				_, err = h.Start(pipeAddr(), conn, false, testCookie)
			}
			conn.Close()
			if !errors.Is(err, ErrHandshakeTimeout) {
				t.Fatalf("error = %v, want ErrHandshakeTimeout", err)
			}
			if got := h.obs.all(); len(got) != 1 || got[0] != (observation{dir, ResultTimeout}) {
				t.Errorf("observations = %v", got)
			}
		})
	}
}

func TestHandshakeNotInitialized(t *testing.T) {
	h, err := NewHandshake(DefaultHandshakeConfig())
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := h.Start(pipeAddr(), a, false, testCookie); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("Start error = %v", err)
	}
	if _, err := h.Accept(pipeAddr(), a, false, testCookie); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("Accept error = %v", err)
	}
	if err := h.Init("no-at-sign", 1, ergoDefaultFlags()); !errors.Is(err, ErrMalformedHandshake) {
		t.Errorf("Init with a bad name: %v", err)
	}
}

// TestHandshakeReadsNothingPast: bytes the peer sends right after the last
// handshake message stay in the connection for the proto.
func TestHandshakeReadsNothingPast(t *testing.T) {
	after := []byte{0, 0, 0, 0, 0, 0, 0, 3, 'x', 'y', 'z'}
	t.Run("start", func(t *testing.T) {
		h := newTestHS(t, testPeer, nil)
		conn := scripted(t, func(peer net.Conn) {
			ch, ok := otpAcceptorChallenge(t, peer, hsStatusOK)
			if !ok {
				return
			}
			theirs, _, _ := hsDecodeChallengeReply(readMsg(t, peer))
			peer.Write(append(hsAppendChallengeAck(nil, hsDigest(theirs, testCookie)), after...))
			_ = ch
		})
		if _, err := h.Start(pipeAddr(), conn, false, testCookie); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(after))
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, after) {
			t.Fatalf("after the handshake read %q, %v; want %q", got, err, after)
		}
	})
	t.Run("accept", func(t *testing.T) {
		h := newTestHS(t, testSelf, nil)
		conn := scripted(t, func(peer net.Conn) {
			otpInitiatorName(t, peer, testPeer, DefaultHandshakeFlags)
			ch, _ := hsDecodeChallenge(readMsg(t, peer))
			// net.Pipe is synchronous: read the ack while the reply and the
			// bytes after it are still being written.
			ackRead := make(chan struct{})
			go func() { readMsg(t, peer); close(ackRead) }()
			peer.Write(append(hsAppendChallengeReply(nil, 1, hsDigest(ch.Challenge, testCookie)), after...))
			<-ackRead
		})
		if _, err := h.Accept(pipeAddr(), conn, false, testCookie); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(after))
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, after) {
			t.Fatalf("after the handshake read %q, %v; want %q", got, err, after)
		}
	})
}

func TestHandshakeDialing(t *testing.T) {
	h := newTestHS(t, testSelf, nil)
	done1 := h.Dialing(testPeer)
	done2 := h.Dialing(testPeer)
	done1()
	done1() // idempotent
	if !h.isDialing(testPeer) {
		t.Fatalf("second attempt no longer marked")
	}
	done2()
	if h.isDialing(testPeer) {
		t.Fatalf("still marked after both attempts ended")
	}
}

// TestHandshakeSuperseded: once Accept has let a simultaneous incoming
// attempt from P win (ok_simultaneous), our own attempt to P gives way, as
// OTP's net_kernel kills it.
func TestHandshakeSuperseded(t *testing.T) {
	tests := []struct {
		name string
		// peer plays the acceptor of our Start once the incoming attempt won.
		peer       func(t *testing.T, peer net.Conn)
		wantStatus string // what our Start must answer to alive, if asked
	}{
		{
			name: "alive is answered false",
			peer: func(t *testing.T, peer net.Conn) {
				peer.Write(hsAppendStatus(nil, hsStatusAlive))
				if got, err := hsDecodeStatus(readMsg(t, peer)); err != nil || got != hsStatusFalse {
					t.Errorf("peer: answer to alive = %q, %v; want false", got, err)
				}
			},
		},
		{
			name: "the challenge names the winner",
			peer: func(t *testing.T, peer net.Conn) {
				peer.Write(hsAppendStatus(nil, hsStatusOK))
				peer.Write(hsAppendChallenge(nil, DefaultHandshakeFlags, 1, 2, "z@127.0.0.1"))
				var b [1]byte
				if n, _ := peer.Read(b[:]); n != 0 {
					t.Errorf("peer: the initiator went on after giving way")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const winner = "z@127.0.0.1" // greater than ours: its attempt wins
			conns := &fakeConnections{connected: map[string]bool{}}
			h := newTestHS(t, "a@127.0.0.1", func(c *HandshakeConfig) { c.Connections = conns })
			defer h.Dialing(winner)()
			nameRead := make(chan struct{})
			proceed := make(chan struct{})
			out := scripted(t, func(peer net.Conn) {
				readMsg(t, peer)
				close(nameRead)
				<-proceed
				tt.peer(t, peer)
			})
			startErr := make(chan error, 1)
			go func() {
				_, err := h.Start(pipeAddr(), out, false, testCookie)
				out.Close()
				startErr <- err
			}()
			<-nameRead
			// The winner's incoming attempt completes while ours waits.
			in := scripted(t, func(peer net.Conn) {
				if s := otpInitiatorName(t, peer, winner, DefaultHandshakeFlags); s != hsStatusOKSimultaneous {
					t.Errorf("status %q, want ok_simultaneous", s)
				}
				finishAsInitiator(t, peer, testCookie)
			})
			if _, err := h.Accept(pipeAddr(), in, false, testCookie); err != nil {
				t.Fatalf("Accept: %v", err)
			}
			conns.mu.Lock()
			conns.connected[winner] = true
			conns.mu.Unlock()
			close(proceed)
			if err := <-startErr; !errors.Is(err, ErrPeerRefused) {
				t.Fatalf("Start error = %v, want ErrPeerRefused", err)
			}
		})
	}
}

// hsAppendComplement appends a framed complement message (for tests that
// play an OTP 23/24 initiator; we never send the old name message).
func hsAppendComplement(dst []byte, flagsHigh, creation uint32) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 9)
	dst = append(dst, hsTagComplement)
	dst = binary.BigEndian.AppendUint32(dst, flagsHigh)
	return binary.BigEndian.AppendUint32(dst, creation)
}
