package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// Fields after the name: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...
	tests := []struct {
		name, stat string
		want       float64
		bad        bool
	}{
		{name: "beam.smp", stat: "4242 (beam.smp) S 1 4242 4242 0 -1 4194560 9876 0 3 0 150 50 0 0 20 0 30 0 12345 2000000 10000", want: 2.0},
		{name: "a name with spaces and parentheses",
			stat: "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1234 766 0 0 20 0 1 0 1 1 1", want: 20.0},
		{name: "no name", stat: "7 a b c", bad: true},
		{name: "cut short", stat: "7 (x) R 1 7 7 0 -1 0 0 0 0", bad: true},
		{name: "not a number", stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 x 1 0", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU(tc.stat)
			if tc.bad {
				if err == nil {
					t.Fatalf("parsed %v from %q, want an error", got, tc.stat)
				}
				return
			}
			if err != nil || math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

const statusText = `Name:	beam.smp
State:	S (sleeping)
VmRSS:	   46208 kB
Threads:	30
voluntary_ctxt_switches:	120
nonvoluntary_ctxt_switches:	7
`

func TestParseStatus(t *testing.T) {
	if n, err := parseStatusCtxt(statusText); err != nil || n != 127 {
		t.Fatalf("context switches = %d, %v; want 127", n, err)
	}
	if rss, err := parseStatusRSS(statusText); err != nil || rss != 46208*1024 {
		t.Fatalf("VmRSS = %d, %v; want %d", rss, err, 46208*1024)
	}
	if _, err := parseStatusCtxt("Name:\tx\nvoluntary_ctxt_switches:\t1\n"); err == nil {
		t.Fatal("a status without nonvoluntary_ctxt_switches parsed")
	}
	if _, err := parseStatusRSS("Name:\tkthreadd\n"); err == nil {
		t.Fatal("a status without VmRSS (a kernel thread's) parsed")
	}
}

// writeFakeProc lays out procRoot/<pid>/stat and one task/<tid>/status per
// entry of switches (voluntary, nonvoluntary).
func writeFakeProc(t *testing.T, root, pid, stat string, switches [][2]int) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, pid, "task"), 0o755))
	must(os.WriteFile(filepath.Join(root, pid, "stat"), []byte(stat), 0o644))
	for i, s := range switches {
		dir := filepath.Join(root, pid, "task", pid+string(rune('0'+i)))
		must(os.MkdirAll(dir, 0o755))
		must(os.WriteFile(filepath.Join(dir, "status"), []byte(
			"Name:\tx\nvoluntary_ctxt_switches:\t"+itoa(s[0])+"\nnonvoluntary_ctxt_switches:\t"+itoa(s[1])+"\n"), 0o644))
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// readProc counts the context switches of every thread, not only the main
// thread's (which is all /proc/<pid>/status shows): a BEAM serves calls on
// its scheduler threads, a Go process on its Ms.
func TestReadProcSumsThreads(t *testing.T) {
	root := t.TempDir()
	writeFakeProc(t, root, "42", "42 (beam.smp) S 1 42 42 0 -1 0 0 0 0 0 300 100 0 0", [][2]int{{1, 0}, {30, 2}, {100, 7}})
	s, err := readProc(root, "42")
	if err != nil {
		t.Fatal(err)
	}
	if s.CtxSwitches != 140 || math.Abs(s.CPU-4.0) > 1e-9 {
		t.Fatalf("sample = %+v, want 140 context switches and 4 s of CPU", s)
	}
	if _, err := readProc(root, "43"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a process that is gone: %v, want ErrNotExist", err)
	}
}

func TestParseLoadavg(t *testing.T) {
	if l, err := parseLoadavg("1.52 0.98 0.40 3/412 99123\n"); err != nil || l != 1.52 {
		t.Fatalf("got %v, %v", l, err)
	}
	for _, bad := range []string{"", "x 1 2 3/4 5", "1.0"} {
		if _, err := parseLoadavg(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestCheckLoad(t *testing.T) {
	tests := []struct {
		name               string
		start, end, max    float64
		allowBusy, quick   bool
		publishable, write bool
		reasons            int
	}{
		{name: "quiet", start: 0.4, end: 1.1, max: DefaultMaxLoad, publishable: true, write: true},
		{name: "at the limit", start: 1.5, end: 1.5, max: DefaultMaxLoad, publishable: true, write: true},
		{name: "busy at the start", start: 1.6, end: 0.9, max: DefaultMaxLoad, reasons: 1},
		{name: "busy at the end", start: 0.2, end: 3.0, max: DefaultMaxLoad, reasons: 1},
		{name: "busy throughout", start: 5, end: 6, max: DefaultMaxLoad, reasons: 2},
		{name: "busy, forced", start: 5, end: 6, max: DefaultMaxLoad, allowBusy: true, write: true, reasons: 2},
		{name: "quiet, forced", start: 0.5, end: 0.5, max: DefaultMaxLoad, allowBusy: true, publishable: true, write: true},
		{name: "a lower limit", start: 1.2, end: 0.5, max: 1.0, reasons: 1},
		{name: "a raised limit", start: 5, end: 6, max: 10, reasons: 1},
		{name: "a raised limit, forced", start: 5, end: 6, max: 10, allowBusy: true, write: true, reasons: 1},
		{name: "quick, quiet", start: 0.3, end: 0.9, max: DefaultMaxLoad, quick: true, reasons: 1},
		{name: "quick, forced", start: 0.3, end: 0.9, max: DefaultMaxLoad, quick: true, allowBusy: true, write: true, reasons: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := checkLoad(tc.start, tc.end, tc.max, tc.allowBusy, tc.quick)
			if v.Publishable != tc.publishable || v.Write != tc.write || len(v.Reasons) != tc.reasons {
				t.Fatalf("got %+v; want publishable %v, write %v, %d reasons", v, tc.publishable, tc.write, tc.reasons)
			}
		})
	}
}
