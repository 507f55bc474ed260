package filter

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

func from(ip string) Request {
	return Request{SourceIP: netip.MustParseAddr(ip), Source: ip + ":4711"}
}

func (r Request) at(d time.Duration) Request { r.At = epoch.Add(d); return r }

func TestRateLimit(t *testing.T) {
	l, err := NewRateLimit(2, 3, 100)
	if err != nil {
		t.Fatal(err)
	}
	if l.Name() != "rate-limit" {
		t.Fatal(l.Name())
	}
	a, b := from("192.0.2.1"), from("192.0.2.2")
	billing := a
	billing.Client = &Identity{Name: "billing", Method: AuthAPIKey}
	unknown := Request{Source: "@tsa.sock"}
	const ms = time.Millisecond
	exceeded := func(key, wait string) verdict {
		return denies(rfc3161.BadRequest, "rate limit exceeded for "+key+": 2/s, burst 3; retry in "+wait)
	}
	steps := []struct {
		name string
		r    Request
		want verdict
	}{
		{"burst 1", a.at(0), accepts("ip:192.0.2.1")},
		{"burst 2", a.at(0), accepts("ip:192.0.2.1")},
		{"burst 3", a.at(0), accepts("ip:192.0.2.1")},
		{"burst spent", a.at(0), exceeded("ip:192.0.2.1", "500ms")},
		{"half a token back", a.at(250 * ms), exceeded("ip:192.0.2.1", "250ms")},
		{"a token back", a.at(500 * ms), accepts("ip:192.0.2.1")},
		{"spent again", a.at(500 * ms), exceeded("ip:192.0.2.1", "500ms")},
		{"time runs backwards: no tokens", a.at(100 * ms), exceeded("ip:192.0.2.1", "500ms")},
		{"far backwards", a.at(-time.Hour), exceeded("ip:192.0.2.1", "500ms")},
		{"forward again, from the latest time seen", a.at(time.Second), accepts("ip:192.0.2.1")},
		{"spent", a.at(time.Second), exceeded("ip:192.0.2.1", "500ms")},
		{"mapped address, same client", from("::ffff:192.0.2.1").at(time.Second), exceeded("ip:192.0.2.1", "500ms")},
		{"another address has its own bucket", b.at(time.Second), accepts("ip:192.0.2.2")},
		{"an identity has its own bucket", billing.at(time.Second), accepts("client:billing")},
		{"address unknown: keyed by source", unknown.at(0), accepts("ip:@tsa.sock")},
		{"idle refills to the burst, no more", a.at(time.Hour), accepts("ip:192.0.2.1")},
		{"burst 2 after idle", a.at(time.Hour), accepts("ip:192.0.2.1")},
		{"burst 3 after idle", a.at(time.Hour), accepts("ip:192.0.2.1")},
		{"spent after idle", a.at(time.Hour), exceeded("ip:192.0.2.1", "500ms")},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { check(t, l.Decide(s.r), s.want) })
	}
}

func TestRateLimitRetryRoundsUp(t *testing.T) {
	tests := []struct {
		rate float64
		wait string
	}{
		{3, "retry in 334ms"},
		{1000, "retry in 1ms"},
		{1e6, "retry in 1ms"},
		{0.01, "retry in 1m40s"},
		{1e-300, "retry in 2562047h47m16.854s"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rate), func(t *testing.T) {
			l, err := NewRateLimit(tt.rate, 1, 10)
			if err != nil {
				t.Fatal(err)
			}
			r := from("192.0.2.1").at(0)
			check(t, l.Decide(r), accepts("within"))
			check(t, l.Decide(r), denies(rfc3161.BadRequest, tt.wait))
		})
	}
}

