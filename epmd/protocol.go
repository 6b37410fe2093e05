package epmd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultPort is the TCP port every BEAM node asks for EPMD (ERL_EPMD_PORT).
const DefaultPort = 4369

// Message tags of the EPMD protocol (OTP's erl_dist_protocol, "EPMD Protocol").
const (
	TagAlive2Req      byte = 120 // 'x': register a node
	TagAlive2Resp     byte = 121 // 'y': registration answer, 16-bit creation
	TagAlive2XResp    byte = 118 // 'v': registration answer, 32-bit creation (OTP 23+)
	TagPortPlease2Req byte = 122 // 'z': look a node up by name
	TagPort2Resp      byte = 119 // 'w': lookup answer
	TagNamesReq       byte = 110 // 'n': list registered names
)

// NodeType is the node type field of ALIVE2_REQ and PORT2_RESP.
type NodeType uint8

// Node types.
const (
	NodeTypeNormal NodeType = 77 // a published Erlang node
	NodeTypeHidden NodeType = 72 // a hidden node (C node, erl -hidden)
)

// ProtocolTCP is the only protocol value in use: TCP over IPv4 or IPv6.
const ProtocolTCP uint8 = 0

// Distribution protocol versions as EPMD knows them. OTP 23 and later register
// 6 as their highest version; EPMD answers them with ALIVE2_X_RESP.
const (
	DistVersion5 uint16 = 5
	DistVersion6 uint16 = 6
)

// Limits, equal to those of OTP's epmd.
const (
	// MaxNameChars is the longest node name in characters (an atom's limit).
	MaxNameChars = 255
	// MaxNameBytes is the longest node name in bytes (255 UTF-8 characters).
	MaxNameBytes = 255 * 4
	// MaxExtraBytes is the longest Extra field.
	MaxExtraBytes = 255 * 4
	// MaxRequestLen is the longest request body (the bytes after the 2-byte
	// length): an ALIVE2_REQ with the longest name and extra.
	MaxRequestLen = 13 + MaxNameBytes + MaxExtraBytes
	// MaxNamesRespLen bounds a NAMES_REQ reply a Client accepts.
	MaxNamesRespLen = 1 << 20
)

// Result codes (the Result byte) of ALIVE2_RESP and PORT2_RESP. Any non-zero value is an error;
// OTP's epmd uses 1.
const (
	CodeOK    uint8 = 0
	CodeError uint8 = 1
)

// ErrMalformed wraps every decoding error: a packet whose length, tag or
// fields do not follow the protocol.
var ErrMalformed = errors.New("epmd: malformed packet")

// ErrInvalidName wraps every node-name problem: empty, longer than EPMD allows,
// not UTF-8, or containing NUL.
var ErrInvalidName = errors.New("epmd: invalid node name")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// ValidateName checks a node name (the part before '@') against EPMD's rules:
// 1 to 255 UTF-8 characters, at most MaxNameBytes bytes, no NUL byte.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidName)
	case len(name) > MaxNameBytes:
		return fmt.Errorf("%w: the name is %d bytes long, over %d", ErrInvalidName, len(name), MaxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the name is not valid UTF-8", ErrInvalidName)
	case utf8.RuneCountInString(name) > MaxNameChars:
		return fmt.Errorf("%w: the name is %d characters long, over %d", ErrInvalidName, utf8.RuneCountInString(name), MaxNameChars)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: the name contains a NUL byte", ErrInvalidName)
	}
	return nil
}

// NodeInfo is what a node registers (ALIVE2_REQ) and what a lookup returns
// (PORT2_RESP).
type NodeInfo struct {
	// Name is the node name without '@host'.
	Name string
	// Port is the node's distribution listen port.
	Port uint16
	// Type is NodeTypeNormal or NodeTypeHidden.
	Type NodeType
	// Protocol is ProtocolTCP.
	Protocol uint8
	// HighestVersion and LowestVersion are the distribution versions the node
	// speaks (OTP 23+: 6 and 5).
	HighestVersion uint16
	LowestVersion  uint16
	// Extra is opaque data stored with the registration, usually empty.
	Extra []byte
}

func (n NodeInfo) validate() error {
	if err := ValidateName(n.Name); err != nil {
		return err
	}
	if len(n.Extra) > MaxExtraBytes {
		return fmt.Errorf("epmd: extra is %d bytes long, over %d", len(n.Extra), MaxExtraBytes)
	}
	return nil
}

