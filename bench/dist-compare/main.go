// Command dist-compare measures node/dist's BenchmarkDistVsBEAM for two
// revisions of the repository, alternating them (A, B, A, B, ...) so that
// both see the same machine load, and prints per cell the median and range
// of the Go / BEAM->BEAM ratios of each, and of the Go side's absolute
// figures: the procedure behind the comparisons in docs/performance-notes.md.
//
// Usage (as root: the package's tests run in a network namespace):
//
//	go run ./bench/dist-compare [-runs 3] [-bench REGEXP] REV_A REV_B
//
// Each revision is checked out into a temporary git worktree and its
// node/dist test binary built once.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	runs := flag.Int("runs", 3, "alternating runs per revision")
	bench := flag.String("bench", "^BenchmarkDistVsBEAM$", "benchmarks to run (go test -bench)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: dist-compare [-runs N] [-bench REGEXP] REV_A REV_B")
		os.Exit(2)
	}
	if err := run(flag.Args(), *runs, *bench); err != nil {
		fmt.Fprintln(os.Stderr, "dist-compare:", err)
		os.Exit(1)
	}
}

func run(revs []string, runs int, bench string) error {
	tmp, err := os.MkdirTemp("", "dist-compare")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bins := make([]string, len(revs))
	for i, rev := range revs {
		wt := filepath.Join(tmp, fmt.Sprintf("wt%d", i))
		if out, err := exec.Command("git", "worktree", "add", "--detach", wt, rev).CombinedOutput(); err != nil {
			return fmt.Errorf("worktree for %s: %v: %s", rev, err, out)
		}
		defer exec.Command("git", "worktree", "remove", "--force", wt).Run()
		bins[i] = filepath.Join(tmp, fmt.Sprintf("dist%d.test", i))
		build := exec.Command("go", "test", "-c", "-o", bins[i], "./node/dist/")
		build.Dir = wt
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v: %s", rev, err, out)
		}
	}
	// results[cell][rev] holds one metrics map per run.
	results := map[string][][]map[string]float64{}
	for r := 0; r < runs; r++ {
		for i, bin := range bins {
			fmt.Fprintf(os.Stderr, "run %d/%d: %s\n", r+1, runs, revs[i])
			cmd := exec.Command(bin, "-test.run", "XXX", "-test.bench", bench, "-test.benchtime", "1x")
			cmd.Dir = "node/dist"
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", revs[i], err, out)
			}
			for cell, m := range parse(out) {
				if results[cell] == nil {
					results[cell] = make([][]map[string]float64, len(revs))
				}
				results[cell][i] = append(results[cell][i], m)
			}
		}
	}
	cells := make([]string, 0, len(results))
	for c := range results {
		cells = append(cells, c)
	}
	slices.Sort(cells)
	fmt.Printf("| cell | %s | %s |\n|---|---|---|\n", revs[0], revs[1])
	for _, c := range cells {
		fmt.Printf("| %s | %s | %s |\n", c, summary(results[c][0]), summary(results[c][1]))
	}
	return nil
}

var line = regexp.MustCompile(`^BenchmarkDistVsBEAM/(\S+?)(-\d+)?\s+\d+\s+\d+ ns/op(.*)$`)
var metric = regexp.MustCompile(`([\d.e+-]+) (\S+)`)

// parse reads go test -bench output: per cell, its reported metrics.
func parse(out []byte) map[string]map[string]float64 {
	cells := map[string]map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		vals := map[string]float64{}
		for _, kv := range metric.FindAllStringSubmatch(m[3], -1) {
			if v, err := strconv.ParseFloat(kv[1], 64); err == nil {
				vals[kv[2]] = v
			}
		}
		cells[m[1]] = vals
	}
	return cells
}

// summary is the median and range of the ratios, and the median of the Go
// side's own figures, over runs.
func summary(runs []map[string]float64) string {
	if len(runs) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range []string{"x_beam", "x_beam_p50", "x_beam_p99"} {
		if v := collect(runs, k); v != nil {
			parts = append(parts, fmt.Sprintf("%s %.2fx (%.2f-%.2f)", strings.TrimPrefix(k, "x_beam_"), median(v), v[0], v[len(v)-1]))
		}
	}
	for _, k := range []string{"go_msg/s", "go_p50_us", "go_p99_us", "rx_cpu_us/msg_go", "rx_cpu_us/msg_from_go"} {
		if v := collect(runs, k); v != nil {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, median(v)))
		}
	}
	return strings.Join(parts, "; ")
}

// collect returns the sorted values of metric k, nil when no run has it.
func collect(runs []map[string]float64, k string) []float64 {
	var v []float64
	for _, r := range runs {
		if x, ok := r[k]; ok {
			v = append(v, x)
		}
	}
	slices.Sort(v)
	return v
}

func median(v []float64) float64 {
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
