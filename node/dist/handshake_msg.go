package dist

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Wire format of the version 6 distribution handshake (OTP 23+), as OTP's
// erl_dist_protocol documentation describes it. Every message is preceded by
// a 2-byte big-endian length that does not count itself. The functions below
// work on a message body (without the length) so they can be tested and
// fuzzed without a connection; none of them panics on any input.

// Message tags.
const (
	hsTagNameV6         = 'N' // send_name (version 6) and send_challenge
	hsTagNameV5         = 'n' // old send_name (version 5), only accepted
	hsTagStatus         = 's'
	hsTagComplement     = 'c'
	hsTagChallengeReply = 'r'
	hsTagChallengeAck   = 'a'
)

// Status codes of the 's' message.
const (
	hsStatusOK             = "ok"
	hsStatusOKSimultaneous = "ok_simultaneous"
	hsStatusNOK            = "nok"
	hsStatusNotAllowed     = "not_allowed"
	hsStatusAlive          = "alive"
	hsStatusNamed          = "named:"
	hsStatusTrue           = "true"
	hsStatusFalse          = "false"
)

const (
	// hsVersion is the only protocol version spoken.
	hsVersion = 6
	// hsMaxMessage bounds one handshake message body. The largest
	// legitimate one is a challenge with a 255-character UTF-8 name (19 +
	// 1020 bytes); the protocol allows trailing data, so leave room for it.
	hsMaxMessage = 4096
	// hsMaxNameRunes is the longest node name: node names are atoms, and an
	// atom has at most 255 characters.
	hsMaxNameRunes = 255
	// hsDigestLen is the length of an MD5 digest.
	hsDigestLen = md5.Size
)

// hsNameMsg is a decoded send_name message.
type hsNameMsg struct {
	Flags    Flags
	Creation uint32
	Name     string
	// Old is true for a version 5 'n' message: it carries only the low 32
	// flag bits and no creation, which a later complement message supplies.
	Old bool
}

// hsChallengeMsg is a decoded send_challenge message.
type hsChallengeMsg struct {
	Flags     Flags
	Challenge uint32
	Creation  uint32
	Name      string
}

// malformed returns an ErrMalformedHandshake error.
func hsMalformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedHandshake, fmt.Sprintf(format, args...))
}

// hsValidNodeName checks a full node name: valid UTF-8, at most 255
// characters, exactly one '@' with a non-empty name and host around it, and
// no control characters.
func hsValidNodeName(name string) error {
	if name == "" {
		return hsMalformed("empty node name")
	}
	if !utf8.ValidString(name) {
		return hsMalformed("node name is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > hsMaxNameRunes {
		return hsMalformed("node name of %d characters exceeds %d", n, hsMaxNameRunes)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return hsMalformed("node name %q contains a control character", name)
		}
	}
	alive, host, ok := strings.Cut(name, "@")
	if !ok || alive == "" || host == "" || strings.Contains(host, "@") {
		return hsMalformed("node name %q is not of the form name@host", name)
	}
	return nil
}

// hsDecodeName decodes a send_name message ('N', or the old 'n').
func hsDecodeName(b []byte) (hsNameMsg, error) {
	if len(b) == 0 {
		return hsNameMsg{}, hsMalformed("empty name message")
	}
	switch b[0] {
	case hsTagNameV6:
		// 'N' Flags:64 Creation:32 Nlen:16 Name, then data to ignore.
		if len(b) < 15 {
			return hsNameMsg{}, hsMalformed("name message of %d bytes is too short", len(b))
		}
		m := hsNameMsg{
			Flags:    Flags(binary.BigEndian.Uint64(b[1:9])),
			Creation: binary.BigEndian.Uint32(b[9:13]),
		}
		name, err := hsReadName(b[13:], "name")
		if err != nil {
			return hsNameMsg{}, err
		}
		m.Name = name
		return m, nil
	case hsTagNameV5:
		// 'n' Version:16 Flags:32 Name (the rest of the message).
		if len(b) < 7 {
			return hsNameMsg{}, hsMalformed("old name message of %d bytes is too short", len(b))
		}
		if v := binary.BigEndian.Uint16(b[1:3]); v != 5 {
			return hsNameMsg{}, hsMalformed("old name message with version %d, want 5", v)
		}
		return hsNameMsg{
			Flags: Flags(binary.BigEndian.Uint32(b[3:7])),
			Name:  string(b[7:]),
			Old:   true,
		}, nil
	default:
		return hsNameMsg{}, hsMalformed("expected a name message, got tag %q", b[0])
	}
}

// hsAppendName appends a framed version 6 send_name message.
func hsAppendName(dst []byte, flags Flags, creation uint32, name string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(15+len(name)))
	dst = append(dst, hsTagNameV6)
	dst = binary.BigEndian.AppendUint64(dst, uint64(flags))
	dst = binary.BigEndian.AppendUint32(dst, creation)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(name)))
	return append(dst, name...)
}

// hsDecodeStatus decodes a status message and returns the status code. A
// 'named:' status (an answer to a NAME_ME request, which we never make) is
// returned as hsStatusNamed without its payload.
func hsDecodeStatus(b []byte) (string, error) {
	if len(b) == 0 {
		return "", hsMalformed("empty status message")
	}
	if b[0] != hsTagStatus {
		return "", hsMalformed("expected a status message, got tag %q", b[0])
	}
	s := string(b[1:])
	if strings.HasPrefix(s, hsStatusNamed) {
		return hsStatusNamed, nil
	}
	switch s {
	case hsStatusOK, hsStatusOKSimultaneous, hsStatusNOK, hsStatusNotAllowed, hsStatusAlive, hsStatusTrue, hsStatusFalse:
		return s, nil
	}
	return "", hsMalformed("unknown status %q", hsTruncate(s, 32))
}