// appendNode appends PortNo..Extra, the layout ALIVE2_REQ and PORT2_RESP share.
func (n NodeInfo) appendNode(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, n.Port)
	b = append(b, byte(n.Type), n.Protocol)
	b = binary.BigEndian.AppendUint16(b, n.HighestVersion)
	b = binary.BigEndian.AppendUint16(b, n.LowestVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(n.Name)))
	b = append(b, n.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(n.Extra)))
	return append(b, n.Extra...)
}

// decodeNode decodes PortNo..Extra from b, which must hold exactly that.
func decodeNode(what string, b []byte) (NodeInfo, error) {
	const fixed = 2 + 1 + 1 + 2 + 2 + 2 // port, type, protocol, high, low, nlen
	if len(b) < fixed+2 {
		return NodeInfo{}, malformed("%s: %d bytes, want at least %d", what, len(b), fixed+2)
	}
	n := NodeInfo{
		Port:           binary.BigEndian.Uint16(b[0:2]),
		Type:           NodeType(b[2]),
		Protocol:       b[3],
		HighestVersion: binary.BigEndian.Uint16(b[4:6]),
		LowestVersion:  binary.BigEndian.Uint16(b[6:8]),
	}
	nlen := int(binary.BigEndian.Uint16(b[8:10]))
	rest := b[fixed:]
	if len(rest) < nlen+2 {
		return NodeInfo{}, malformed("%s: name length %d overruns the %d bytes left", what, nlen, len(rest)-2)
	}
	n.Name = string(rest[:nlen])
	rest = rest[nlen:]
	elen := int(binary.BigEndian.Uint16(rest[0:2]))
	rest = rest[2:]
	if len(rest) != elen {
		return NodeInfo{}, malformed("%s: extra length %d, but %d bytes follow", what, elen, len(rest))
	}
	if elen > 0 {
		n.Extra = bytes.Clone(rest)
	}
	if err := n.validate(); err != nil {
		return NodeInfo{}, fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	return n, nil
}

// Request is one of *Alive2Req, *PortPlease2Req or *NamesReq.
type Request interface {
	// Kind names the request for observers.
	Kind() RequestKind
	// AppendBinary appends the framed request (2-byte length, then the body).
	AppendBinary(b []byte) ([]byte, error)
}

// Alive2Req registers a node (ALIVE2_REQ).
type Alive2Req struct {
	Node NodeInfo
}

// Kind implements Request.
func (*Alive2Req) Kind() RequestKind { return RequestAlive2 }

// AppendBinary implements Request.
func (r *Alive2Req) AppendBinary(b []byte) ([]byte, error) {
	if err := r.Node.validate(); err != nil {
		return b, err
	}
	body := 1 + 12 + len(r.Node.Name) + len(r.Node.Extra)
	b = binary.BigEndian.AppendUint16(b, uint16(body))
	b = append(b, TagAlive2Req)
	return r.Node.appendNode(b), nil
}

// PortPlease2Req asks for a node's port by name (PORT_PLEASE2_REQ).
type PortPlease2Req struct {
	Name string
}

// Kind implements Request.
func (*PortPlease2Req) Kind() RequestKind { return RequestPortPlease2 }

// AppendBinary implements Request.
func (r *PortPlease2Req) AppendBinary(b []byte) ([]byte, error) {
	if err := ValidateName(r.Name); err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(1+len(r.Name)))
	b = append(b, TagPortPlease2Req)
	return append(b, r.Name...), nil
}

// NamesReq asks for every registered name (NAMES_REQ).
type NamesReq struct{}

// Kind implements Request.
func (*NamesReq) Kind() RequestKind { return RequestNames }

// AppendBinary implements Request.
func (*NamesReq) AppendBinary(b []byte) ([]byte, error) {
	return append(b, 0, 1, TagNamesReq), nil
}

// DecodeRequest decodes a request body: the bytes after the 2-byte length,
// starting with the tag. An unknown tag is an error wrapping both
// ErrMalformed and ErrUnknownRequest.
func DecodeRequest(body []byte) (Request, error) {
	if len(body) == 0 {
		return nil, malformed("empty request")
	}
	if len(body) > MaxRequestLen {
		return nil, malformed("request of %d bytes, over %d", len(body), MaxRequestLen)
	}
	switch tag, rest := body[0], body[1:]; tag {
	case TagAlive2Req:
		n, err := decodeNode("ALIVE2_REQ", rest)
		if err != nil {
			return nil, err
		}
		return &Alive2Req{Node: n}, nil
	case TagPortPlease2Req:
		// OTP's epmd accepts one trailing NUL (old C clients sent one).
		if len(rest) > 0 && rest[len(rest)-1] == 0 {
			rest = rest[:len(rest)-1]
		}
		name := string(rest)
		if err := ValidateName(name); err != nil {
			return nil, fmt.Errorf("%w: PORT_PLEASE2_REQ: %w", ErrMalformed, err)
		}
		return &PortPlease2Req{Name: name}, nil
	case TagNamesReq:
		if len(rest) != 0 {
			return nil, malformed("NAMES_REQ: %d unexpected bytes after the tag", len(rest))
		}
		return &NamesReq{}, nil
	default:
		return nil, fmt.Errorf("%w: %w: tag %d", ErrMalformed, ErrUnknownRequest, tag)
	}
}

