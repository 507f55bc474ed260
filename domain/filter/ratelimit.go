package filter

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// rateShards spreads clients over independently locked maps, so that
// concurrent requests from different clients rarely wait for each other.
const rateShards = 16

// RateLimit is a token bucket per client: each holds up to burst tokens,
// refills at rate tokens a second, and a request spends one. Clients are
// told apart by the authenticated identity when an earlier filter
// established one ("client:<name>"), otherwise by address ("ip:<addr>",
// or the transport's source string when the address is unknown).
//
// Time is the request's reception time, never the machine's clock. A
// request received "earlier" than the last one seen for the client (clocks
// step, requests race) counts as no time elapsed: time running backwards
// must not mint tokens.
//
// Memory is bounded by maxClients buckets. When a new client would push
// its shard over its share, the shard first drops every bucket that has
// refilled completely, which loses nothing since a full bucket and no
// bucket behave the same; only when none is full does it drop the bucket
// of the client seen least recently, which hands that client a fresh
// burst. Each shard keeps its buckets in the order they were used and a
// time before which none can be full, so that a flood of new clients
// costs each of them a constant amount of work, not a pass over the shard.
type RateLimit struct {
	rate   float64
	burst  int
	terms  string // "<rate>/s, burst <burst>", for denials
	shards []rateShard
}

type rateShard struct {
	mu      sync.Mutex
	buckets map[string]*tokenBucket
	max     int
	// recent links the buckets through a sentinel: recent.next was used
	// last, recent.prev longest ago.
	recent tokenBucket
	// Before fullFrom no bucket here is full. hasFull is false when there
	// is no such bound: no buckets, or a sweep under way.
	fullFrom time.Time
	hasFull  bool
	// Shards sit side by side in one slice; padding keeps one shard's
	// fields off the cache line of its neighbour's mutex, where they would
	// contend although they guard different clients.
	_ [64]byte
}

type tokenBucket struct {
	key string
	// admitted is the record's reason for admitting the client, made when
	// its bucket is.
	admitted   string
	tokens     float64
	last       time.Time
	prev, next *tokenBucket
}

// NewRateLimit returns the filter. rate is in tokens a second; burst is
// how many requests a client that has been idle may make at once.
func NewRateLimit(rate float64, burst int, maxClients int) (*RateLimit, error) {
	switch {
	case !(rate > 0) || math.IsInf(rate, 0):
		return nil, fmt.Errorf("rate-limit: rate %v is not a positive number of tokens a second", rate)
	case burst < 1:
		return nil, errors.New("rate-limit: burst must be at least 1")
	case maxClients < 1:
		return nil, errors.New("rate-limit: maxClients must be at least 1")
	}
	n := min(rateShards, maxClients)
	l := &RateLimit{
		rate:   rate,
		burst:  burst,
		terms:  strconv.FormatFloat(rate, 'g', -1, 64) + "/s, burst " + strconv.Itoa(burst),
		shards: make([]rateShard, n),
	}
	for i := range l.shards {
		// The shares add up to maxClients exactly.
		s := &l.shards[i]
		s.max = maxClients / n
		if i < maxClients%n {
			s.max++
		}
		s.buckets = make(map[string]*tokenBucket)
		s.recent.prev, s.recent.next = &s.recent, &s.recent
	}
	return l, nil
}

func (*RateLimit) Name() string { return "rate-limit" }

func (l *RateLimit) Decide(r Request) Decision {
	var buf [64]byte
	key := rateKey(buf[:0], r)
	s := l.shard(key)

	s.mu.Lock()
	b, ok := s.buckets[string(key)]
	if ok {
		b.unlink()
	} else {
		if len(s.buckets) >= s.max {
			s.evict(l, r.At)
		}
		k := string(key)
		b = &tokenBucket{key: k, admitted: "within the rate limit for " + k, tokens: float64(l.burst), last: r.At}
		s.buckets[b.key] = b
	}
	b.linkAfter(&s.recent)
	b.tokens = l.level(b, r.At)
	if b.last.Before(r.At) {
		b.last = r.At
	}
	admitted := b.tokens >= 1
	if admitted {
		b.tokens--
	}
	s.noteFull(l.fullAt(b))
	missing := 1 - b.tokens
	reason := b.admitted
	s.mu.Unlock()

	if admitted {
		return Accept(reason)
	}
	return Deny(rfc3161.BadRequest, TextRateLimited, "rate limit exceeded for "+string(key)+": "+l.terms+"; retry in "+l.wait(missing).String())
}

func (l *RateLimit) shard(key []byte) *rateShard {
	return &l.shards[fnv1a(key)%uint32(len(l.shards))]
}

// level is how many tokens b holds at t.
func (l *RateLimit) level(b *tokenBucket, t time.Time) float64 {
	if !t.After(b.last) {
		return b.tokens
	}
	return math.Min(float64(l.burst), b.tokens+t.Sub(b.last).Seconds()*l.rate)
}

// wait is how long until missing tokens have refilled, rounded up to the
// millisecond so that a client waiting that long is admitted.
func (l *RateLimit) wait(missing float64) time.Duration {
	ms := math.Ceil(missing / l.rate * 1000)
	if ms > float64(math.MaxInt64/int64(time.Millisecond)) {
		return time.Duration(math.MaxInt64).Truncate(time.Millisecond)
	}
	return time.Duration(ms) * time.Millisecond
}

// fullAt is when b will have refilled, rounded down: a bound, not a promise.
func (l *RateLimit) fullAt(b *tokenBucket) time.Time {
	secs := (float64(l.burst) - b.tokens) / l.rate
	if secs >= math.MaxInt64/float64(time.Second) {
		return b.last.Add(math.MaxInt64)
	}
	return b.last.Add(time.Duration(secs * float64(time.Second)))
}

// noteFull lowers the shard's bound by a bucket's refill time; the caller
// holds s.mu.
func (s *rateShard) noteFull(t time.Time) {
	if !s.hasFull || t.Before(s.fullFrom) {
		s.fullFrom, s.hasFull = t, true
	}
}

// evict makes room for one bucket; the caller holds s.mu. It looks for
// full buckets only once the bound says one may be, and then tightens the
// bound to the buckets it keeps.
func (s *rateShard) evict(l *RateLimit, at time.Time) {
	if s.hasFull && !at.Before(s.fullFrom) {
		s.hasFull = false
		freed := false
		for k, b := range s.buckets {
			if l.level(b, at) >= float64(l.burst) {
				delete(s.buckets, k)
				b.unlink()
				freed = true
				continue
			}
			s.noteFull(l.fullAt(b))
		}
		if freed {
			return
		}
	}
	oldest := s.recent.prev
	delete(s.buckets, oldest.key)
	oldest.unlink()
}

func (b *tokenBucket) unlink() {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

func (b *tokenBucket) linkAfter(at *tokenBucket) {
	b.prev, b.next = at, at.next
	at.next.prev = b
	at.next = b
}

func rateKey(dst []byte, r Request) []byte {
	switch {
	case r.Client != nil:
		dst = append(dst, "client:"...)
		return append(dst, r.Client.Name...)
	case r.SourceIP.IsValid():
		// One client, one bucket, whether a dual-stack listener reports
		// its IPv4 address mapped or not.
		dst = append(dst, "ip:"...)
		return r.SourceIP.Unmap().AppendTo(dst)
	default:
		dst = append(dst, "ip:"...)
		return append(dst, r.Source...)
	}
}

// fnv1a is FNV-1a, written out because hash/fnv's interface allocates.
func fnv1a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}
