package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/projections"
)

// Projections is the running read side: the read stores and the runner
// that feeds them the committed events.
type Projections struct {
	stores []*readstore.Store
	runner *projections.Runner
	log    *slog.Logger
}

// StartProjections opens (creating them if needed) the read stores of ps
// in DATA/read, one DATA/read/<name>.db each, and keeps them live from
// store, each from its checkpoint. ctx bounds opening; the runner lives
// until Stop, which must be called before the event store closes. With
// no projection it returns an empty set.
func StartProjections(ctx context.Context, store projections.EventSource, dataDir string, ps []projections.Projection, log *slog.Logger) (*Projections, error) {
	set := &Projections{log: log}
	if len(ps) == 0 {
		log.Warn("projections: none configured, no read model is kept live")
		return set, nil
	}
	dir := filepath.Join(dataDir, "read")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the read store directory: %w", err)
	}
	var models []projections.Model
	for _, p := range ps {
		s, err := readstore.Open(ctx, filepath.Join(dir, p.Name()+".db"), p, readstore.Options{})
		if err != nil {
			set.closeStores()
			return nil, err
		}
		models = append(models, projections.Model{Projection: p, Store: s})
		set.stores = append(set.stores, s)
		if s.Rebuilt() {
			log.Warn("projections: the read store was built with another schema: rebuilding it from the record", "projection", s.Name(), "path", s.Path())
		}
	}
	r, err := projections.NewRunner(projections.LiveFeed(store, projections.LiveConfig{Logger: log}), models, projections.RunnerConfig{Logger: log})
	if err != nil {
		set.closeStores()
		return nil, err
	}
	// The runner outlives ctx (the signal's): the events of the requests
	// still finishing at shutdown are projected too, until Stop.
	if err := r.Start(context.WithoutCancel(ctx)); err != nil {
		set.closeStores()
		return nil, err
	}
	set.runner = r
	return set, nil
}

// Status reports each live projection: checkpoint, lag in events and in
// time, and why it stopped if it did. For /metrics.
func (s *Projections) Status() []projections.ProjectionStatus {
	if s == nil || s.runner == nil {
		return nil
	}
	return s.runner.Status()
}

// DB is the read store of the projection named, nil when not kept live.
func (s *Projections) DB(name string) *sql.DB {
	if s == nil {
		return nil
	}
	for _, st := range s.stores {
		if st.Name() == name {
			return st.DB()
		}
	}
	return nil
}

// Stop stops the runner (letting the batch being applied finish) and
// closes the read stores.
func (s *Projections) Stop() {
	if s == nil {
		return
	}
	if s.runner != nil {
		if err := s.runner.Stop(); err != nil {
			s.log.Error("projections: stop", "err", err)
		}
	}
	s.closeStores()
}

func (s *Projections) closeStores() {
	var errs []error
	for _, st := range s.stores {
		if err := st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close read store %s: %w", st.Path(), err))
		}
	}
	s.stores = nil
	if err := errors.Join(errs...); err != nil {
		s.log.Error("projections", "err", err)
	}
}
