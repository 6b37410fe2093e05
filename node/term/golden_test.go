package term

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// go test ./node/term -run TestGolden -update regenerates testdata/*.golden
// with the real BEAM: the host's erl (OTP 25) and, when its chroot is ready,
// OTP 29 (the chroot's erl runs in a private network and mount namespace).
var update = flag.Bool("update", false, "regenerate testdata/*.golden with erl")

// goldenCase is an Erlang expression whose term_to_binary bytes the BEAM
// produces. The expression is evaluated in a distributed node (-sname), so
// pids, references and ports carry a real node name and creation.
type goldenCase struct {
	name string
	expr string
	// ordered: the BEAM writes this map in hash order (more than 32 keys);
	// byte-identical re-encoding needs WithOrderedMaps.
	ordered bool
	// atomKeys: a map with atom keys, which OTP 26+ writes in atom-table
	// order (not alphabetical); from OTP 26 on, byte-identical re-encoding
	// needs WithOrderedMaps.
	atomKeys bool
	// want, when set, is the Go value Decode must return.
	want etf.Term
}

var goldenCases = []goldenCase{
	{name: "small_int_0", expr: "0", want: int64(0)},
	{name: "small_int_255", expr: "255", want: int64(255)},
	{name: "int_256", expr: "256", want: int64(256)},
	{name: "int_neg1", expr: "-1", want: int64(-1)},
	{name: "int_max32", expr: "2147483647", want: int64(2147483647)},
	{name: "int_min32", expr: "-2147483648", want: int64(-2147483648)},
	{name: "big_2p31", expr: "2147483648", want: int64(2147483648)},
	{name: "big_2p62", expr: "1 bsl 62", want: int64(1 << 62)},
	{name: "big_min64", expr: "-(1 bsl 63)", want: int64(-1 << 63)},
	{name: "big_2p64", expr: "1 bsl 64"},
	{name: "big_neg_2p64", expr: "-(1 bsl 64)"},
	{name: "big_2p100_minus1", expr: "(1 bsl 100) - 1"},
	{name: "large_big_2p2100", expr: "1 bsl 2100"},
	{name: "large_big_neg", expr: "-(1 bsl 2100) + 12345"},
	{name: "float_zero", expr: "0.0", want: 0.0},
	{name: "float_neg_zero", expr: "-0.0"},
	{name: "float_pi", expr: "3.14159", want: 3.14159},
	{name: "float_big", expr: "1.0e300", want: 1.0e300},
	{name: "float_tiny", expr: "5.0e-324", want: 5.0e-324},
	{name: "atom", expr: "hello", want: etf.Atom("hello")},
	{name: "atom_true", expr: "true", want: true},
	{name: "atom_false", expr: "false", want: false},
	{name: "atom_quoted", expr: "'Hello World'", want: etf.Atom("Hello World")},
	{name: "atom_utf8", expr: "'héllo_日本'", want: etf.Atom("héllo_日本")},
	{name: "atom_elixir_module", expr: "'Elixir.MyApp.User'", want: etf.Atom("Elixir.MyApp.User")},
	{name: "atom_long_utf8", expr: "list_to_atom(lists:duplicate(100, 16#65E5))", want: etf.Atom(strings.Repeat("日", 100))},
	{name: "empty_list", expr: "[]", want: etf.List{}},
	{name: "empty_map", expr: "#{}", want: etf.Map{}},
	{name: "empty_tuple", expr: "{}", want: etf.Tuple{}},
	{name: "empty_binary", expr: "<<>>", want: []byte{}},
	{name: "binary", expr: "<<\"abc\">>", want: []byte("abc")},
	{name: "binary_utf8", expr: "<<\"José\"/utf8>>", want: []byte("José")},
	{name: "binary_300", expr: "binary:copy(<<1,2,3>>, 100)", want: bytes.Repeat([]byte{1, 2, 3}, 100)},
	{name: "bitstring_3", expr: "<<1:3>>", want: BitString{Bytes: []byte{0x20}, Bits: 3}},
	{name: "bitstring_28", expr: "<<1,2,3:4>>", want: BitString{Bytes: []byte{1, 2, 0x30}, Bits: 4}},
	{name: "charlist", expr: "\"hello\"", want: "hello"},
	{name: "charlist_latin1", expr: "\"héllo\"", want: "h\xe9llo"},
	{name: "charlist_unicode", expr: "\"日本\"", want: etf.List{int64(0x65E5), int64(0x672C)}},
	{name: "list_small_ints_mixed", expr: "[1, 2, 300]", want: etf.List{int64(1), int64(2), int64(300)}},
	{name: "list", expr: "[a, <<\"b\">>, 1.5, {c}]", want: etf.List{etf.Atom("a"), []byte("b"), 1.5, etf.Tuple{etf.Atom("c")}}},
	{name: "improper_list", expr: "[a | b]", want: etf.ListImproper{etf.Atom("a"), etf.Atom("b")}},
	{name: "improper_list_binary_tail", expr: "[1, 2 | <<\"t\">>]", want: etf.ListImproper{int64(1), int64(2), []byte("t")}},
	{name: "keyword_list", expr: "[{name, <<\"x\">>}, {age, 3}]", want: etf.List{etf.Tuple{etf.Atom("name"), []byte("x")}, etf.Tuple{etf.Atom("age"), int64(3)}}},
	{name: "tuple", expr: "{ok, 1, <<\"two\">>}", want: etf.Tuple{etf.Atom("ok"), int64(1), []byte("two")}},
	{name: "large_tuple", expr: "list_to_tuple(lists:seq(1, 300))"},
	{name: "map_atom_keys", atomKeys: true, expr: "#{b => 2, a => 1, c => [x]}", want: etf.Map{etf.Atom("a"): int64(1), etf.Atom("b"): int64(2), etf.Atom("c"): etf.List{etf.Atom("x")}}},
	{name: "map_string_keys", expr: "#{<<\"name\">> => <<\"José\"/utf8>>, <<\"age\">> => 42}", want: Map{{[]byte("age"), int64(42)}, {[]byte("name"), []byte("José")}}},
	{name: "map_mixed_number_keys", expr: "#{1.0 => a, 2 => b, 1 => c, 0.5 => d, -1 => e}"},
	{name: "map_zero_keys", expr: "#{0.0 => pos, -0.0 => neg}"},
	{name: "map_tuple_map_keys", expr: "#{{a, 1} => #{#{x => 1} => [1, 2]}, <<\"k\">> => #{}, [] => nil, \"ab\" => 5}"},
	{name: "map_nested", atomKeys: true, expr: "#{outer => #{inner => #{leaf => [1, 2, 3]}}}"},
	{name: "map_large_int_keys", expr: "maps:from_list([{I, I * 2} || I <- lists:seq(1, 40)])", ordered: true},
	{name: "map_large_atom_keys", expr: "maps:from_list([{list_to_atom(\"k\" ++ integer_to_list(I)), I} || I <- lists:seq(1, 50)])", ordered: true},
	{name: "map_large_binary_keys", expr: "maps:from_list([{integer_to_binary(I), I} || I <- lists:seq(1, 40)])"},
	{name: "elixir_struct", atomKeys: true, expr: "#{'__struct__' => 'Elixir.MyApp.User', name => <<\"José\"/utf8>>, age => 42, tags => [<<\"a\">>], address => nil}"},
	{name: "pid_self", expr: "self()"},
	{name: "pid_other", expr: "list_to_pid(\"<0.80.0>\")"},
	{name: "pid_serial", expr: "c:pid(0, 123, 5)"},
	{name: "pid_remote_large_creation", expr: "binary_to_term(<<131, 88, 119, 9, \"a@b.host\", 0, 0, 0, 0, 0, 0, 0, 77, 0, 0, 0, 9, 255, 255, 255, 254>>)"},
	{name: "ref", expr: "make_ref()"},
	{name: "ref_alias", expr: "alias()"},
	{name: "ref_monitor_alias", expr: "erlang:monitor(process, self(), [{alias, explicit_unalias}])"},
	{name: "gen_call_tag", expr: "[alias | alias()]"},
	{name: "gen_call", expr: "{'$gen_call', {self(), [alias | alias()]}, {get, key}}"},
	{name: "ref_remote_4_words", expr: "binary_to_term(<<131, 90, 0, 4, 119, 3, \"a@b\", 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4>>)"},
	{name: "port", expr: "hd(erlang:ports())"},
	{name: "export_fun", expr: "fun lists:map/2"},
	{name: "export_fun_quoted", expr: "fun erlang:'+'/2"},
	{name: "local_fun", expr: "Y = 5, fun(X) -> X + Y end"},
	{name: "exit_reason", expr: "{shutdown, {failed_to_start_child, worker, {'EXIT', normal}}}"},
	{name: "down_message", expr: "{'DOWN', make_ref(), process, self(), {badarg, [{m, f, 1, [{file, \"m.erl\"}, {line, 3}]}]}}"},
	{name: "local_ext", expr: "{'$local', {a, self(), make_ref(), <<1, 2, 3>>}}"},
	{name: "nested_deep", expr: "lists:foldl(fun(_, A) -> [A] end, x, lists:seq(1, 200))"},
}

