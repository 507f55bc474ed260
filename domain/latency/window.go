// Package latency keeps the recent samples of a lag (the transparency
// log's, from an event to the checkpoint covering it; a read model's, from
// an event's commit to its own) and reports their percentiles.
package latency

import (
	"slices"
	"time"
)

// Window keeps the most recent Size samples. It is not safe for
// concurrent use: its owner guards it.
type Window struct {
	Size    int
	samples []time.Duration
	next    int
}

// Add records a sample, forgetting the oldest once the window is full.
func (w *Window) Add(d time.Duration) {
	if len(w.samples) < w.Size {
		w.samples = append(w.samples, d)
		return
	}
	w.samples[w.next] = d
	w.next = (w.next + 1) % w.Size
}

// Stats are the median, the 99th percentile and the maximum of the
// samples held, and how many there are; zero without samples.
func (w *Window) Stats() (p50, p99, max time.Duration, n int) {
	if len(w.samples) == 0 {
		return 0, 0, 0, 0
	}
	s := slices.Clone(w.samples)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[int(float64(len(s)-1)*p)] }
	return at(0.5), at(0.99), s[len(s)-1], len(s)
}
