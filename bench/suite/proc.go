package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 in its /proc interface on every architecture gonode
// runs on.
const userHZ = 100

// procSample is what the suite reads of one operating system process before
// and after a measurement.
type procSample struct {
	// CPU is user plus system time of all the process's threads, seconds,
	// from /proc/<pid>/stat (fields 14 and 15, threads that exited included).
	CPU float64
	// CtxSwitches is the sum over the process's live threads of
	// voluntary_ctxt_switches and nonvoluntary_ctxt_switches
	// (/proc/<pid>/task/*/status; /proc/<pid>/status alone counts only the
	// main thread's).
	CtxSwitches int64
}

// sub returns s - o.
func (s procSample) sub(o procSample) procSample {
	return procSample{CPU: s.CPU - o.CPU, CtxSwitches: s.CtxSwitches - o.CtxSwitches}
}

// parseStatCPU returns utime+stime in seconds from the text of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so the fields are counted from the
// last ')'.
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command name in %.80q", stat)
	}
	// After ") " come field 3 (state) onwards: utime is field 14, stime 15.
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: utime %q stime %q", f[11], f[12])
	}
	return float64(ut+st) / userHZ, nil
}

// statusFields returns the values of the named fields of a
// /proc/<pid>/status text ("Name:\tvalue unit" lines), the first word of
// each value.
func statusFields(status string, names ...string) (map[string]string, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !want[k] {
			continue
		}
		if f := strings.Fields(v); len(f) > 0 {
			got[k] = f[0]
		}
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			return nil, fmt.Errorf("status: no %s line", n)
		}
	}
	return got, nil
}

// parseStatusCtxt returns voluntary plus nonvoluntary context switches from
// the text of a /proc/<pid>/task/<tid>/status.
func parseStatusCtxt(status string) (int64, error) {
	f, err := statusFields(status, "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
	if err != nil {
		return 0, err
	}
	v, err1 := strconv.ParseInt(f["voluntary_ctxt_switches"], 10, 64)
	nv, err2 := strconv.ParseInt(f["nonvoluntary_ctxt_switches"], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("status: context switches %q %q", f["voluntary_ctxt_switches"], f["nonvoluntary_ctxt_switches"])
	}
	return v + nv, nil
}

// parseStatusRSS returns VmRSS in bytes from the text of /proc/<pid>/status.
func parseStatusRSS(status string) (int64, error) {
	f, err := statusFields(status, "VmRSS")
	if err != nil {
		return 0, err
	}
	kib, err := strconv.ParseInt(f["VmRSS"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("status: VmRSS %q", f["VmRSS"])
	}
	return kib * 1024, nil
}

// readProc samples process pid ("self" for this one) from procRoot
// ("/proc").
func readProc(procRoot, pid string) (procSample, error) {
	var s procSample
	dir := filepath.Join(procRoot, pid)
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return s, err
	}
	if s.CPU, err = parseStatCPU(string(b)); err != nil {
		return s, fmt.Errorf("%s: %w", dir, err)
	}
	tasks, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		return s, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, "task", t.Name(), "status"))
		if err != nil {
			continue // the thread exited meanwhile
		}
		n, err := parseStatusCtxt(string(b))
		if err != nil {
			return s, fmt.Errorf("%s task %s: %w", dir, t.Name(), err)
		}
		s.CtxSwitches += n
	}
	return s, nil
}

// readRSS returns the resident set size of process pid in bytes.
func readRSS(procRoot, pid string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, pid, "status"))
	if err != nil {
		return 0, err
	}
	return parseStatusRSS(string(b))
}

// add returns s + o.
func (s procSample) add(o procSample) procSample {
	return procSample{CPU: s.CPU + o.CPU, CtxSwitches: s.CtxSwitches + o.CtxSwitches}
}