// ErrUnknownRequest is wrapped (with ErrMalformed) for a request whose tag is
// not one this package serves (DUMP, KILL and STOP are deliberately absent).
var ErrUnknownRequest = errors.New("unknown request")

// ReadRequest reads one framed request. io.EOF means the peer closed before
// sending any byte; a partial frame is io.ErrUnexpectedEOF.
func ReadRequest(r io.Reader) (Request, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 {
		return nil, malformed("request length 0")
	}
	if n > MaxRequestLen {
		return nil, malformed("request length %d, over %d", n, MaxRequestLen)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return DecodeRequest(body)
}

// Alive2Resp answers ALIVE2_REQ.
type Alive2Resp struct {
	// Result is CodeOK or an error code.
	Result uint8
	// Creation identifies this incarnation of the registered name.
	Creation uint32
	// Extended selects ALIVE2_X_RESP (32-bit creation), which EPMD sends to
	// nodes whose highest version is 6 or more; otherwise ALIVE2_RESP with a
	// 16-bit creation.
	Extended bool
}

// AppendBinary appends the response (responses are not length-framed).
func (r Alive2Resp) AppendBinary(b []byte) ([]byte, error) {
	if r.Extended {
		b = append(b, TagAlive2XResp, r.Result)
		return binary.BigEndian.AppendUint32(b, r.Creation), nil
	}
	if r.Creation > 0xffff {
		return b, fmt.Errorf("epmd: creation %d does not fit ALIVE2_RESP's 16 bits", r.Creation)
	}
	b = append(b, TagAlive2Resp, r.Result)
	return binary.BigEndian.AppendUint16(b, uint16(r.Creation)), nil
}

// DecodeAlive2Resp decodes a complete ALIVE2_RESP or ALIVE2_X_RESP.
func DecodeAlive2Resp(b []byte) (Alive2Resp, error) {
	return ReadAlive2Resp(bytes.NewReader(b), len(b))
}

// ReadAlive2Resp reads ALIVE2_RESP or ALIVE2_X_RESP from a stream. When
// exact >= 0 the response must be exactly that many bytes (used by
// DecodeAlive2Resp); pass -1 for a stream.
func ReadAlive2Resp(r io.Reader, exact int) (Alive2Resp, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Alive2Resp{}, readErr("ALIVE2 response", err)
	}
	var resp Alive2Resp
	var want int
	switch hdr[0] {
	case TagAlive2Resp:
		want = 4
	case TagAlive2XResp:
		want, resp.Extended = 6, true
	default:
		return Alive2Resp{}, malformed("ALIVE2 response: tag %d, want %d or %d", hdr[0], TagAlive2Resp, TagAlive2XResp)
	}
	if exact >= 0 && exact != want {
		return Alive2Resp{}, malformed("ALIVE2 response: %d bytes, want %d", exact, want)
	}
	resp.Result = hdr[1]
	var c [4]byte
	if _, err := io.ReadFull(r, c[:want-2]); err != nil {
		return Alive2Resp{}, readErr("ALIVE2 response", err)
	}
	if resp.Extended {
		resp.Creation = binary.BigEndian.Uint32(c[:])
	} else {
		resp.Creation = uint32(binary.BigEndian.Uint16(c[:2]))
	}
	return resp, nil
}

// Port2Resp answers PORT_PLEASE2_REQ: Result CodeOK and the node, or an
// error code alone.
type Port2Resp struct {
	Result uint8
	Node   NodeInfo
}

// AppendBinary appends the response (not length-framed).
func (r Port2Resp) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, TagPort2Resp, r.Result)
	if r.Result != CodeOK {
		return b, nil
	}
	if err := r.Node.validate(); err != nil {
		return b, err
	}
	return r.Node.appendNode(b), nil
}

