package main

import (
	"bytes"
	"encoding/csv"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want summary
	}{
		{"empty", nil, summary{}},
		{"one", []float64{2.5}, summary{N: 1, Mean: 2.5, SD: 0, Min: 2.5, Max: 2.5, Median: 2.5}},
		{"two", []float64{1, 3}, summary{N: 2, Mean: 2, SD: math.Sqrt2, Min: 1, Max: 3, Median: 2}},
		{"odd, unsorted", []float64{5, 1, 3}, summary{N: 3, Mean: 3, SD: 2, Min: 1, Max: 5, Median: 3}},
		// Sample SD of 2,4,4,4,5,5,7,9: sum of squares 32 over 7.
		{"even", []float64{2, 4, 4, 4, 5, 5, 7, 9}, summary{N: 8, Mean: 5, SD: math.Sqrt(32.0 / 7), Min: 2, Max: 9, Median: 4.5}},
		{"negative", []float64{-0.5, -1.5, 0.25, -0.25}, summary{N: 4, Mean: -0.5, SD: math.Sqrt(1.625 / 3), Min: -1.5, Max: 0.25, Median: -0.375}},
		{"constant", []float64{0.1, 0.1, 0.1}, summary{N: 3, Mean: 0.1, SD: 0, Min: 0.1, Max: 0.1, Median: 0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			got := summarize(in)
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
			if got.N != tc.want.N || !near(got.Mean, tc.want.Mean) || !near(got.SD, tc.want.SD) ||
				!near(got.Min, tc.want.Min) || !near(got.Max, tc.want.Max) || !near(got.Median, tc.want.Median) {
				t.Errorf("summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatalf("summarize reordered its input: %v", in)
				}
			}
		})
	}
}

// calFixture is three queries: two granted (the second with its genTime
// 3 ms before Tq, outside a 1 ms accuracy), one failed.
func calFixture() []calSample {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	acc := &rfc3161.Accuracy{Millis: 1}
	return []calSample{
		{Index: 1, Tq: t0, Tr: t0.Add(2 * time.Millisecond), Ts: t0.Add(1500 * time.Microsecond), Accuracy: acc, Status: "granted", Serial: "17"},
		{Index: 2, Tq: t0.Add(time.Second), Tr: t0.Add(time.Second + 4*time.Millisecond), Ts: t0.Add(time.Second - 3*time.Millisecond), Accuracy: acc, Status: "granted", Serial: "18"},
		{Index: 3, Tq: t0.Add(2 * time.Second), Tr: t0.Add(2*time.Second + time.Millisecond), Status: "rejection (badAlg): no", Err: "not granted: rejection (badAlg): no"},
	}
}

func TestCalibrationWithinAccuracy(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tq, tr := t0, t0.Add(10*time.Millisecond)
	for _, tc := range []struct {
		ts   time.Duration // after Tq
		acc  *rfc3161.Accuracy
		want bool
	}{
		{5 * time.Millisecond, nil, true},
		{0, nil, true},
		{10 * time.Millisecond, nil, true},
		{-time.Microsecond, nil, false},
		{10*time.Millisecond + time.Microsecond, nil, false},
		{-time.Second, &rfc3161.Accuracy{Seconds: 1}, true},
		{-time.Second - time.Microsecond, &rfc3161.Accuracy{Seconds: 1}, false},
		{11 * time.Millisecond, &rfc3161.Accuracy{Millis: 1}, true},
		{11*time.Millisecond + 2*time.Microsecond, &rfc3161.Accuracy{Millis: 1, Micros: 1}, false},
	} {
		s := calSample{Tq: tq, Tr: tr, Ts: tq.Add(tc.ts), Accuracy: tc.acc}
		if got := s.withinAccuracy(); got != tc.want {
			t.Errorf("Ts = Tq%+v, accuracy %v: within = %v, want %v", tc.ts, tc.acc.Duration(), got, tc.want)
		}
	}
}

func TestCalibrationCSV(t *testing.T) {
	var b bytes.Buffer
	if err := writeCalibrationCSV(&b, calFixture()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"index", "tq", "tr", "ts", "ts_minus_tq_ms", "tr_minus_tq_ms", "status", "serial", "error"},
		{"1", "2026-05-01T12:00:00.000000000Z", "2026-05-01T12:00:00.002000000Z", "2026-05-01T12:00:00.001500000Z", "1.500", "2.000", "granted", "17", ""},
		{"2", "2026-05-01T12:00:01.000000000Z", "2026-05-01T12:00:01.004000000Z", "2026-05-01T12:00:00.997000000Z", "-3.000", "4.000", "granted", "18", ""},
		{"3", "2026-05-01T12:00:02.000000000Z", "2026-05-01T12:00:02.001000000Z", "", "", "1.000", "rejection (badAlg): no", "", "not granted: rejection (badAlg): no"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(want), b.String())
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
	for _, r := range rows[1:] {
		for _, col := range []int{1, 2, 3} {
			if r[col] == "" {
				continue
			}
			if _, err := time.Parse(time.RFC3339Nano, r[col]); err != nil {
				t.Errorf("column %d: %v", col, err)
			}
		}
	}
}

func TestCalibrationReport(t *testing.T) {
	var b bytes.Buffer
	printCalibrationReport(&b, "http://tsa.example/tsa", calFixture())
	out := b.String()
	for _, want := range []string{
		"queries:    3 sent, 2 granted, 1 failed\n",
		"error:      1 × not granted: rejection (badAlg): no\n",
		"accuracy:   1ms declared in every token\n",
		// Ts − Tq: 1.5 and −3 ms.
		"Ts - Tq:    mean   -0.750  sd   3.182  min   -3.000  max    1.500  median   -0.750  ms\n",
		"Tr - Tq:    mean    3.000  sd   1.414  min    2.000  max    4.000  median    3.000  ms\n",
		"Tr - Ts:    mean    3.750  sd   4.596  min    0.500  max    7.000  median    3.750  ms\n",
		"check:      NO, 1 of 2 genTimes lie outside [Tq - accuracy, Tr + accuracy] (first: query 2)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestCalibrationPNG(t *testing.T) {
	for _, byTime := range []bool{false, true} {
		var b bytes.Buffer
		if err := writeCalibrationPNG(&b, calFixture(), "tsactl calibrate http://tsa.example/tsa, 2026-05-01 12:00 UTC", byTime); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&b)
		if err != nil {
			t.Fatal(err)
		}
		if sz := img.Bounds().Size(); sz.X != 960 || sz.Y != 480 {
			t.Errorf("byTime %v: image is %v, want 960x480 (8x4 in at 120 dpi)", byTime, sz)
		}
	}
	failed := calFixture()[2:]
	if err := writeCalibrationPNG(&bytes.Buffer{}, failed, "t", false); err == nil {
		t.Error("a plot of no granted query did not fail")
	}
}
