// Package readmodels lists Chronolog's projections, for the server that
// keeps them live and the tools that rebuild and check them.
package readmodels

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/archive"
	"github.com/chronolog/chronolog/projections/billing"
	"github.com/chronolog/chronolog/projections/clockview"
	"github.com/chronolog/chronolog/projections/renewaldue"
)

// constructors are the projections in the order they are listed.
var constructors = []func() projections.Projection{
	func() projections.Projection { return archive.New() },
	func() projections.Projection { return billing.New() },
	func() projections.Projection { return clockview.New() },
	// nil: the catalog shipped with this build.
	func() projections.Projection { return renewaldue.New(nil) },
}

// All returns a fresh instance of every projection.
func All() []projections.Projection {
	out := make([]projections.Projection, 0, len(constructors))
	for _, mk := range constructors {
		out = append(out, mk())
	}
	return out
}

// Names lists the projections' names.
func Names() []string {
	var out []string
	for _, p := range All() {
		out = append(out, p.Name())
	}
	return out
}

// Select returns the projections named in a comma-separated list, or all.
func Select(list string) ([]projections.Projection, error) {
	if list == "" || list == "all" {
		return All(), nil
	}
	all := All()
	var out []projections.Projection
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(all, func(p projections.Projection) bool { return p.Name() == n })
		if i < 0 {
			return nil, fmt.Errorf("no projection %q (there are %s)", n, strings.Join(Names(), ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Open opens (or creates) the read stores of ps in dir, DATA/read/<name>.db
// or a replay's directory, and pairs each with its projection.
func Open(ctx context.Context, dir string, ps []projections.Projection, opt readstore.Options) ([]projections.Model, []*readstore.Store, error) {
	var (
		models []projections.Model
		stores []*readstore.Store
	)
	for _, p := range ps {
		s, err := readstore.Open(ctx, filepath.Join(dir, p.Name()+".db"), p, opt)
		if err != nil {
			CloseAll(stores)
			return nil, nil, err
		}
		models = append(models, projections.Model{Projection: p, Store: s})
		stores = append(stores, s)
	}
	return models, stores, nil
}

// OpenLive opens the existing read stores of ps in dir read-only, beside
// the server that keeps them or not; a missing one is an error, not a new
// empty store.
func OpenLive(ctx context.Context, dir string, ps []projections.Projection) ([]*readstore.Store, error) {
	var out []*readstore.Store
	for _, p := range ps {
		path := filepath.Join(dir, p.Name()+".db")
		if _, err := os.Stat(path); err != nil {
			CloseAll(out)
			return nil, fmt.Errorf("live read store of %s: %w", p.Name(), err)
		}
		s, err := readstore.OpenReadOnly(ctx, path, p)
		if err != nil {
			CloseAll(out)
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// CloseAll closes stores.
func CloseAll(stores []*readstore.Store) {
	for _, s := range stores {
		s.Close()
	}
}

// LowestCheckpoint is the smallest checkpoint of stores.
func LowestCheckpoint(stores []*readstore.Store) uint64 {
	var low uint64
	for i, s := range stores {
		if i == 0 || s.Checkpoint() < low {
			low = s.Checkpoint()
		}
	}
	return low
}
