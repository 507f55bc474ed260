package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/queryapi"
	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/cmd/internal/readmodels"
	"github.com/chronolog/chronolog/projections"
)

// liveProjections are the read models tsad keeps live, each in its own
// read store DATA/read/<name>.db: the same list tsactl replay rebuilds.
func liveProjections() []projections.Projection { return readmodels.All() }

// projectionSet is the running read side: the read stores and the runner
// that feeds them the committed events.
type projectionSet struct {
	stores []*readstore.Store
	runner *projections.Runner
	log    *slog.Logger
}

// startProjections opens (creating them if needed) the read stores of ps
// in DATA/read and keeps them live from store, each from its checkpoint.
// ctx bounds opening; the runner lives until stop, which must be called
// before the event store closes. With no projection it returns an empty
// set.
func startProjections(ctx context.Context, store projections.EventSource, dataDir string, ps []projections.Projection, log *slog.Logger) (*projectionSet, error) {
	set := &projectionSet{log: log}
	if len(ps) == 0 {
		log.Warn("projections: none configured, no read model is kept live")
		return set, nil
	}
	dir := filepath.Join(dataDir, "read")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the read store directory: %w", err)
	}
	models, stores, err := readmodels.Open(ctx, dir, ps, readstore.Options{})
	if err != nil {
		return nil, err
	}
	set.stores = stores
	for _, s := range stores {
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
	// still finishing at shutdown are projected too, until stop.
	if err := r.Start(context.WithoutCancel(ctx)); err != nil {
		set.closeStores()
		return nil, err
	}
	set.runner = r
	return set, nil
}

// Status reports each live projection: checkpoint, lag in events and in
// time, and why it stopped if it did. For /metrics.
func (s *projectionSet) Status() []projections.ProjectionStatus {
	if s == nil || s.runner == nil {
		return nil
	}
	return s.runner.Status()
}

// db is the read store of the projection named, nil when not kept live.
func (s *projectionSet) db(name string) *sql.DB {
	for _, st := range s.stores {
		if st.Name() == name {
			return st.DB()
		}
	}
	return nil
}

// stop stops the runner (letting the batch being applied finish) and
// closes the read stores.
func (s *projectionSet) stop() {
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

func (s *projectionSet) closeStores() {
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

// queryAPI is the read side's HTTP API over the live read stores, for the
// bearer tokens the configuration admits (none: every call is 401).
func queryAPI(c *config.API, proj *projectionSet, events queryapi.StreamReader) (http.Handler, error) {
	var tokens []queryapi.Token
	if c != nil {
		for _, t := range c.Tokens {
			tokens = append(tokens, queryapi.Token{Name: t.Name, SHA256: t.SHA256, Roles: t.Roles})
		}
	}
	src := queryapi.Sources{
		Archive: proj.db("archive"), Billing: proj.db("billing"), Clock: proj.db("clock"), Renewal: proj.db("renewal-due"),
		Events: events, Status: proj.Status,
	}
	return queryapi.New(tokens, queryapi.Routes(src))
}
