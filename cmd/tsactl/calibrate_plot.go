package main

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeCalibrationPNG plots, for every granted query, Ts − Tq and Tr − Tq
// in milliseconds against the query's number (or, byTime, its Tq in
// seconds since the first query's), with a line at the mean of Ts − Tq;
// an 8 × 4 in PNG at 120 dpi.
func writeCalibrationPNG(w io.Writer, samples []calSample, title string, byTime bool) error {
	var tsq, trq plotter.XYs
	var t0 float64
	for i, s := range samples {
		if i == 0 {
			t0 = float64(s.Tq.UnixNano()) / 1e9
		}
		if !s.ok() {
			continue
		}
		x := float64(s.Index)
		if byTime {
			x = float64(s.Tq.UnixNano())/1e9 - t0
		}
		tsq = append(tsq, plotter.XY{X: x, Y: ms(s.tsMinusTq())})
		trq = append(trq, plotter.XY{X: x, Y: ms(s.trMinusTq())})
	}
	if len(tsq) == 0 {
		return fmt.Errorf("no granted query to plot")
	}

	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "query"
	if byTime {
		p.X.Label.Text = "Tq, seconds since the first query"
	}
	p.Y.Label.Text = "milliseconds"
	p.Add(plotter.NewGrid())

	blue := color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange := color.RGBA{R: 255, G: 127, B: 14, A: 255}
	rt, err := plotter.NewScatter(trq)
	if err != nil {
		return err
	}
	rt.GlyphStyle = draw.GlyphStyle{Color: orange, Radius: vg.Points(2.2), Shape: draw.TriangleGlyph{}}
	ts, err := plotter.NewScatter(tsq)
	if err != nil {
		return err
	}
	ts.GlyphStyle = draw.GlyphStyle{Color: blue, Radius: vg.Points(2), Shape: draw.CircleGlyph{}}

	tsMs, _, _ := calibrationSeries(samples)
	mean := summarize(tsMs).Mean
	meanLine := plotter.NewFunction(func(float64) float64 { return mean })
	meanLine.Color = blue
	meanLine.Width = vg.Points(1)
	meanLine.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}

	p.Add(rt, ts, meanLine)
	p.Legend.Add("Tr − Tq (round trip)", rt)
	p.Legend.Add("Ts − Tq (genTime − query sent)", ts)
	p.Legend.Add(fmt.Sprintf("mean Ts − Tq = %.3f ms", mean), meanLine)
	p.Legend.Top = true
	p.Legend.Left = true
	// Zero is the reference (Ts before Tq is a TSA clock behind ours),
	// and the top third is left to the legend.
	p.Y.Min = min(p.Y.Min, 0)
	p.Y.Max += (p.Y.Max - p.Y.Min) / 2

	if !byTime {
		p.X.Min = 0
		p.X.Max = float64(len(samples) + 1)
	}

	c := vgimg.NewWith(vgimg.UseWH(8*vg.Inch, 4*vg.Inch), vgimg.UseDPI(120))
	p.Draw(draw.New(c))
	_, err = vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return err
}