func TestRateLimitConfiguration(t *testing.T) {
	tests := []struct {
		rate              float64
		burst, maxClients int
	}{
		{0, 1, 1}, {-1, 1, 1}, {math.NaN(), 1, 1}, {math.Inf(1), 1, 1},
		{1, 0, 1}, {1, -1, 1}, {1, 1, 0},
	}
	for _, tt := range tests {
		if _, err := NewRateLimit(tt.rate, tt.burst, tt.maxClients); err == nil {
			t.Errorf("NewRateLimit(%v, %d, %d) accepted", tt.rate, tt.burst, tt.maxClients)
		}
	}
	for _, n := range []int{1, 5, 16, 17, 1000} {
		l, err := NewRateLimit(1, 1, n)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for i := range l.shards {
			total += l.shards[i].max
		}
		if total != n {
			t.Errorf("maxClients %d: the shards hold %d", n, total)
		}
	}
}

func (l *RateLimit) shardOf(r Request) *rateShard {
	return l.shard(rateKey(nil, r))
}

func (l *RateLimit) clients() []string {
	var keys []string
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k := range s.buckets {
			keys = append(keys, k)
		}
		s.mu.Unlock()
	}
	return keys
}

// TestRateLimitEvictsFullThenOldest runs one shard of three buckets to see
// which buckets make room for new clients.
func TestRateLimitEvictsFullThenOldest(t *testing.T) {
	l, err := NewRateLimit(1, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	l.shards[0].max = 3
	const ms = time.Millisecond
	steps := []struct {
		r    Request
		want verdict
		kept []string
	}{
		{from("192.0.2.1").at(0), accepts("within"), []string{"ip:192.0.2.1"}},
		{from("192.0.2.2").at(100 * ms), accepts("within"), []string{"ip:192.0.2.1", "ip:192.0.2.2"}},
		{from("192.0.2.3").at(200 * ms), accepts("within"), []string{"ip:192.0.2.1", "ip:192.0.2.2", "ip:192.0.2.3"}},
		{from("192.0.2.3").at(200 * ms), accepts("within"), []string{"ip:192.0.2.1", "ip:192.0.2.2", "ip:192.0.2.3"}},
		// None has refilled: .1, seen first, goes.
		{from("192.0.2.4").at(500 * ms), accepts("within"), []string{"ip:192.0.2.2", "ip:192.0.2.3", "ip:192.0.2.4"}},
		// .2 and .4 have refilled, .3 (which spent two) has not: both full ones go.
		{from("192.0.2.5").at(2000 * ms), accepts("within"), []string{"ip:192.0.2.3", "ip:192.0.2.5"}},
		{from("192.0.2.3").at(2000 * ms), accepts("within"), []string{"ip:192.0.2.3", "ip:192.0.2.5"}},
		{from("192.0.2.3").at(2000 * ms), denies(rfc3161.BadRequest, "ip:192.0.2.3"), []string{"ip:192.0.2.3", "ip:192.0.2.5"}},
	}
	for i, s := range steps {
		check(t, l.Decide(s.r), s.want)
		got := map[string]bool{}
		for _, k := range l.clients() {
			got[k] = true
		}
		if len(got) != len(s.kept) {
			t.Fatalf("step %d: clients %v, want %v", i, l.clients(), s.kept)
		}
		for _, k := range s.kept {
			if !got[k] {
				t.Fatalf("step %d: clients %v, want %v", i, l.clients(), s.kept)
			}
		}
	}
}

func TestRateLimitBoundsClients(t *testing.T) {
	const maxClients = 100
	l, err := NewRateLimit(0.001, 1, maxClients)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		r := Request{SourceIP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})}
		// Each client spends its only token: no bucket is ever full, so
		// the bound holds by evicting the oldest.
		check(t, l.Decide(r.at(time.Duration(i)*time.Millisecond)), accepts("within"))
		if n := len(l.clients()); i%997 == 0 && n > maxClients {
			t.Fatalf("after %d clients, %d buckets", i+1, n)
		}
	}
	if n := len(l.clients()); n != maxClients {
		t.Fatalf("%d buckets, want %d", n, maxClients)
	}
	// The most recent client is still remembered and still limited.
	last := Request{SourceIP: netip.AddrFrom4([4]byte{10, 0, 39, 15})}
	check(t, l.Decide(last.at(10*time.Second)), denies(rfc3161.BadRequest, "ip:10.0.39.15"))
}

