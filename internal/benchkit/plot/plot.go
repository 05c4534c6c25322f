// Package plot draws benchkit results as PNG charts with gonum/plot. It is a
// package of its own so that the raptor binary, which links benchkit, does
// not carry gonum/plot's fonts and writers: bench/cmd/raptor-bench-all
// registers it ([Register]) and draws the charts of docs/BENCHMARKS.md.
package plot

import (
	"fmt"
	"image/color"
	"os"

	"github.com/raptormq/raptor/internal/benchkit"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Write draws the results into a PNG at path: latency percentiles (log
// scale, one line per suite/transport/size) and, when there are throughput
// results, their message rates as bars.
func Write(path, title string, rs []benchkit.Result) error {
	var lat, thr []benchkit.Result
	for _, r := range rs {
		if r.MaxUs > 0 && r.Suite != benchkit.SuiteKafkaMax { // flat-out kafka latency is queueing: table only
			lat = append(lat, r)
		}
		if r.Suite == benchkit.SuiteThroughput || r.Suite == benchkit.SuiteKafkaMax {
			thr = append(thr, r)
		}
	}
	var plots []*plot.Plot
	if len(lat) > 0 {
		p, err := latencyPlot(title, lat)
		if err != nil {
			return err
		}
		plots = append(plots, p)
	}
	if len(thr) > 0 {
		p, err := throughputPlot(title, thr)
		if err != nil {
			return err
		}
		plots = append(plots, p)
	}
	if len(plots) == 0 {
		return fmt.Errorf("bench: nothing to plot into %s", path)
	}
	const w, h = 11 * vg.Inch, 6 * vg.Inch
	img := vgimg.New(w, h*vg.Length(len(plots)))
	dc := draw.New(img)
	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	t := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Millimeter * 6, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(rows, t, dc)
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return f.Close()
}

func label(r benchkit.Result) string {
	s := fmt.Sprintf("%s %s %dB", r.Suite, r.Transport, r.Size)
	if r.Reply != 0 {
		s = fmt.Sprintf("%s %s %d/%dB", r.Suite, r.Transport, r.Size, r.Reply)
	}
	return s
}

// logTicks labels a log axis at 1, 10, 100... with plain numbers.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for v := 1e-3; v <= max*10; v *= 10 {
		if v < min/10 {
			continue
		}
		ts = append(ts, plot.Tick{Value: v, Label: benchkit.FormatNum(v)})
		for k := 2.0; k < 10; k++ {
			ts = append(ts, plot.Tick{Value: v * k})
		}
	}
	return ts
}

func latencyPlot(title string, rs []benchkit.Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title + " — latency percentiles"
	p.Y.Label.Text = "µs (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	names := []string{"p50", "p90", "p99", "p99.9", "max"}
	p.NominalX(names...)
	p.Legend.Top = true
	p.Legend.Left = true
	var sizes []string
	top := 0.0
	for _, r := range rs {
		top = max(top, r.MaxUs)
	}
	// Headroom above the highest line for the legend (log scale: ×40 is
	// about a third of the height more).
	p.Y.Max = top * 40
	for i, r := range rs {
		vals := []float64{r.P50us, r.P90us, r.P99us, r.P999us, r.MaxUs}
		sk := fmt.Sprintf("%s/%d/%d", r.Suite, r.Size, r.Reply)
		si := -1
		for j, k := range sizes {
			if k == sk {
				si = j
			}
		}
		if si < 0 {
			si = len(sizes)
			sizes = append(sizes, sk)
		}
		pts := make(plotter.XYs, 0, len(vals))
		for j, v := range vals {
			pts = append(pts, plotter.XY{X: float64(j), Y: max(v, 0.1)})
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		c := transportColor(r.Transport, i)
		l.Color, s.Color = c, c
		l.Dashes = plotutil.Dashes(si)
		s.Shape = plotutil.Shape(si)
		if r.Transport == "raptor" {
			l.Width = vg.Points(2.5)
		}
		p.Add(l, s)
		p.Legend.Add(label(r), l, s)
	}
	return p, nil
}

// transportColor gives each known transport one color in every chart.
func transportColor(name string, i int) color.Color {
	switch name {
	case "raptor":
		return color.RGBA{R: 214, G: 39, B: 40, A: 255}
	case "tcp":
		return color.RGBA{R: 31, G: 119, B: 180, A: 255}
	case "udp":
		return color.RGBA{R: 90, G: 90, B: 90, A: 255}
	case "kcp":
		return color.RGBA{R: 44, G: 160, B: 44, A: 255}
	case "quic":
		return color.RGBA{R: 255, G: 127, B: 14, A: 255}
	}
	return plotutil.Color(i)
}

func throughputPlot(title string, rs []benchkit.Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title + " — throughput (counted at the receiver)"
	p.Y.Label.Text = "million messages/s"
	vals := make(plotter.Values, len(rs))
	names := make([]string, len(rs))
	for i, r := range rs {
		vals[i] = r.MsgsPerS / 1e6
		names[i] = fmt.Sprintf("%s\n%s %dB", r.Suite, r.Transport, r.Size)
	}
	for i := range rs {
		one := make(plotter.Values, len(rs)) // zero elsewhere: one bar per chart, colored by transport
		one[i] = vals[i]
		b, err := plotter.NewBarChart(one, vg.Points(22))
		if err != nil {
			return nil, err
		}
		b.Color = transportColor(rs[i].Transport, i)
		b.LineStyle.Width = 0
		p.Add(b)
	}
	p.NominalX(names...)
	p.X.Tick.Label.Font.Size = vg.Points(8)
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: barTops(vals), Labels: mLabels(rs)})
	if err == nil {
		p.Add(labels)
	}
	return p, nil
}

func barTops(v plotter.Values) plotter.XYs {
	out := make(plotter.XYs, len(v))
	for i, y := range v {
		out[i] = plotter.XY{X: float64(i) - 0.25, Y: y}
	}
	return out
}

func mLabels(rs []benchkit.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%.2fM", r.MsgsPerS/1e6)
	}
	return out
}

// Register makes reg's bench draw charts (--plot) with [Write].
func Register(reg *benchkit.Registry) { reg.SetPlotter(Write) }