type goldenEntry struct {
	name, release string
	bytes         []byte
}

func goldenFiles(t *testing.T) map[string][]goldenEntry {
	t.Helper()
	files, err := filepath.Glob("testdata/otp*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in testdata (run go test -run TestGolden -update): %v", err)
	}
	out := map[string][]goldenEntry{}
	for _, f := range files {
		rel := strings.TrimSuffix(filepath.Base(f), ".golden")
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<22)
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, hx, ok := strings.Cut(line, "\t")
			if !ok {
				t.Fatalf("%s: bad line %q", f, line)
			}
			raw, err := hex.DecodeString(hx)
			if err != nil || len(raw) < 2 || raw[0] != 131 {
				t.Fatalf("%s: %s: bad bytes: %v", f, name, err)
			}
			out[name] = append(out[name], goldenEntry{name: name, release: rel, bytes: raw[1:]})
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestGolden(t *testing.T) {
	if *update {
		updateGolden(t)
	}
	entries := goldenFiles(t)
	for _, c := range goldenCases {
		es := entries[c.name]
		if len(es) == 0 && c.name != "local_ext" {
			t.Errorf("%s: no golden bytes (run with -update)", c.name)
		}
		for _, e := range es {
			t.Run(e.release+"/"+c.name, func(t *testing.T) {
				ordered := c.ordered || (c.atomKeys && e.release >= "otp26")
				var opts []DecodeOption
				if ordered {
					opts = append(opts, WithOrderedMaps())
				}
				got, rest, err := Decode(e.bytes, opts...)
				if err != nil {
					t.Fatalf("Decode(%x): %v", e.bytes, err)
				}
				if len(rest) != 0 {
					t.Fatalf("Decode left %d bytes", len(rest))
				}
				if c.want != nil && !ordered && !reflect.DeepEqual(got, c.want) {
					t.Fatalf("Decode = %#v, want %#v", got, c.want)
				}
				enc, err := Encode(nil, got)
				if err != nil {
					t.Fatalf("Encode(%#v): %v", got, err)
				}
				if !bytes.Equal(enc, e.bytes) {
					t.Fatalf("re-encoding differs from the BEAM's bytes:\n got %x\nwant %x", enc, e.bytes)
				}
				// The default decoding of a hash-ordered map is equal as a term.
				if ordered {
					plain, _, err := Decode(e.bytes)
					if err != nil {
						t.Fatal(err)
					}
					if !Equal(plain, got) {
						t.Fatalf("ordered and default decodings differ: %v vs %v", Format(plain), Format(got))
					}
				}
				// Format/Parse round trip.
				{
					s := Format(got)
					back, err := Parse(s)
					if err != nil {
						t.Fatalf("Parse(Format) %q: %v", s, err)
					}
					if !Equal(back, got) {
						t.Fatalf("Parse(Format(t)) = %s, want %s", Format(back), s)
					}
				}
			})
		}
	}
}

