package latency

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	w := Window{Size: 100}
	if p50, p99, max, n := w.Stats(); p50 != 0 || p99 != 0 || max != 0 || n != 0 {
		t.Fatal("an empty window reports samples")
	}
	for i := 1; i <= 250; i++ {
		w.Add(time.Duration(i) * time.Millisecond)
	}
	// The window holds 151…250 ms.
	p50, p99, max, n := w.Stats()
	if n != 100 || p50 != 200*time.Millisecond || p99 != 249*time.Millisecond || max != 250*time.Millisecond {
		t.Fatalf("p50 %v p99 %v max %v over %d", p50, p99, max, n)
	}
}
