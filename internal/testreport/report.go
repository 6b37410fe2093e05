package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent), or of
// the build events `go test -json` mixes in (cmd/go's BuildEvent: ImportPath,
// Action build-output or build-fail, Output).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
	ImportPath  string
}

// Summary counts the outcomes of a run. A package that failed outside its
// tests, or a test that started and never ended (the binary panicked or
// timed out), counts as one failure.
type Summary struct {
	Passed, Failed, Skipped int
}

// OK reports whether the run passed with every test run: nothing failed,
// nothing skipped, and at least one test passed.
func (s Summary) OK() bool { return s.Failed == 0 && s.Skipped == 0 && s.Passed > 0 }

// maxOutput bounds the output kept per test and per package, so a test
// that prints without end cannot exhaust the report's memory; the report
// keeps the last maxOutput bytes, where a failure's message usually is.
const maxOutput = 64 << 10

type testKey struct{ pkg, test string }

type testState struct {
	key    testKey
	action string // "" while running, then pass, fail or skip
	out    tail
}

type pkgState struct {
	tests  []*testState // in the order they started
	out    tail         // output outside any test
	ended  bool
	failed bool
}

// Summarize reads the events of `go test -json` from r, writes a line per
// package to w as the package ends, then the failed and skipped tests with
// their output and the closing count line, and returns the counts. A line
// that is not an event (go's own messages on a pipe that merged stderr) is
// printed as it comes. It returns an error only if r cannot be read.
func Summarize(r io.Reader, w io.Writer) (Summary, error) {
	pkgs := map[string]*pkgState{}
	var order []string // packages in the order they started
	tests := map[testKey]*testState{}
	build := map[string]*tail{} // build output per import path
	pkg := func(name string) *pkgState {
		p := pkgs[name]
		if p == nil {
			p = &pkgState{}
			pkgs[name] = p
			order = append(order, name)
		}
		return p
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		switch {
		case e.Action == "build-output":
			b := build[e.ImportPath]
			if b == nil {
				b = &tail{}
				build[e.ImportPath] = b
			}
			b.WriteString(e.Output)
			continue
		case e.Action == "build-fail":
			continue
		case e.Package == "":
			continue
		}
		p := pkg(e.Package)
		if e.Test == "" {
			switch e.Action {
			case "output":
				p.out.WriteString(e.Output)
			case "pass", "fail", "skip":
				p.ended, p.failed = true, e.Action == "fail"
				if b := build[e.FailedBuild]; e.FailedBuild != "" && b != nil {
					// The compiler's messages first: they say why.
					out := b.String() + p.out.String()
					p.out = tail{}
					p.out.WriteString(out)
				}
				writePackageLine(w, e, p)
			}
			continue
		}
		k := testKey{e.Package, e.Test}
		t := tests[k]
		if t == nil {
			t = &testState{key: k}
			tests[k] = t
			p.tests = append(p.tests, t)
		}
		switch e.Action {
		case "output":
			t.out.WriteString(e.Output)
		case "pass", "fail", "skip":
			t.action = e.Action
		}
	}
	if err := sc.Err(); err != nil {
		return Summary{}, err
	}

	var sum Summary
	var failed, skipped []string
	for _, name := range order {
		p := pkgs[name]
		testFailed := false
		for _, t := range p.tests {
			switch t.action {
			case "pass":
				sum.Passed++
			case "skip":
				sum.Skipped++
				skipped = append(skipped, section("SKIP", t.key, "", testOutput(t.out.String())))
			case "fail":
				sum.Failed++
				testFailed = true
				failed = append(failed, section("FAIL", t.key, "", testOutput(t.out.String())))
			default:
				sum.Failed++
				testFailed = true
				failed = append(failed, section("FAIL", t.key, " (never ended: the test binary died or timed out)", testOutput(t.out.String())))
			}
		}
		if (p.failed || !p.ended) && !testFailed {
			sum.Failed++
			why := " (failed outside its tests)"
			if !p.ended {
				why = " (never ended)"
			}
			failed = append(failed, section("FAIL", testKey{pkg: name}, why, p.out.String()))
		}
	}
	for _, s := range failed {
		fmt.Fprint(w, s)
	}
	for _, s := range skipped {
		fmt.Fprint(w, s)
	}
	if sum.Passed+sum.Failed+sum.Skipped == 0 {
		fmt.Fprintln(w, "\nno test ran")
	}
	fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", sum.Passed, sum.Failed, sum.Skipped)
	return sum, nil
}

// writePackageLine writes the line of a package that ended, as go test's
// own: ok, FAIL, or "?" for a package without tests.
func writePackageLine(w io.Writer, e event, p *pkgState) {
	switch {
	case e.Action == "skip":
		fmt.Fprintf(w, "?     %s [no test files]\n", e.Package)
	case p.failed:
		fmt.Fprintf(w, "FAIL  %s %.1fs\n", e.Package, e.Elapsed)
	default:
		fmt.Fprintf(w, "ok    %s %.1fs\n", e.Package, e.Elapsed)
	}
}

// section formats one failed or skipped test (or package, test "") with its
// output.
func section(kind string, k testKey, note, out string) string {
	var b strings.Builder
	name := k.pkg
	if k.test != "" {
		name = k.test + " in " + k.pkg
	}
	fmt.Fprintf(&b, "\n--- %s %s%s\n", kind, name, note)
	out = strings.TrimRight(out, "\n")
	if out != "" {
		b.WriteString(out)
		b.WriteString("\n")
	}
	return b.String()
}

// testOutput drops the framing lines go test prints around a test's output
// (=== RUN, PAUSE, CONT, NAME and the test's own --- result line), which
// the report says in its own words.
func testOutput(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		switch t := strings.TrimLeft(l, " "); {
		case strings.HasPrefix(t, "=== RUN"), strings.HasPrefix(t, "=== PAUSE"),
			strings.HasPrefix(t, "=== CONT"), strings.HasPrefix(t, "=== NAME"),
			strings.HasPrefix(t, "--- PASS:"), strings.HasPrefix(t, "--- FAIL:"), strings.HasPrefix(t, "--- SKIP:"):
			continue
		}
		b.WriteString(l)
	}
	return b.String()
}

// tail keeps the last maxOutput bytes written to it, marking the cut.
type tail struct {
	b   []byte
	cut bool
}

func (t *tail) WriteString(s string) {
	t.b = append(t.b, s...)
	if len(t.b) > 2*maxOutput {
		t.b = append(t.b[:0], t.b[len(t.b)-maxOutput:]...)
		t.cut = true
	}
}

func (t *tail) String() string {
	b := t.b
	if len(b) > maxOutput {
		b, t.cut = b[len(b)-maxOutput:], true
	}
	if t.cut {
		return "[... earlier output cut]\n" + string(b)
	}
	return string(b)
}
