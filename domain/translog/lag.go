package translog

import (
	"slices"
	"time"
)

// lagWindow keeps the most recent lag samples.
type lagWindow struct {
	size    int
	samples []time.Duration
	next    int
}

func (l *lagWindow) add(d time.Duration) {
	if len(l.samples) < l.size {
		l.samples = append(l.samples, d)
		return
	}
	l.samples[l.next] = d
	l.next = (l.next + 1) % l.size
}

func (l *lagWindow) stats() (p50, p99, maxLag time.Duration, n int) {
	if len(l.samples) == 0 {
		return 0, 0, 0, 0
	}
	s := slices.Clone(l.samples)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[int(float64(len(s)-1)*p)] }
	return at(0.5), at(0.99), s[len(s)-1], len(s)
}
