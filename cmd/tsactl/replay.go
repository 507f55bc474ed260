package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	readstore "github.com/chronolog/chronolog/adapters/readstore/sqlite"
	"github.com/chronolog/chronolog/cmd/internal/readmodels"
	"github.com/chronolog/chronolog/projections"
)

// runReplay rebuilds read models from the event store into a fresh read
// store directory: all of them or the ones named, up to a position or a
// time, and optionally checks them against the live ones.
func runReplay(args []string) error {
	fs := flag.NewFlagSet("tsactl replay", flag.ContinueOnError)
	data := fs.String("data", "data", "the server's data directory (its events.db is read, never written)")
	names := fs.String("projections", "all", "comma-separated projections to rebuild: "+strings.Join(readmodels.Names(), ", ")+", or all")
	out := fs.String("out", "", "fresh directory for the rebuilt read stores (default a new DATA/replay-<time>-<random>)")
	until := fs.String("until", "", "stop after this position, or before the first event recorded after this time (RFC 3339): the read models as they were then")
	verify := fs.Bool("verify", false, "re-check every token (signature, imprint, serial) and compare the rebuilt read models with the live ones in DATA/read")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ps, err := readmodels.Select(*names)
	if err != nil {
		return err
	}
	opt := projections.RunnerConfig{MaxBatch: 8192}
	if *until != "" {
		if n, err := strconv.ParseUint(*until, 10, 64); err == nil {
			opt.Until = n
		} else if t, err := time.Parse(time.RFC3339Nano, *until); err == nil {
			opt.UntilTime = t
		} else {
			return fmt.Errorf("--until %q is neither a position nor an RFC 3339 time", *until)
		}
	}
	if _, err := os.Stat(filepath.Join(*data, "events.db")); err != nil {
		return fmt.Errorf("no event store in %s: %w", *data, err)
	}
	if *out == "" {
		dir, err := os.MkdirTemp(*data, "replay-"+time.Now().UTC().Format("20060102T150405Z")+"-")
		if err != nil {
			return err
		}
		*out = dir
	}
	if entries, err := os.ReadDir(*out); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty: replay builds fresh read stores", *out)
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	ctx := context.Background()
	st, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(*data, "events.db"), ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open the event store: %w", err)
	}
	defer st.Close()
	if *verify {
		// The live read models stand at their own checkpoints: rebuild to
		// the lowest, so that both describe the same prefix of the record.
		live, err := readmodels.OpenLive(ctx, filepath.Join(*data, "read"), ps)
		if err != nil {
			return err
		}
		defer readmodels.CloseAll(live)
		if opt.Until == 0 && opt.UntilTime.IsZero() {
			opt.Until = readmodels.LowestCheckpoint(live)
		}
	}
	// A replay writes millions of rows into fresh stores: in bulk (the
	// indexes built at the end, sorted, rather than row by row) and with
	// a large page cache.
	models, stores, err := readmodels.Open(ctx, *out, ps, readstore.Options{CacheKiB: 64 << 10, Bulk: true})
	if err != nil {
		return err
	}
	defer readmodels.CloseAll(stores)
	bar := newProgressBar(os.Stderr, *quiet)
	opt.Progress = bar.update
	opt.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := projections.Replay(ctx, projections.ReplayFeed(st), models, opt)
	bar.done(p)
	if err != nil {
		return err
	}
	indexing := time.Now()
	for _, s := range stores {
		if err := s.Finish(ctx); err != nil {
			return err
		}
	}
	indexed := time.Since(indexing)
	total := p
	total.Elapsed += indexed
	fmt.Printf("replayed:   %d events up to position %d in %v (%.0f events/s), indexed in %v: %.0f events/s in all\n",
		p.Events, p.Position, p.Elapsed.Round(time.Millisecond), p.Rate(), indexed.Round(time.Millisecond), total.Rate())
	for _, s := range stores {
		fmt.Printf("rebuilt:    %s (checkpoint %d)\n", s.Path(), s.Checkpoint())
	}
	if !*verify {
		return nil
	}
	return verifyReplay(ctx, st, *data, models, stores)
}

// progressBar draws a one-line bar on a terminal, at most ten times a
// second.
type progressBar struct {
	w     io.Writer
	off   bool
	drawn time.Time
}

func newProgressBar(w io.Writer, off bool) *progressBar { return &progressBar{w: w, off: off} }

func (b *progressBar) update(p projections.Progress) {
	if b.off || time.Since(b.drawn) < 100*time.Millisecond {
		return
	}
	b.drawn = time.Now()
	b.draw(p)
}

func (b *progressBar) draw(p projections.Progress) {
	const width = 30
	frac := 1.0
	if p.Target > 0 {
		frac = min(1, float64(p.Position)/float64(p.Target))
	}
	n := int(frac * width)
	eta := "-"
	if r := p.Rate(); r > 0 && p.Target > p.Position {
		eta = time.Duration(float64(p.Target-p.Position) / r * float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintf(b.w, "\r[%s%s] %5.1f%%  %d/%d  %.0f events/s  ETA %s   ",
		strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac, p.Position, p.Target, p.Rate(), eta)
}

func (b *progressBar) done(p projections.Progress) {
	if b.off {
		return
	}
	b.draw(p)
	fmt.Fprintln(b.w)
}

var errVerify = errors.New("verification failed")