// DecodePort2Resp decodes a complete PORT2_RESP.
func DecodePort2Resp(b []byte) (Port2Resp, error) {
	if len(b) < 2 {
		return Port2Resp{}, malformed("PORT2_RESP: %d bytes, want at least 2", len(b))
	}
	if b[0] != TagPort2Resp {
		return Port2Resp{}, malformed("PORT2_RESP: tag %d, want %d", b[0], TagPort2Resp)
	}
	resp := Port2Resp{Result: b[1]}
	if resp.Result != CodeOK {
		if len(b) != 2 {
			return Port2Resp{}, malformed("PORT2_RESP: error result with %d extra bytes", len(b)-2)
		}
		return resp, nil
	}
	n, err := decodeNode("PORT2_RESP", b[2:])
	if err != nil {
		return Port2Resp{}, err
	}
	resp.Node = n
	return resp, nil
}

// ReadPort2Resp reads a PORT2_RESP from a stream. EPMD closes the
// connection after it, so the stream is read to its end (at most
// 14+MaxNameBytes+MaxExtraBytes bytes) and decoded strictly.
func ReadPort2Resp(r io.Reader) (Port2Resp, error) {
	const max = 14 + MaxNameBytes + MaxExtraBytes
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return Port2Resp{}, readErr("PORT2_RESP", err)
	}
	if len(b) > max {
		return Port2Resp{}, malformed("PORT2_RESP: over %d bytes", max)
	}
	return DecodePort2Resp(b)
}

// NameEntry is one line of a NAMES_REQ reply.
type NameEntry struct {
	Name string
	Port int
}

// NamesResp answers NAMES_REQ: EPMD's own port, then one
// "name <Name> at port <Port>\n" line per registered node.
type NamesResp struct {
	EPMDPort uint32
	Nodes    []NameEntry
}

// AppendBinary appends the response (not length-framed).
func (r NamesResp) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, r.EPMDPort)
	for _, n := range r.Nodes {
		if err := ValidateName(n.Name); err != nil {
			return b, err
		}
		if strings.IndexByte(n.Name, '\n') >= 0 {
			return b, fmt.Errorf("%w: %q has a newline, which a NAMES reply cannot carry", ErrInvalidName, n.Name)
		}
		if n.Port < 0 || n.Port > 65535 {
			return b, fmt.Errorf("epmd: port %d out of range", n.Port)
		}
		b = append(b, "name "...)
		b = append(b, n.Name...)
		b = append(b, " at port "...)
		b = strconv.AppendInt(b, int64(n.Port), 10)
		b = append(b, '\n')
	}
	return b, nil
}

// DecodeNamesResp decodes a complete NAMES_REQ reply.
func DecodeNamesResp(b []byte) (NamesResp, error) {
	if len(b) < 4 {
		return NamesResp{}, malformed("NAMES reply: %d bytes, want at least 4", len(b))
	}
	if len(b) > MaxNamesRespLen {
		return NamesResp{}, malformed("NAMES reply: %d bytes, over %d", len(b), MaxNamesRespLen)
	}
	resp := NamesResp{EPMDPort: binary.BigEndian.Uint32(b[:4])}
	text := b[4:]
	if len(text) > 0 && text[len(text)-1] != '\n' {
		return NamesResp{}, malformed("NAMES reply: the last line is not terminated")
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, MaxNamesRespLen)
	for line := 1; sc.Scan(); line++ {
		e, err := parseNameLine(sc.Text())
		if err != nil {
			return NamesResp{}, fmt.Errorf("%w: NAMES reply line %d: %w", ErrMalformed, line, err)
		}
		resp.Nodes = append(resp.Nodes, e)
	}
	if err := sc.Err(); err != nil {
		return NamesResp{}, fmt.Errorf("%w: NAMES reply: %w", ErrMalformed, err)
	}
	return resp, nil
}

func parseNameLine(s string) (NameEntry, error) {
	rest, ok := strings.CutPrefix(s, "name ")
	if !ok {
		return NameEntry{}, fmt.Errorf("%q does not start with \"name \"", s)
	}
	i := strings.LastIndex(rest, " at port ")
	if i < 0 {
		return NameEntry{}, fmt.Errorf("%q has no \" at port \"", s)
	}
	name, portText := rest[:i], rest[i+len(" at port "):]
	if err := ValidateName(name); err != nil {
		return NameEntry{}, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return NameEntry{}, fmt.Errorf("bad port in %q: %w", s, err)
	}
	return NameEntry{Name: name, Port: int(port)}, nil
}

// readErr reports a failed read: a stream that ends early is malformed (and
// io.ErrUnexpectedEOF); any other I/O error is returned as it is.
func readErr(what string, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("epmd: %s: %w", what, err)
}
