package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReplaceGenerated(t *testing.T) {
	doc := "# Benchmarks\nhand-written intro\n\n" + beginMarker + "\nold table\nold row\n" + endMarker + "\n\n## By hand\nkept\n"
	got, err := replaceGenerated(doc, "new table\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\nhand-written intro\n\n" + beginMarker + "\nnew table\n" + endMarker + "\n\n## By hand\nkept\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	again, err := replaceGenerated(got, "new table")
	if err != nil || again != got {
		t.Fatalf("a second replacement changed the document:\n%s\n(%v)", again, err)
	}
	for _, tc := range []struct {
		name, doc string
		want      error
	}{
		{"no markers", "# Benchmarks\n", errNoMarkers},
		{"only the begin marker", beginMarker + "\n", errNoMarkers},
		{"a marker twice", beginMarker + "\n" + endMarker + "\n" + beginMarker + "\n" + endMarker + "\n", errMarkerTwice},
		{"the end before the begin", endMarker + "\nx\n" + beginMarker + "\n", errMarkersOrder},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := replaceGenerated(tc.doc, "x"); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtInt(0), "0"}, {fmtInt(999), "999"}, {fmtInt(1000), "1,000"}, {fmtInt(1234567.4), "1,234,567"},
		{fmtInt(-4200), "-4,200"}, {fmtInt(math.NaN()), "-"},
		{fmtNum(123.4), "123"}, {fmtNum(12.34), "12.3"}, {fmtNum(1.234), "1.23"},
		{fmtRatio(0.5704), "0.57x"}, {fmtRatio(ratio(1, 0)), "-"}, {fmtRatio(ratio(3<<20, -31232)), "-"},
		{fmtBytes(16 << 10), "16.0 KiB"}, {fmtBytes(28.5 * (1 << 20)), "28.5 MiB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestAggregateCalls(t *testing.T) {
	rs := []callRun{
		{calls: 1000, elapsed: time.Second, p50: 100, p90: 150, p99: 400,
			server: procSample{CPU: 0.05, CtxSwitches: 1000}, caller: procSample{CPU: 0.1, CtxSwitches: 50}},
		{calls: 3000, elapsed: time.Second, p50: 80, p90: 120, p99: 900,
			server: procSample{CPU: 0.07, CtxSwitches: 1400}, caller: procSample{CPU: 0.1, CtxSwitches: 150}},
		{calls: 2000, elapsed: time.Second, p50: 90, p90: 130, p99: 500,
			server: procSample{CPU: 0.06, CtxSwitches: 600}, caller: procSample{CPU: 0.1, CtxSwitches: 100}},
	}
	s := aggregateCalls(rs)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if s.Calls != 6000 || !near(s.CallsPerSec, 2000) {
		t.Errorf("calls %d at %v/s, want 6000 at 2000/s", s.Calls, s.CallsPerSec)
	}
	if s.P50 != 90 || s.P90 != 130 || s.P99 != 500 {
		t.Errorf("percentiles %v/%v/%v, want the rounds' medians 90/130/500", s.P50, s.P90, s.P99)
	}
	if !near(s.ServerCPU, 30) || !near(s.CallerCPU, 50) || !near(s.ServerCS, 0.5) || !near(s.CallerCS, 0.05) {
		t.Errorf("per call: server %v us %v switches, caller %v us %v switches; want 30, 0.5, 50, 0.05",
			s.ServerCPU, s.ServerCS, s.CallerCPU, s.CallerCS)
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 200; i++ {
		lat = append(lat, time.Duration(i)*time.Microsecond)
	}
	if p50, p99 := percentile(lat, 50), percentile(lat, 99); p50 != 101 || p99 != 199 {
		t.Fatalf("p50 %v p99 %v, want 101 and 199 (element n*q/100, as the Elixir caller takes it)", p50, p99)
	}
	if percentile(nil, 50) != 0 {
		t.Fatal("no latencies")
	}
}

func TestParseInts(t *testing.T) {
	v, err := parseInts("{5123, 1000456789, 84000, 120000, 910000}")
	if err != nil || len(v) != 5 || v[0] != 5123 || v[4] != 910000 {
		t.Fatalf("got %v, %v", v, err)
	}
	for _, bad := range []string{":timeout", "{1, :x}", "", "{1, 2"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseProbe(t *testing.T) {
	out := "rss idle 100\nheap idle 10\nsomething else\nrss servers 300\nheap servers 30\nrss peers 700\nheap peers 70\n" +
		"rss prework 710\nheap prework 71\nrss worked 900\nheap worked 72\n"
	got, err := parseProbe(out)
	if err != nil || got["rss servers"] != 300 || got["heap peers"] != 70 {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := parseProbe("rss idle 100\nheap idle 10\nrss servers 300\nheap servers 30\n"); err == nil {
		t.Fatal("a probe that stopped before the peers parsed")
	}
}

// fixture is a run with one release and known figures.
func fixture(publishable bool) *Results {
	cell := func(size string, callers int, goRate, beamRate, goP50, beamP50, goCPU, beamCPU float64) CallCell {
		return CallCell{Size: size, Callers: callers, Paths: map[string]CallStats{
			PathElixirToGo:   {CallsPerSec: goRate, P50: goP50, P99: 2 * goP50, ServerCPU: goCPU, ServerCS: 4.8},
			PathElixirToBEAM: {CallsPerSec: beamRate, P50: beamP50, P99: 2 * beamP50, ServerCPU: beamCPU, ServerCS: 1.05, CallerCPU: 40},
			PathProcessCall:  {CallsPerSec: 1.5 * beamRate, P50: beamP50, CallerCPU: 30},
			PathNodeCall:     {CallsPerSec: beamRate / 2, P50: 2 * beamP50, CallerCPU: 60},
		}}
	}
	r := &Results{Date: "2026-12-04T20:00:00Z", Commit: "abc123", GoVersion: "go1.26", CPU: "AMD EPYC", NumCPU: 2,
		Mode: "full", Rounds: 3, CellSeconds: 1, LoadStart: 0.4, LoadEnd: 1.1, MaxLoad: 1.5, Publishable: publishable,
		Releases: []ReleaseResults{{Name: "otp25", OTP: "25.2.3", Elixir: "1.14.0",
			Calls: []CallCell{
				cell("small", 1, 5700, 10000, 176, 100, 103, 45),
				cell("small", 16, 12000, 10000, 90, 100, 20, 25),
				cell("64KiB", 1, 100, 1000, 900, 300, 500, 100), // not a goal cell
			},
			Throughput: []ThroughputCell{{Size: "64KiB", Messages: 4000,
				BEAMToBEAM: MsgStats{MsgPerSec: 10000}, BEAMToGo: MsgStats{MsgPerSec: 6000}, GoToBEAM: MsgStats{MsgPerSec: 11000}}},
		}},
		Memory: &MemoryResults{Release: "otp25", Servers: 200, Peers: 8, GoIdleRSS: 30 << 20, BEAMIdleRSS: 45 << 20,
			GoPerServer: 12 << 10, BEAMPerServer: 3 << 10, GoPerPeer: 80 << 10, BEAMPerPeer: 40 << 10,
			Worked: 16, GoPerWorkedServer: 1 << 20, BEAMPerWorkedServer: 1 << 10},
	}
	if !publishable {
		r.LoadStart, r.NotPublishable = 5.2, []string{"the 1-minute load average was 5.20 at the start, above 1.50"}
	}
	return r
}

func TestGoals(t *testing.T) {
	got := map[string]goal{}
	for _, g := range goals(fixture(true)) {
		got[g.What] = g
	}
	for _, tc := range []struct {
		what, measured string
		met            bool
	}{
		{"Elixir -> Go calls, small and 1 KiB: throughput >= 1.0x the BEAM server's", "lowest 0.57x (small, 1 caller)", false},
		{"Elixir -> Go calls, small and 1 KiB: p50 <= 1.0x the BEAM server's", "highest 1.76x (small, 1 caller)", false},
		{"Elixir -> Go calls, small and 1 KiB: server CPU per call <= the BEAM server's", "highest 2.29x (small, 1 caller)", false},
		{"BEAM -> Go 64 KiB messages: throughput >= 1.0x BEAM -> BEAM", "0.60x", false},
		{"an idle registered gen_server <= 16 KiB", "12.0 KiB", true},
		{"an idle registered gen_server that has handled 65,536 messages <= 16 KiB", "1.0 MiB", false},
		{"an idle node <= 16 MiB RSS", "30.0 MiB", false},
		{"<= 64 KiB per connected peer", "80.0 KiB", false},
	} {
		g, ok := got[tc.what]
		if !ok {
			t.Errorf("no goal %q", tc.what)
			continue
		}
		if g.Measured != tc.measured || g.Met != tc.met {
			t.Errorf("%s: measured %q met %v; want %q %v", tc.what, g.Measured, g.Met, tc.measured, tc.met)
		}
	}
	if len(got) != 8 {
		t.Errorf("%d goals, want 8", len(got))
	}
	// A results file from before the worked stage has no such figure: no
	// goal is claimed from a zero.
	old := fixture(true)
	old.Memory.Worked, old.Memory.GoPerWorkedServer = 0, 0
	for _, g := range goals(old) {
		if strings.Contains(g.What, "65,536") {
			t.Errorf("a goal from a stage that did not run: %+v", g)
		}
	}
}

func TestRenderMarkdown(t *testing.T) {
	md := renderMarkdown(fixture(true), "docs/bench")
	for _, want := range []string{
		"commit abc123, go1.26, 2 x AMD EPYC",
		"1-minute load average 0.40 at the start and 1.10 at the end (limit 1.50)",
		"OTP 25.2.3 (Elixir 1.14.0)",
		// small, 16 callers: 12,000 against 10,000 calls/s, p50 90 against 100 us.
		"| small | 16 | 12,000 / 10,000 | 1.20x | 90.0 / 100 | 0.90x | 180 / 200 | 0.90x | 20.0 / 25.0 | 4.80 / 1.05 | 0.00 / 40.0 |",
		// Go callers: Process.Call 1.5x, Node.Call 0.5x the Elixir callers.
		"| small | 1 | 10,000 / 15,000 / 5,000 | 1.50x | 0.50x |",
		"| 64 KiB | 4,000 | 6,000 / 10,000 | 0.60x | 11,000 / 10,000 | 1.10x |",
		"| idle node RSS | 30.0 MiB | 45.0 MiB | 0.67x | <= 16 MiB |",
		"![calls per second against callers, OTP 25.2.3](docs/bench/calls-throughput-otp25.png)",
		"| an idle registered gen_server <= 16 KiB | any | 12.0 KiB | yes |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the section lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "NOT PUBLISHABLE") {
		t.Error("a publishable run is marked NOT PUBLISHABLE")
	}
	busy := renderMarkdown(fixture(false), "docs/bench")
	if !strings.HasPrefix(busy, "**NOT PUBLISHABLE: the 1-minute load average was 5.20 at the start, above 1.50.") {
		t.Errorf("a forced run does not start with the banner:\n%.300s", busy)
	}
}

// The repository's BENCHMARKS.md keeps one pair of markers, so that a run
// of `make bench` can write its section (a hand edit that breaks them fails
// here, not after a ten-minute run), and its committed section's charts
// and results file are there.
func TestRepositoryBenchmarks(t *testing.T) {
	doc, err := os.ReadFile("../../BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replaceGenerated(string(doc), "x"); err != nil {
		t.Fatalf("BENCHMARKS.md: %v", err)
	}
	b, err := os.ReadFile("../results/latest.json")
	if err != nil {
		t.Fatal(err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("bench/results/latest.json: %v", err)
	}
	if len(r.Releases) == 0 {
		t.Fatal("bench/results/latest.json holds no release")
	}
	for _, rel := range r.Releases {
		for _, chart := range []string{"calls-throughput-", "calls-latency-"} {
			p := filepath.Join("../../docs/bench", chart+rel.Name+".png")
			if _, err := os.Stat(p); err != nil {
				t.Errorf("BENCHMARKS.md links %s: %v", p, err)
			}
		}
	}
}