// erlScript evaluates every case and prints "name<TAB>hex" lines.
func erlScript() string {
	var sb strings.Builder
	sb.WriteString("Enc = fun({'$local', T}) -> term_to_binary(T, [local]); (T) -> term_to_binary(T, [{minor_version, 2}]) end,\n")
	sb.WriteString("Out = fun(Name, F) -> try Enc(F()) of B -> io:format(\"~s\\t~s~n\", [Name, binary:encode_hex(B)]) catch _:_ -> ok end end,\n")
	for _, c := range goldenCases {
		fmt.Fprintf(&sb, "Out(%q, fun() -> %s end),\n", c.name, c.expr)
	}
	sb.WriteString("ok.\n")
	return sb.String()
}

// runErl runs the script with erl -noshell in a fresh network and mount
// namespace (so nothing touches the host's port 4369), optionally chrooted
// into an OTP release tree.
func runErl(t *testing.T, root, script string) string {
	return runErlMode(t, root, script, false)
}

// runErlDist is runErl with a distributed node (-sname), whose epmd runs in
// the private network namespace and is killed afterwards.
func runErlDist(t *testing.T, root, script string) string {
	return runErlMode(t, root, script, true)
}

func runErlMode(t *testing.T, root, script string, dist bool) string {
	t.Helper()
	return runBEAM(t, root, script, func(path string) string {
		eval := fmt.Sprintf(`{ok, _} = file:script(%q), halt().`, path)
		erl := fmt.Sprintf("erl -noshell -eval '%s'", eval)
		if dist {
			// Start epmd and poll (bounded) until it answers, so the node can register.
			erl = "epmd -daemon; i=0; until epmd -names >/dev/null 2>&1 || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.05; done; " +
				fmt.Sprintf("erl -sname golden -noshell -eval '%s'; st=$?; epmd -kill >/dev/null 2>&1; exit $st", eval)
		}
		return erl
	})
}