// hsAppendStatus appends a framed status message.
func hsAppendStatus(dst []byte, status string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(1+len(status)))
	dst = append(dst, hsTagStatus)
	return append(dst, status...)
}

// hsDecodeChallenge decodes a version 6 send_challenge message.
func hsDecodeChallenge(b []byte) (hsChallengeMsg, error) {
	if len(b) == 0 {
		return hsChallengeMsg{}, hsMalformed("empty challenge message")
	}
	if b[0] != hsTagNameV6 {
		return hsChallengeMsg{}, hsMalformed("expected a challenge message, got tag %q", b[0])
	}
	// 'N' Flags:64 Challenge:32 Creation:32 Nlen:16 Name, then data to ignore.
	if len(b) < 19 {
		return hsChallengeMsg{}, hsMalformed("challenge message of %d bytes is too short", len(b))
	}
	m := hsChallengeMsg{
		Flags:     Flags(binary.BigEndian.Uint64(b[1:9])),
		Challenge: binary.BigEndian.Uint32(b[9:13]),
		Creation:  binary.BigEndian.Uint32(b[13:17]),
	}
	name, err := hsReadName(b[17:], "challenge")
	if err != nil {
		return hsChallengeMsg{}, err
	}
	m.Name = name
	return m, nil
}

// hsReadName reads the Nlen:16 Name field at the start of b (data after the
// name is ignored); msg names the message in errors.
func hsReadName(b []byte, msg string) (string, error) {
	nlen := int(binary.BigEndian.Uint16(b))
	if nlen > len(b)-2 {
		return "", hsMalformed("%s message announces a %d-byte name but holds %d", msg, nlen, len(b)-2)
	}
	return string(b[2 : 2+nlen]), nil
}

// hsAppendChallenge appends a framed send_challenge message.
func hsAppendChallenge(dst []byte, flags Flags, challenge, creation uint32, name string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(19+len(name)))
	dst = append(dst, hsTagNameV6)
	dst = binary.BigEndian.AppendUint64(dst, uint64(flags))
	dst = binary.BigEndian.AppendUint32(dst, challenge)
	dst = binary.BigEndian.AppendUint32(dst, creation)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(name)))
	return append(dst, name...)
}

// hsDecodeComplement decodes a complement message: the high 32 flag bits and
// the creation of an initiator that sent the old name message.
func hsDecodeComplement(b []byte) (flagsHigh, creation uint32, err error) {
	if len(b) == 0 {
		return 0, 0, hsMalformed("empty complement message")
	}
	if b[0] != hsTagComplement {
		return 0, 0, hsMalformed("expected a complement message, got tag %q", b[0])
	}
	if len(b) != 9 {
		return 0, 0, hsMalformed("complement message of %d bytes, want 9", len(b))
	}
	return binary.BigEndian.Uint32(b[1:5]), binary.BigEndian.Uint32(b[5:9]), nil
}

// hsDecodeChallengeReply decodes a challenge_reply: the initiator's own
// challenge and its digest of ours.
func hsDecodeChallengeReply(b []byte) (challenge uint32, digest [hsDigestLen]byte, err error) {
	if len(b) == 0 {
		return 0, digest, hsMalformed("empty challenge reply")
	}
	if b[0] != hsTagChallengeReply {
		return 0, digest, hsMalformed("expected a challenge reply, got tag %q", b[0])
	}
	if len(b) != 1+4+hsDigestLen {
		return 0, digest, hsMalformed("challenge reply of %d bytes, want %d", len(b), 1+4+hsDigestLen)
	}
	copy(digest[:], b[5:])
	return binary.BigEndian.Uint32(b[1:5]), digest, nil
}

// hsAppendChallengeReply appends a framed challenge_reply message.
func hsAppendChallengeReply(dst []byte, challenge uint32, digest [hsDigestLen]byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 1+4+hsDigestLen)
	dst = append(dst, hsTagChallengeReply)
	dst = binary.BigEndian.AppendUint32(dst, challenge)
	return append(dst, digest[:]...)
}

// hsDecodeChallengeAck decodes a challenge_ack: the acceptor's digest of our
// challenge.
func hsDecodeChallengeAck(b []byte) (digest [hsDigestLen]byte, err error) {
	if len(b) == 0 {
		return digest, hsMalformed("empty challenge ack")
	}
	if b[0] != hsTagChallengeAck {
		return digest, hsMalformed("expected a challenge ack, got tag %q", b[0])
	}
	if len(b) != 1+hsDigestLen {
		return digest, hsMalformed("challenge ack of %d bytes, want %d", len(b), 1+hsDigestLen)
	}
	copy(digest[:], b[1:])
	return digest, nil
}

// hsAppendChallengeAck appends a framed challenge_ack message.
func hsAppendChallengeAck(dst []byte, digest [hsDigestLen]byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 1+hsDigestLen)
	dst = append(dst, hsTagChallengeAck)
	return append(dst, digest[:]...)
}

// hsDigest is OTP's gen_digest: MD5 of the cookie followed by the challenge
// written as an unsigned decimal number.
func hsDigest(challenge uint32, cookie string) [hsDigestLen]byte {
	b := make([]byte, 0, len(cookie)+10)
	b = append(b, cookie...)
	b = strconv.AppendUint(b, uint64(challenge), 10)
	return md5.Sum(b)
}

// hsExpandMandatory25 applies OTP 25's shorthand: a peer that sets
// MANDATORY_25_DIGEST has every flag of FlagsMandatory25.
func hsExpandMandatory25(f Flags) Flags {
	if f&FlagMandatory25Digest != 0 {
		return f | FlagsMandatory25
	}
	return f
}

func hsTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
