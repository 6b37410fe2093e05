package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current report")

// TestSummarizeRecordedRun reports a real `go test -json ./...` stream
// (testdata/mixed.jsonl, recorded from a module of four packages: passes,
// skips, a failure, subtests, a package without tests, a panic, a build
// error) and compares the report with testdata/mixed.golden.
func TestSummarizeRecordedRun(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "mixed.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum, err := Summarize(bytes.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Summary{Passed: 4, Failed: 3, Skipped: 2}); sum != want {
		t.Errorf("Summary = %+v, want %+v", sum, want)
	}
	golden := filepath.Join("testdata", "mixed.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("report differs from %s (go test -run %s -update rewrites it):\n%s", golden, t.Name(), out.String())
	}
}

// ev returns one event line of go test -json.
func ev(action, pkg, test, output string) string {
	s := `{"Action":"` + action + `","Package":"` + pkg + `"`
	if test != "" {
		s += `,"Test":"` + test + `"`
	}
	if output != "" {
		s += `,"Output":` + quote(output)
	}
	return s + "}\n"
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

func TestSummarize(t *testing.T) {
	const p = "example.com/m/p"
	pass := ev("run", p, "TestA", "") + ev("output", p, "TestA", "=== RUN   TestA\n") +
		ev("output", p, "TestA", "--- PASS: TestA (0.00s)\n") + ev("pass", p, "TestA", "")
	tests := []struct {
		name   string
		in     string
		want   Summary
		ok     bool
		has    []string // lines the report must contain
		hasNot []string
	}{
		{name: "every test passed",
			in:   ev("start", p, "", "") + pass + ev("output", p, "", "PASS\n") + ev("pass", p, "", ""),
			want: Summary{Passed: 1}, ok: true,
			has: []string{"ok    example.com/m/p", "1 passed, 0 failed, 0 skipped"}, hasNot: []string{"--- "}},
		{name: "a skip fails the run and its reason is shown without go test's framing",
			in: ev("start", p, "", "") + pass + ev("run", p, "TestB", "") +
				ev("output", p, "TestB", "=== RUN   TestB\n") +
				ev("output", p, "TestB", "    b_test.go:9: needs root, to make a network namespace of its own\n") +
				ev("output", p, "TestB", "--- SKIP: TestB (0.00s)\n") + ev("skip", p, "TestB", "") + ev("pass", p, "", ""),
			want: Summary{Passed: 1, Skipped: 1},
			has: []string{"--- SKIP TestB in example.com/m/p", "    b_test.go:9: needs root, to make a network namespace of its own",
				"1 passed, 0 failed, 1 skipped"},
			hasNot: []string{"=== RUN", "--- SKIP: TestB"}},
		{name: "a failed test is shown with its output",
			in: ev("start", p, "", "") + ev("run", p, "TestC", "") + ev("output", p, "TestC", "    c_test.go:3: want 2, got 3\n") +
				ev("fail", p, "TestC", "") + ev("output", p, "", "FAIL\n") + ev("fail", p, "", ""),
			want: Summary{Failed: 1},
			has:  []string{"FAIL  example.com/m/p", "--- FAIL TestC in example.com/m/p", "c_test.go:3: want 2, got 3", "0 passed, 1 failed, 0 skipped"}},
		{name: "a package failing outside its tests (a leak check in TestMain) is one failure",
			in: ev("start", p, "", "") + pass + ev("output", p, "", "goleak: Errors on successful test run: found unexpected goroutines\n") +
				ev("fail", p, "", ""),
			want: Summary{Passed: 1, Failed: 1},
			has:  []string{"--- FAIL example.com/m/p (failed outside its tests)", "goleak: Errors on successful test run"}},
		{name: "a test that never ended (the binary died) is a failure",
			in: ev("start", p, "", "") + ev("run", p, "TestD", "") + ev("output", p, "TestD", "panic: test timed out after 10m0s\n") +
				ev("fail", p, "", ""),
			want: Summary{Failed: 1},
			has:  []string{"--- FAIL TestD in example.com/m/p (never ended: the test binary died or timed out)", "panic: test timed out"}},
		{name: "a package whose stream stops is a failure",
			in:   ev("start", p, "", "") + pass,
			want: Summary{Passed: 1, Failed: 1},
			has:  []string{"--- FAIL example.com/m/p (never ended)"}},
		{name: "packages without tests only: no test ran",
			in:   ev("start", p, "", "") + ev("output", p, "", "?   \texample.com/m/p\t[no test files]\n") + ev("skip", p, "", ""),
			want: Summary{},
			has:  []string{"?     example.com/m/p [no test files]", "no test ran", "0 passed, 0 failed, 0 skipped"}},
		{name: "a build failure shows the compiler's messages",
			in: `{"ImportPath":"example.com/m/p [example.com/m/p.test]","Action":"build-output","Output":"p_test.go:5:2: undefined: x\n"}` + "\n" +
				`{"ImportPath":"example.com/m/p [example.com/m/p.test]","Action":"build-fail"}` + "\n" +
				ev("start", p, "", "") + ev("output", p, "", "FAIL\texample.com/m/p [build failed]\n") +
				`{"Action":"fail","Package":"example.com/m/p","FailedBuild":"example.com/m/p [example.com/m/p.test]"}` + "\n",
			want: Summary{Failed: 1},
			has:  []string{"--- FAIL example.com/m/p (failed outside its tests)\np_test.go:5:2: undefined: x\nFAIL\texample.com/m/p [build failed]"}},
		{name: "a line that is not an event is printed as it is",
			in:   "go: downloading example.com/x v1.0.0\n" + ev("start", p, "", "") + pass + ev("pass", p, "", ""),
			want: Summary{Passed: 1}, ok: true,
			has: []string{"go: downloading example.com/x v1.0.0\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			sum, err := Summarize(strings.NewReader(tc.in), &out)
			if err != nil {
				t.Fatal(err)
			}
			if sum != tc.want || sum.OK() != tc.ok {
				t.Errorf("Summary = %+v (OK %v), want %+v (OK %v)", sum, sum.OK(), tc.want, tc.ok)
			}
			for _, h := range tc.has {
				if !strings.Contains(out.String(), h) {
					t.Errorf("the report lacks %q:\n%s", h, out.String())
				}
			}
			for _, h := range tc.hasNot {
				if strings.Contains(out.String(), h) {
					t.Errorf("the report contains %q:\n%s", h, out.String())
				}
			}
		})
	}
}

// TestSummarizeBoundsOutput: a test that prints without end costs the report
// a bounded amount of memory, and its last output (where the failure is)
// is kept.
func TestSummarizeBoundsOutput(t *testing.T) {
	const p = "example.com/m/p"
	var in strings.Builder
	in.WriteString(ev("start", p, "", "") + ev("run", p, "TestLoud", ""))
	line := ev("output", p, "TestLoud", strings.Repeat("x", 1000)+"\n")
	for range 1000 { // about 1 MB of output
		in.WriteString(line)
	}
	in.WriteString(ev("output", p, "TestLoud", "    loud_test.go:7: the failure\n") + ev("fail", p, "TestLoud", "") + ev("fail", p, "", ""))
	var out bytes.Buffer
	if _, err := Summarize(strings.NewReader(in.String()), &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() > 2*maxOutput {
		t.Errorf("the report is %d bytes for one test, want at most %d", out.Len(), 2*maxOutput)
	}
	for _, want := range []string{"[... earlier output cut]", "loud_test.go:7: the failure"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}