// runElixir runs an Elixir script with the elixir of root ("" for the
// host's) and returns its output.
func runElixir(t *testing.T, root, script string) string {
	t.Helper()
	return runBEAM(t, root, script, func(path string) string { return fmt.Sprintf("elixir %s", path) })
}

// runBEAM writes script to a file that root's programs can read and runs
// the shell command command(path) in network and mount namespaces of its
// own, chrooted into root when root is not "".
func runBEAM(t *testing.T, root, script string, command func(path string) string) string {
	t.Helper()
	dir := "/tmp"
	if root != "" {
		dir = filepath.Join(root, "tmp")
	}
	f, err := os.CreateTemp(dir, "term-golden-*.script")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.WriteString(script); err != nil {
		t.Fatal(err)
	}
	f.Close()
	inPath := f.Name()
	if root != "" {
		inPath = "/tmp/" + filepath.Base(f.Name())
	}
	erl := command(inPath)
	var sh string
	if root == "" {
		sh = "ip link set lo up && " + erl
	} else {
		sh = fmt.Sprintf("ip link set lo up && mount -t proc proc %[1]s/proc && mount --rbind /dev %[1]s/dev && exec chroot %[1]s sh -c %q",
			root, erl)
	}
	cmd := exec.Command("unshare", "--net", "--mount", "--fork", "sh", "-c", sh)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", erl, err, out)
	}
	return string(out)
}

func updateGolden(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("erl"); err != nil {
		t.Fatalf("-update needs erl: %v", err)
	}
	releases := []struct{ name, root string }{{"otp25", ""}}
	if _, err := os.Stat("/var/cache/gonode/otp/sid/.gonode-ready"); err == nil {
		releases = append(releases, struct{ name, root string }{"otp29", "/var/cache/gonode/otp/sid"})
	}
	for _, r := range releases {
		out := runErlDist(t, r.root, erlScript())
		var lines []string
		for _, l := range strings.Split(out, "\n") {
			if name, _, ok := strings.Cut(l, "\t"); ok && !strings.ContainsAny(name, " ") {
				lines = append(lines, l)
			}
		}
		if len(lines) < len(goldenCases)-2 {
			t.Fatalf("%s: erl printed %d cases of %d:\n%s", r.name, len(lines), len(goldenCases), out)
		}
		body := "# term_to_binary bytes produced by " + r.name + "; regenerate with go test -run TestGolden -update\n" + strings.Join(lines, "\n") + "\n"
		if err := os.WriteFile(filepath.Join("testdata", r.name+".golden"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
