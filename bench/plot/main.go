// Command plot draws the charts of `make bench` from the suite's results
// (bench/results/latest.json, written by bench/suite): per OTP release,
// calls per second against the number of concurrent callers, and the call
// latency percentiles p50/p90/p99, for the four call paths.
//
// It is a Go module of its own so that its plotting library
// (gonum.org/v1/plot) stays out of gonode's go.mod and the library
// packages' import graph; it reads the results file only and imports
// nothing of gonode's. scripts/bench.sh runs it after the suite.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// results mirrors the fields of bench/suite's Results that the charts draw.
type results struct {
	Date        string `json:"date"`
	Commit      string `json:"commit"`
	Mode        string `json:"mode"`
	Publishable bool   `json:"publishable"`
	Releases    []struct {
		Name  string `json:"name"`
		OTP   string `json:"otp"`
		Calls []struct {
			Size    string `json:"size"`
			Callers int    `json:"callers"`
			Paths   map[string]struct {
				CallsPerSec float64 `json:"calls_per_sec"`
				P50         float64 `json:"p50_us"`
				P90         float64 `json:"p90_us"`
				P99         float64 `json:"p99_us"`
			} `json:"paths"`
		} `json:"calls"`
	} `json:"releases"`
}

// paths are the suite's call paths, in legend order, with their labels.
var paths = []struct{ key, label string }{
	{"elixir_to_go", "Elixir -> Go server"},
	{"elixir_to_beam", "Elixir -> BEAM server"},
	{"go_process_call", "Go Process.Call -> BEAM"},
	{"go_node_call", "Go Node.Call -> BEAM"},
}

var colors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

var sizes = []struct{ key, label string }{{"small", "small term"}, {"1KiB", "1 KiB"}, {"64KiB", "64 KiB"}}

func main() {
	in := flag.String("in", "bench/results/latest.json", "the suite's results")
	out := flag.String("out", "docs/bench", "the directory the PNG files are written to")
	flag.Parse()
	b, err := os.ReadFile(*in)
	if err != nil {
		fail(err)
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		fail(fmt.Errorf("%s: %w", *in, err))
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	note := fmt.Sprintf("%s, commit %s, %s mode", r.Date, r.Commit, r.Mode)
	if !r.Publishable {
		note += " - NOT PUBLISHABLE (busy machine)"
	}
	for _, rel := range r.Releases {
		callers := map[string]map[int]int{} // size -> callers -> index in rel.Calls
		var counts []int
		for i, c := range rel.Calls {
			if callers[c.Size] == nil {
				callers[c.Size] = map[int]int{}
			}
			callers[c.Size][c.Callers] = i
			if !containsInt(counts, c.Callers) {
				counts = append(counts, c.Callers)
			}
		}
		// Throughput against callers: one panel per term size.
		row := make([]*plot.Plot, 0, len(sizes))
		for _, s := range sizes {
			p := plot.New()
			p.Title.Text = fmt.Sprintf("OTP %s, %s: calls/s", rel.OTP, s.label)
			p.X.Label.Text = "concurrent callers"
			p.Y.Label.Text = "calls per second"
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = callerTicks(counts)
			p.Y.Min = 0
			p.Legend.Top = true
			top := 0.0
			for k, path := range paths {
				var xy plotter.XYs
				for _, n := range counts {
					if i, ok := callers[s.key][n]; ok {
						v := rel.Calls[i].Paths[path.key].CallsPerSec
						xy = append(xy, plotter.XY{X: float64(n), Y: v})
						top = max(top, v)
					}
				}
				if len(xy) == 0 {
					continue
				}
				l, pts, err := plotter.NewLinePoints(xy)
				if err != nil {
					fail(err)
				}
				l.Color, pts.Color = colors[k], colors[k]
				pts.Shape = draw.CircleGlyph{}
				p.Add(l, pts)
				p.Legend.Add(path.label, l, pts)
			}
			p.Y.Max = 1.4 * top // room for the legend
			row = append(row, p)
		}
		if err := save(filepath.Join(*out, "calls-throughput-"+rel.Name+".png"), [][]*plot.Plot{row}, note, 36, 11); err != nil {
			fail(err)
		}
		// Latency percentiles: a panel per term size (rows) and number of
		// callers (columns), a group of bars per percentile.
		var grid [][]*plot.Plot
		for _, s := range sizes {
			var line []*plot.Plot
			for _, n := range counts {
				i, ok := callers[s.key][n]
				if !ok {
					continue
				}
				p := plot.New()
				p.Title.Text = fmt.Sprintf("OTP %s, %s, %d caller(s)", rel.OTP, s.label, n)
				p.Y.Label.Text = "call latency, us"
				p.Legend.Top, p.Legend.Left = true, true
				w := vg.Points(9)
				top := 0.0
				for k, path := range paths {
					st := rel.Calls[i].Paths[path.key]
					top = max(top, st.P99)
					bars, err := plotter.NewBarChart(plotter.Values{st.P50, st.P90, st.P99}, w)
					if err != nil {
						fail(err)
					}
					bars.Color = colors[k]
					bars.LineStyle.Width = 0
					bars.Offset = w * vg.Length(float64(k)-float64(len(paths)-1)/2)
					p.Add(bars)
					p.Legend.Add(path.label, bars)
				}
				p.NominalX("p50", "p90", "p99")
				p.Y.Max = 1.4 * top // room for the legend
				line = append(line, p)
			}
			if len(line) > 0 {
				grid = append(grid, line)
			}
		}
		if len(grid) > 0 {
			if err := save(filepath.Join(*out, "calls-latency-"+rel.Name+".png"), grid, note, 36, 30); err != nil {
				fail(err)
			}
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// callerTicks marks exactly the measured numbers of callers.
func callerTicks(counts []int) plot.ConstantTicks {
	var t []plot.Tick
	for _, n := range counts {
		t = append(t, plot.Tick{Value: float64(n), Label: fmt.Sprint(n)})
	}
	return t
}

// save draws a grid of plots, with a note line at the bottom, into a PNG of
// w x h centimetres.
func save(path string, grid [][]*plot.Plot, note string, w, h float64) error {
	img := vgimg.New(vg.Length(w)*vg.Centimeter, vg.Length(h)*vg.Centimeter)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	foot := vg.Centimeter
	body := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: dc.Min.X, Y: dc.Min.Y + foot}, Max: dc.Max}}
	t := draw.Tiles{Rows: len(grid), Cols: len(grid[0]), PadX: vg.Centimeter, PadY: vg.Centimeter,
		PadTop: vg.Centimeter / 2, PadBottom: vg.Centimeter / 2, PadLeft: vg.Centimeter / 2, PadRight: vg.Centimeter / 2}
	canvases := plot.Align(grid, t, body)
	for i := range grid {
		for j := range grid[i] {
			grid[i][j].Draw(canvases[i][j])
		}
	}
	sty := draw.TextStyle{Color: color.Black, Font: plot.DefaultFont, Handler: plot.DefaultTextHandler}
	sty.Font.Size = vg.Points(10)
	dc.FillText(sty, vg.Point{X: dc.Min.X + vg.Centimeter/2, Y: dc.Min.Y + foot/3}, note)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}
