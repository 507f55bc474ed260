package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/s2"
)

// A record compresses far better against a dictionary of earlier ones: a
// TSA request's record repeats the JSON keys, type names, service, policy
// and signer, and the token's fixed DER, of every other; what is its own
// (serial, ids, digests, nonce, signature) is a few hundred bytes. S2
// against a dictionary of two recent records takes a request's record
// from ~1.9 KB to ~0.7 KB, for ~1.5 µs more per append.
//
// The store learns its dictionary from what it appends. It samples the
// body of every sampleEvery-th append: learnBodies to learn from, then
// judgeBodies to judge by, and keeps the dictionary learned when it makes
// those later bodies at least 5% smaller than the dictionary in use (or
// than none) does. It learns again every relearnEvery appends, so that a
// new key, service or policy soon has a dictionary that knows it. The
// writer stores a dictionary (committed, fsync'd) before any record is
// compressed with it; a record names the dictionary it was made with, and
// a dictionary never changes.

const (
	sampleEvery  = 64
	learnBodies  = 2
	judgeBodies  = 8
	relearnEvery = 1 << 20
	// firstSample lets a run's first appends (the server's start-up
	// records) pass before learning.
	firstSample = 256
)

// dictionary is a stored dictionary and its id.
type dictionary struct {
	id   uint64
	dict *s2.Dict
}

// dictionaries are a store's: the one appends compress with, the one
// learned and not yet stored, the sampling, and those read back.
type dictionaries struct {
	cur     atomic.Pointer[dictionary]
	learned atomic.Pointer[s2.Dict]

	seen atomic.Uint64 // appends encoded
	mu   sync.Mutex
	next uint64 // the append from which sampling goes on
	bag  [][]byte
	// every, learn, judge and relearn are sampleEvery, learnBodies,
	// judgeBodies and relearnEvery, smaller in tests.
	every, learn, judge, relearn uint64

	readMu sync.RWMutex
	read   map[uint64]*s2.Dict
	// load reads a stored dictionary's bytes; nil for none.
	load func(ctx context.Context, id uint64) ([]byte, error)
}

func newDictionaries(load func(context.Context, uint64) ([]byte, error)) *dictionaries {
	return &dictionaries{next: firstSample, read: map[uint64]*s2.Dict{}, load: load,
		every: sampleEvery, learn: learnBodies, judge: judgeBodies, relearn: relearnEvery}
}

// current is the dictionary appends compress with, nil before the first.
func (d *dictionaries) current() *dictionary {
	if d == nil {
		return nil
	}
	return d.cur.Load()
}

// use makes a stored dictionary the one appends compress with.
func (d *dictionaries) use(id uint64, dict *s2.Dict) {
	d.readMu.Lock()
	d.read[id] = dict
	d.readMu.Unlock()
	d.cur.Store(&dictionary{id: id, dict: dict})
}

// sample offers an append's uncompressed body, which it does not keep.
func (d *dictionaries) sample(body []byte) {
	if d == nil {
		return
	}
	n := d.seen.Add(1)
	if n%d.every != 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if n < d.next {
		return
	}
	d.bag = append(d.bag, append([]byte(nil), body...))
	if uint64(len(d.bag)) < d.learn+d.judge {
		return
	}
	learn, judge := d.bag[:d.learn], d.bag[d.learn:]
	d.bag, d.next = nil, n+d.relearn
	var data []byte
	for _, b := range learn {
		data = append(data, b...)
	}
	if len(data) < s2.MinDictSize {
		return
	}
	candidate := s2.MakeDict(data, nil)
	if candidate == nil {
		return
	}
	if size(candidate, judge)*100 <= size(d.currentDict(), judge)*95 {
		d.learned.Store(candidate)
	}
}

func (d *dictionaries) currentDict() *s2.Dict {
	if c := d.cur.Load(); c != nil {
		return c.dict
	}
	return nil
}

// size is what bodies take compressed with dict (none when nil).
func size(dict *s2.Dict, bodies [][]byte) int {
	n := 0
	for _, b := range bodies {
		if dict == nil {
			n += len(s2.Encode(nil, b))
		} else {
			n += len(dict.Encode(nil, b))
		}
	}
	return n
}

// get returns the stored dictionary id, reading it if needed.
func (d *dictionaries) get(ctx context.Context, id uint64) (*s2.Dict, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: dictionary %d, and no dictionaries", errBadRecord, id)
	}
	d.readMu.RLock()
	dict, ok := d.read[id]
	d.readMu.RUnlock()
	if ok {
		return dict, nil
	}
	if d.load == nil {
		return nil, fmt.Errorf("%w: unknown dictionary %d", errBadRecord, id)
	}
	b, err := d.load(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: unknown dictionary %d", errBadRecord, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read dictionary %d: %w", id, err)
	}
	if dict = s2.NewDict(b); dict == nil {
		return nil, fmt.Errorf("%w: dictionary %d is malformed", errBadRecord, id)
	}
	d.readMu.Lock()
	d.read[id] = dict
	d.readMu.Unlock()
	return dict, nil
}