// TestRateLimitConcurrent is for -race, and shows the buckets stay exact
// under contention: one client at one instant gets exactly its burst.
func TestRateLimitConcurrent(t *testing.T) {
	const burst = 100
	l, err := NewRateLimit(1, burst, 64)
	if err != nil {
		t.Fatal(err)
	}
	target := from("192.0.2.1").at(0)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				if l.Decide(target).Accepted {
					admitted.Add(1)
				}
				// Churn through other clients, forcing evictions in
				// the other shards, where they cannot evict the target.
				other := Request{SourceIP: netip.AddrFrom4([4]byte{10, 1, byte(g), byte(i)})}
				if l.shardOf(other) != l.shardOf(target) {
					l.Decide(other.at(time.Duration(i) * time.Millisecond))
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != burst {
		t.Fatalf("%d admitted at one instant, want the burst of %d", got, burst)
	}
	if n := len(l.clients()); n > 64 {
		t.Fatalf("%d buckets, want at most 64", n)
	}
}

// naiveLimit is the eviction rule written plainly, scanning every bucket
// for every new client: the shard's ordering and bound must not change a
// single verdict or eviction.
type naiveLimit struct {
	rate, burst float64
	max         int
	seq         int
	buckets     map[string]*naiveBucket
}

type naiveBucket struct {
	tokens float64
	last   time.Time
	seq    int
}

func (m *naiveLimit) level(b *naiveBucket, at time.Time) float64 {
	if !at.After(b.last) {
		return b.tokens
	}
	return math.Min(m.burst, b.tokens+at.Sub(b.last).Seconds()*m.rate)
}

func (m *naiveLimit) decide(key string, at time.Time) bool {
	m.seq++
	b, ok := m.buckets[key]
	if !ok {
		if len(m.buckets) >= m.max {
			freed := false
			for k, o := range m.buckets {
				if m.level(o, at) >= m.burst {
					delete(m.buckets, k)
					freed = true
				}
			}
			if !freed {
				oldest := ""
				for k, o := range m.buckets {
					if oldest == "" || o.seq < m.buckets[oldest].seq {
						oldest = k
					}
				}
				delete(m.buckets, oldest)
			}
		}
		b = &naiveBucket{tokens: m.burst, last: at}
		m.buckets[key] = b
	}
	b.seq = m.seq
	b.tokens = m.level(b, at)
	if b.last.Before(at) {
		b.last = at
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

func TestRateLimitMatchesNaiveEviction(t *testing.T) {
	for _, tt := range []struct {
		rate  float64
		burst int
	}{{1, 1}, {2, 3}, {0.5, 5}, {100, 2}} {
		t.Run(fmt.Sprint(tt.rate, "/", tt.burst), func(t *testing.T) {
			const max = 8
			l, err := NewRateLimit(tt.rate, tt.burst, 1)
			if err != nil {
				t.Fatal(err)
			}
			l.shards[0].max = max
			m := &naiveLimit{rate: tt.rate, burst: float64(tt.burst), max: max, buckets: map[string]*naiveBucket{}}
			rnd := rand.New(rand.NewPCG(1, uint64(tt.burst)))
			at := epoch
			for i := range 20000 {
				// Mostly forward, sometimes back, sometimes a long pause.
				switch n := rnd.IntN(100); {
				case n < 5:
					at = at.Add(-time.Duration(rnd.IntN(2000)) * time.Millisecond)
				case n < 8:
					at = at.Add(time.Duration(rnd.IntN(20)) * time.Second)
				default:
					at = at.Add(time.Duration(rnd.IntN(300)) * time.Millisecond)
				}
				ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(rnd.IntN(20))})
				want := m.decide("ip:"+ip.String(), at)
				if got := l.Decide(Request{SourceIP: ip, At: at}).Accepted; got != want {
					t.Fatalf("step %d: %s admitted %v, want %v", i, ip, got, want)
				}
				keys := l.clients()
				if len(keys) != len(m.buckets) {
					t.Fatalf("step %d: clients %v, want %d", i, keys, len(m.buckets))
				}
				for _, k := range keys {
					if _, ok := m.buckets[k]; !ok {
						t.Fatalf("step %d: kept %s, which the plain rule evicted", i, k)
					}
				}
			}
		})
	}
}
