package main

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultMaxLoad is the highest 1-minute load average, at the start and at
// the end of a run, at which the suite publishes its figures: on the 2-core
// machine the figures are taken on, more than about 1.5 runnable tasks
// besides the benchmark means the nodes waited for a core, and the ratios
// then measure the machine, not gonode (issue 17 found the call ratios
// 1.18-1.26x at load 2-6 and 1.44-1.59x on a quiet machine).
const DefaultMaxLoad = 1.5

// parseLoadavg returns the 1-minute load average from the text of
// /proc/loadavg.
func parseLoadavg(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return 0, fmt.Errorf("loadavg: %q", s)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("loadavg: %q: %w", f[0], err)
	}
	return v, nil
}

// loadVerdict says whether a run may be published and, if not, why.
type loadVerdict struct {
	Publishable bool     // both loads were at most the limit, and the limit was not raised
	Write       bool     // write BENCHMARKS.md and the charts
	Reasons     []string // why the run is not publishable
}

// checkLoad judges a run: the 1-minute load average at start and at end
// must both be at most max. A limit raised above DefaultMaxLoad, and a
// -quick run (one short round per cell), are reasons too: the figures of
// such a run are not publishable either. allowBusy writes the output
// anyway, marked as not publishable.
func checkLoad(start, end, max float64, allowBusy, quick bool) loadVerdict {
	var v loadVerdict
	if quick {
		v.Reasons = append(v.Reasons, "a -quick run (one short round per cell), for development")
	}
	if max > DefaultMaxLoad {
		v.Reasons = append(v.Reasons, fmt.Sprintf("the load limit was raised to %.2f (-max-load), above %.2f", max, DefaultMaxLoad))
	}
	if start > max {
		v.Reasons = append(v.Reasons, startReason(start, max))
	}
	if end > max {
		v.Reasons = append(v.Reasons, fmt.Sprintf("the 1-minute load average was %.2f at the end, above %.2f", end, max))
	}
	v.Publishable = len(v.Reasons) == 0
	v.Write = v.Publishable || allowBusy
	return v
}

func startReason(start, max float64) string {
	return fmt.Sprintf("the 1-minute load average was %.2f at the start, above %.2f", start, max)
}
