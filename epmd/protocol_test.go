package epmd_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gonode/gonode/epmd"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	return want
}

var erlNode = epmd.NodeInfo{
	Name:           "a",
	Port:           40123,
	Type:           epmd.NodeTypeNormal,
	Protocol:       epmd.ProtocolTCP,
	HighestVersion: epmd.DistVersion6,
	LowestVersion:  epmd.DistVersion5,
}

func TestRequestGolden(t *testing.T) {
	withExtra := erlNode
	withExtra.Name = "gonode"
	withExtra.Type = epmd.NodeTypeHidden
	withExtra.Extra = []byte{1, 2, 3}
	utf8Name := erlNode
	utf8Name.Name = "nœud"
	tests := []struct {
		name string
		req  epmd.Request
	}{
		{"alive2_req", &epmd.Alive2Req{Node: erlNode}},
		{"alive2_req_hidden_extra", &epmd.Alive2Req{Node: withExtra}},
		{"alive2_req_utf8", &epmd.Alive2Req{Node: utf8Name}},
		{"port_please2_req", &epmd.PortPlease2Req{Name: "gonode"}},
		{"names_req", &epmd.NamesReq{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.req.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			want := golden(t, tt.name, got)
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n%v\nwant\n%v", got, want)
			}
			back, err := epmd.ReadRequest(bytes.NewReader(want))
			if err != nil {
				t.Fatalf("ReadRequest(golden): %v", err)
			}
			if !reflect.DeepEqual(back, tt.req) {
				t.Fatalf("decoded %#v, want %#v", back, tt.req)
			}
		})
	}
}

func TestResponseGolden(t *testing.T) {
	type codec struct {
		encode func([]byte) ([]byte, error)
		decode func([]byte) (any, error)
		value  any
	}
	alive := func(r epmd.Alive2Resp) codec {
		return codec{r.AppendBinary, func(b []byte) (any, error) { return epmd.DecodeAlive2Resp(b) }, r}
	}
	port := func(r epmd.Port2Resp) codec {
		return codec{r.AppendBinary, func(b []byte) (any, error) { return epmd.DecodePort2Resp(b) }, r}
	}
	names := func(r epmd.NamesResp) codec {
		return codec{r.AppendBinary, func(b []byte) (any, error) { return epmd.DecodeNamesResp(b) }, r}
	}
	tests := []struct {
		name string
		c    codec
	}{
		{"alive2_resp_ok", alive(epmd.Alive2Resp{Result: epmd.CodeOK, Creation: 3})},
		{"alive2_resp_error", alive(epmd.Alive2Resp{Result: epmd.CodeError, Creation: 99})},
		{"alive2_x_resp_ok", alive(epmd.Alive2Resp{Result: epmd.CodeOK, Creation: 0x5f3a_01c2, Extended: true})},
		{"alive2_x_resp_error", alive(epmd.Alive2Resp{Result: epmd.CodeError, Extended: true})},
		{"port2_resp_ok", port(epmd.Port2Resp{Result: epmd.CodeOK, Node: erlNode})},
		{"port2_resp_not_found", port(epmd.Port2Resp{Result: epmd.CodeError})},
		{"names_resp_empty", names(epmd.NamesResp{EPMDPort: 4369})},
		{"names_resp_two", names(epmd.NamesResp{EPMDPort: 4369, Nodes: []epmd.NameEntry{{Name: "a", Port: 40123}, {Name: "gonode", Port: 9100}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			want := golden(t, tt.name, got)
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded\n%q\nwant\n%q", got, want)
			}
			back, err := tt.c.decode(want)
			if err != nil {
				t.Fatalf("decode(golden): %v", err)
			}
			if !reflect.DeepEqual(back, tt.c.value) {
				t.Fatalf("decoded %#v, want %#v", back, tt.c.value)
			}
		})
	}
}

// frame prefixes body with its 2-byte length.
func frame(body ...byte) []byte {
	return append([]byte{byte(len(body) >> 8), byte(len(body))}, body...)
}

func alive2Body(name string, extra []byte) []byte {
	b := []byte{epmd.TagAlive2Req, 0x9c, 0xbb, 77, 0, 0, 6, 0, 5, byte(len(name) >> 8), byte(len(name))}
	b = append(b, name...)
	b = append(b, byte(len(extra)>>8), byte(len(extra)))
	return append(b, extra...)
}

func TestReadRequestRejects(t *testing.T) {
	good := alive2Body("a", nil)
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"nothing", nil, io.EOF},
		{"half a length", []byte{0}, io.ErrUnexpectedEOF},
		{"truncated body", frame(good...)[:8], io.ErrUnexpectedEOF},
		{"zero length", []byte{0, 0}, epmd.ErrMalformed},
		{"length over the limit", []byte{0xff, 0xff}, epmd.ErrMalformed},
		{"unknown tag", frame(100), epmd.ErrUnknownRequest},
		{"alive2 too short", frame(good[:10]...), epmd.ErrMalformed},
		{"alive2 name overruns", frame(append(good[:10:10], 0, 9, 'a', 0, 0)...), epmd.ErrMalformed},
		{"alive2 trailing byte", frame(append(good, 0)...), epmd.ErrMalformed},
		{"alive2 extra overruns", frame(append(good[:len(good)-2:len(good)-2], 0, 5, 1)...), epmd.ErrMalformed},
		{"alive2 empty name", frame(alive2Body("", nil)...), epmd.ErrInvalidName},
		{"alive2 NUL in name", frame(alive2Body("a\x00b", nil)...), epmd.ErrInvalidName},
		{"alive2 bad UTF-8", frame(alive2Body("a\xffb", nil)...), epmd.ErrInvalidName},
		{"alive2 256 characters", frame(alive2Body(strings.Repeat("a", 256), nil)...), epmd.ErrInvalidName},
		{"alive2 256 two-byte characters", frame(alive2Body(strings.Repeat("é", 256), nil)...), epmd.ErrInvalidName},
		{"alive2 extra too long", frame(alive2Body("a", make([]byte, epmd.MaxExtraBytes+1))...), epmd.ErrMalformed},
		{"port_please2 no name", frame(epmd.TagPortPlease2Req), epmd.ErrInvalidName},
		{"port_please2 only NUL", frame(epmd.TagPortPlease2Req, 0), epmd.ErrInvalidName},
		{"port_please2 inner NUL", frame(epmd.TagPortPlease2Req, 'a', 0, 'b'), epmd.ErrInvalidName},
		{"names trailing byte", frame(epmd.TagNamesReq, 1), epmd.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := epmd.ReadRequest(bytes.NewReader(tt.input))
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadRequest = %#v, %v; want an error wrapping %v", req, err, tt.want)
			}
		})
	}
}

