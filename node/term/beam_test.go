package term

import (
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/internal/beamtest"
)

// These tests hand Go's output to a real BEAM of every release of the OTP
// matrix: the host's OTP 25, and the OTP 27 and 29 chroots that
// scripts/otp-matrix.sh builds. erl runs in network and mount namespaces of
// its own (unshare), which needs root: without root, unshare, erl or a
// chroot, they stop at beamtest.Missing (a skip, or under
// GONODE_TEST_STRICT=1 a failure); the golden tests above need no BEAM.

// beamReleases checks what running erl in its own namespaces needs and
// returns the matrix; each release's subtest then calls chrootOf.
func beamReleases(t *testing.T) []beamtest.Release {
	t.Helper()
	if os.Geteuid() != 0 {
		beamtest.Missing(t, "root, to run erl in a network namespace of its own (unshare --net)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		beamtest.Missing(t, "unshare, to run erl in a network namespace of its own (run scripts/install-deps.sh)")
	}
	return beamtest.Matrix()
}

// chrootOf checks that erl of rel can run (beamtest.RequireRelease) and
// returns the root runErl takes: "" for the host.
func chrootOf(t *testing.T, rel beamtest.Release) string {
	t.Helper()
	beamtest.RequireRelease(t, rel, "erl")
	if rel.Root == "/" {
		return ""
	}
	return rel.Root
}

var extensionForm = regexp.MustCompile(`#[A-Z]`)

// TestBEAMEcho decodes every golden term with the default options,
// re-encodes it, and asks the BEAM that produced it whether
// term_to_binary(binary_to_term(GoBytes)) gives back what
// term_to_binary(binary_to_term(BEAMBytes)) gives
// (it must, even for maps Go writes in another order; the comparison is
// with the BEAM's own echo of its bytes, because a BEAM re-orders large
// atom-keyed maps by its own atom table and, from OTP 26, rewrites the pid
// of a local fun), and whether
// Format's text, read by erl_scan/erl_parse, is the same term.
func TestBEAMEcho(t *testing.T) {
	entries := goldenFiles(t)
	for _, rel := range beamReleases(t) {
		t.Run(rel.Name, func(t *testing.T) {
			var sb strings.Builder
			sb.WriteString(`Echo = fun(Name, Go, Orig) ->
    T2B = fun(B) -> term_to_binary(binary_to_term(binary:decode_hex(B)), [{minor_version, 2}]) end,
    case catch T2B(Go) =:= T2B(Orig) of
        true -> io:format("OK\t~s~n", [Name]);
        _ -> io:format("ECHO-MISMATCH\t~s~n", [Name])
    end
end,
Text = fun(Name, Hex, Orig) ->
    S = unicode:characters_to_list(binary:decode_hex(Hex)),
    R = (catch begin
        {ok, Ts, _} = erl_scan:string(S ++ "."),
        {ok, [E]} = erl_parse:parse_exprs(Ts),
        {value, V, _} = erl_eval:expr(E, []),
        V =:= binary_to_term(binary:decode_hex(Orig))
    end),
    case R of
        true -> io:format("OK\ttext:~s~n", [Name]);
        _ -> io:format("TEXT-MISMATCH\t~s\t~p~n", [Name, R])
    end
end,
`)
			want := 0
			for _, c := range goldenCases {
				for _, e := range entries[c.name] {
					if e.release != rel.Name || c.name == "local_ext" {
						continue
					}
					got, _, err := Decode(e.bytes)
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					enc, err := Encode([]byte{131}, got)
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					orig := append([]byte{131}, e.bytes...)
					fmt.Fprintf(&sb, "Echo(%q, <<%q>>, <<%q>>),\n", c.name, hex.EncodeToString(enc), hex.EncodeToString(orig))
					want++
					if s := Format(got); !extensionForm.MatchString(s) {
						fmt.Fprintf(&sb, "Text(%q, <<%q>>, <<%q>>),\n", c.name, hex.EncodeToString([]byte(s)), hex.EncodeToString(orig))
						want++
					}
				}
			}
			sb.WriteString("ok.\n")
			out := runErl(t, chrootOf(t, rel), sb.String())
			oks := strings.Count(out, "OK\t")
			if strings.Contains(out, "MISMATCH") || oks != want {
				t.Fatalf("%d of %d checks passed:\n%s", oks, want, out)
			}
		})
	}
}

// TestBEAMDecodesGoTerms encodes Go-built values and checks the BEAM reads
// each as the expected Erlang term.
func TestBEAMDecodesGoTerms(t *testing.T) {
	cases := []struct {
		name  string
		value etf.Term
		check string // an Erlang fun(X) -> boolean()
	}{
		{"etf_map_atom_keys", etf.Map{etf.Atom("b"): 2, etf.Atom("a"): 1}, "fun(X) -> X =:= #{a => 1, b => 2} end"},
		{"map_pairs_binary_keys", Map{{[]byte("k"), 1}, {[]byte("j"), etf.Map{}}}, `fun(X) -> X =:= #{<<"k">> => 1, <<"j">> => #{}} end`},
		{"etf_map_large", func() etf.Map {
			m := etf.Map{}
			for i := 0; i < 100; i++ {
				m[int64(i)] = etf.Atom(fmt.Sprintf("v%d", i))
			}
			return m
		}(), `fun(X) -> X =:= maps:from_list([{I, list_to_atom("v" ++ integer_to_list(I))} || I <- lists:seq(0, 99)]) end`},
		{"improper", etf.ListImproper{etf.Atom("a"), etf.Atom("b")}, "fun(X) -> X =:= [a | b] end"},
		{"bitstring", BitString{Bytes: []byte{0x20}, Bits: 3}, "fun(X) -> X =:= <<1:3>> end"},
		{"empty_go_string", "", "fun(X) -> X =:= [] end"},
		{"go_string", "héllo", `fun(X) -> X =:= binary_to_list(<<"héllo"/utf8>>) end`},
		{"long_go_string", strings.Repeat("a", 70000), "fun(X) -> X =:= lists:duplicate(70000, $a) end"},
		{"charlist", etf.Charlist("日本"), `fun(X) -> X =:= [16#65E5, 16#672C] end`},
		{"etf_string", etf.String("abc"), `fun(X) -> X =:= <<"abc">> end`},
		{"nil", nil, "fun(X) -> X =:= [] end"},
		{"bools", etf.Tuple{true, false}, "fun(X) -> X =:= {true, false} end"},
		{"go_ints", etf.List{int(-5), int8(-8), uint16(65535), uint32(math.MaxUint32), int64(math.MinInt64), uint64(math.MaxUint64)},
			"fun(X) -> X =:= [-5, -8, 65535, 4294967295, -9223372036854775808, 18446744073709551615] end"},
		{"float32", float32(1.5), "fun(X) -> X =:= 1.5 end"},
		{"neg_zero", math.Copysign(0, -1), "fun(X) -> <<131, 70, 128, 0, 0, 0, 0, 0, 0, 0>> =:= term_to_binary(X, [{minor_version, 2}]) end"},
		{"ref_5_words", etf.Ref{Node: "a@b", Creation: 7, ID: [5]uint32{1, 2, 3, 0x503, 0}},
			"fun(X) -> is_reference(X) andalso term_to_binary(X, [{minor_version, 2}]) =:= <<131, 90, 0, 5, 119, 3, \"a@b\", 0,0,0,7, 0,0,0,1, 0,0,0,2, 0,0,0,3, 0,0,5,3, 0,0,0,0>> end"},
		{"ref_4_words", Ref{Node: "a@b", Creation: 7, Len: 4, ID: [5]uint32{1, 2, 3, 4}},
			"fun(X) -> is_reference(X) andalso term_to_binary(X, [{minor_version, 2}]) =:= <<131, 90, 0, 4, 119, 3, \"a@b\", 0,0,0,7, 0,0,0,1, 0,0,0,2, 0,0,0,3, 0,0,0,4>> end"},
		{"pid_large_creation", etf.Pid{Node: "a@b", ID: 77 | 3<<32, Creation: 0xFFFFFFFE}, "fun(X) -> is_pid(X) andalso node(X) =:= 'a@b' end"},
		{"v4_port", Port{Node: "a@b", ID: 1 << 40, Creation: 9}, "fun(X) -> is_port(X) andalso node(X) =:= 'a@b' end"},
		{"export", etf.Export{Module: "lists", Function: "map", Arity: 2}, "fun(X) -> X =:= fun lists:map/2 end"},
		{"utf8_atom_long", etf.Atom(strings.Repeat("日", 255)), "fun(X) -> X =:= list_to_atom(lists:duplicate(255, 16#65E5)) end"},
		{"gen_call_reply", etf.Tuple{etf.ListImproper{etf.Atom("alias"), etf.Ref{Node: "a@b", Creation: 1, ID: [5]uint32{1, 2, 3, 0x503, 0}}}, etf.Atom("ok")},
			"fun({[alias | R], ok}) -> is_reference(R); (_) -> false end"},
	}
	var sb strings.Builder
	sb.WriteString(`Check = fun(Name, Hex, F) ->
    case catch F(binary_to_term(binary:decode_hex(Hex))) of
        true -> io:format("OK\t~s~n", [Name]);
        R -> io:format("FAIL\t~s\t~p~n", [Name, R])
    end
end,
`)
	for _, c := range cases {
		enc, err := Encode([]byte{131}, c.value)
		if err != nil {
			t.Fatalf("%s: Encode: %v", c.name, err)
		}
		fmt.Fprintf(&sb, "Check(%q, <<%q>>, %s),\n", c.name, hex.EncodeToString(enc), c.check)
	}
	sb.WriteString("ok.\n")
	for _, rel := range beamReleases(t) {
		t.Run(rel.Name, func(t *testing.T) {
			out := runErl(t, chrootOf(t, rel), sb.String())
			if oks := strings.Count(out, "OK\t"); oks != len(cases) {
				t.Fatalf("%d of %d accepted:\n%s", oks, len(cases), out)
			}
		})
	}
}