func TestReadRequestAccepts(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  epmd.Request
	}{
		{"port_please2 with trailing NUL", frame(epmd.TagPortPlease2Req, 'a', 'b', 0), &epmd.PortPlease2Req{Name: "ab"}},
		{"255 characters", frame(alive2Body(strings.Repeat("é", 255), nil)...), nil},
		{"longest extra", frame(alive2Body("a", make([]byte, epmd.MaxExtraBytes))...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := epmd.ReadRequest(bytes.NewReader(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !reflect.DeepEqual(req, tt.want) {
				t.Fatalf("got %#v, want %#v", req, tt.want)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	long := erlNode
	long.Name = strings.Repeat("n", 256)
	bigExtra := erlNode
	bigExtra.Extra = make([]byte, epmd.MaxExtraBytes+1)
	tests := []struct {
		name   string
		encode func([]byte) ([]byte, error)
	}{
		{"alive2 name over 255 characters", (&epmd.Alive2Req{Node: long}).AppendBinary},
		{"alive2 extra too long", (&epmd.Alive2Req{Node: bigExtra}).AppendBinary},
		{"alive2 empty name", (&epmd.Alive2Req{}).AppendBinary},
		{"port_please2 empty name", (&epmd.PortPlease2Req{}).AppendBinary},
		{"alive2_resp creation over 16 bits", epmd.Alive2Resp{Creation: 1 << 16}.AppendBinary},
		{"port2_resp ok without a node", epmd.Port2Resp{Result: epmd.CodeOK}.AppendBinary},
		{"names newline in name", epmd.NamesResp{Nodes: []epmd.NameEntry{{Name: "a\nb", Port: 1}}}.AppendBinary},
		{"names port out of range", epmd.NamesResp{Nodes: []epmd.NameEntry{{Name: "a", Port: 70000}}}.AppendBinary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.encode(nil); err == nil {
				t.Fatalf("encoded %v, want an error", b)
			}
		})
	}
}

func TestDecodeResponsesReject(t *testing.T) {
	okPort, err := epmd.Port2Resp{Result: epmd.CodeOK, Node: erlNode}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		decode func() error
	}{
		{"alive2 empty", func() error { _, err := epmd.DecodeAlive2Resp(nil); return err }},
		{"alive2 bad tag", func() error { _, err := epmd.DecodeAlive2Resp([]byte{1, 0, 0, 1}); return err }},
		{"alive2 short", func() error { _, err := epmd.DecodeAlive2Resp([]byte{epmd.TagAlive2Resp, 0, 0}); return err }},
		{"alive2 x short", func() error { _, err := epmd.DecodeAlive2Resp([]byte{epmd.TagAlive2XResp, 0, 0, 0, 1}); return err }},
		{"alive2 long", func() error { _, err := epmd.DecodeAlive2Resp([]byte{epmd.TagAlive2Resp, 0, 0, 1, 9}); return err }},
		{"port2 empty", func() error { _, err := epmd.DecodePort2Resp(nil); return err }},
		{"port2 bad tag", func() error { _, err := epmd.DecodePort2Resp([]byte{1, 1}); return err }},
		{"port2 error with tail", func() error { _, err := epmd.DecodePort2Resp([]byte{epmd.TagPort2Resp, 1, 0}); return err }},
		{"port2 truncated", func() error { _, err := epmd.DecodePort2Resp(okPort[:len(okPort)-1]); return err }},
		{"port2 trailing", func() error { _, err := epmd.DecodePort2Resp(append(okPort, 0)); return err }},
		{"names short", func() error { _, err := epmd.DecodeNamesResp([]byte{0, 0, 17}); return err }},
		{"names unterminated", func() error { _, err := epmd.DecodeNamesResp([]byte("\x00\x00\x11\x11name a at port 1")); return err }},
		{"names bad line", func() error { _, err := epmd.DecodeNamesResp([]byte("\x00\x00\x11\x11hello\n")); return err }},
		{"names bad port", func() error {
			_, err := epmd.DecodeNamesResp([]byte("\x00\x00\x11\x11name a at port 70000\n"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.decode(); !errors.Is(err, epmd.ErrMalformed) {
				t.Fatalf("got %v, want an error wrapping ErrMalformed", err)
			}
		})
	}
}

// FuzzDecodeRequest checks that no input panics and that every request that
// decodes re-encodes to the bytes it came from (a trailing NUL of
// PORT_PLEASE2_REQ aside).
func FuzzDecodeRequest(f *testing.F) {
	for _, name := range []string{"alive2_req", "alive2_req_hidden_extra", "alive2_req_utf8", "port_please2_req", "names_req"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 3, epmd.TagPortPlease2Req, 'a', 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := epmd.ReadRequest(bytes.NewReader(in))
		if err != nil {
			return
		}
		out, err := req.AppendBinary(nil)
		if err != nil {
			t.Fatalf("decoded %#v but cannot encode it: %v", req, err)
		}
		n := int(in[0])<<8 | int(in[1])
		orig := in[:2+n]
		if !bytes.Equal(out, orig) && !(bytes.Equal(out[2:], orig[2:len(orig)-1]) && orig[len(orig)-1] == 0) {
			t.Fatalf("round trip: %v -> %#v -> %v", orig, req, out)
		}
	})
}

// FuzzDecodeResponse checks that the response decoders never panic and that
// what decodes re-encodes identically.
func FuzzDecodeResponse(f *testing.F) {
	for _, name := range []string{"alive2_resp_ok", "alive2_x_resp_ok", "port2_resp_ok", "port2_resp_not_found", "names_resp_two"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if r, err := epmd.DecodeAlive2Resp(in); err == nil {
			if out, err := r.AppendBinary(nil); err != nil || !bytes.Equal(out, in) {
				t.Fatalf("alive2 round trip %v -> %v (%v)", in, out, err)
			}
		}
		if r, err := epmd.DecodePort2Resp(in); err == nil {
			if out, err := r.AppendBinary(nil); err != nil || !bytes.Equal(out, in) {
				t.Fatalf("port2 round trip %v -> %v (%v)", in, out, err)
			}
		}
		if r, err := epmd.DecodeNamesResp(in); err == nil {
			if _, err := r.AppendBinary(nil); err != nil {
				t.Fatalf("names %q decoded to %#v but cannot encode: %v", in, r, err)
			}
		}
	})
}
