package app_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/app"
	"github.com/chronolog/chronolog/domain/tsa"
	"github.com/chronolog/chronolog/projections"
	"github.com/chronolog/chronolog/projections/archive"
)

// noLeaks fails the test if it leaves a goroutine behind that was not
// running when it was called.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// waitArchive waits until the archive kept live holds n tokens.
func waitArchive(t *testing.T, p *app.Projections, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := archive.Count(context.Background(), p.DB(archive.Name), archive.Query{})
		if err == nil && got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the archive holds %d tokens (%v), want %d; %+v", got, err, n, p.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The read side projects what is committed into its read stores in
// DATA/read and, started again on them, resumes from their checkpoints:
// what was committed while it was stopped is projected, nothing twice.
func TestProjectionsKeepUpAndResume(t *testing.T) {
	r := newRig(t)
	noLeaks(t)
	ctx := context.Background()
	store, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(r.dir, "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r.w.Recorder = store
	gen, err := app.Build(r.mustFile(one), r.w)
	if err != nil {
		t.Fatal(err)
	}
	live := app.NewLive(gen)
	defer live.Close()
	svc, _ := live.Route("/tsa")
	issue := func() {
		t.Helper()
		if o := svc.Handle(ctx, tsa.Request{Body: query(t), Path: "/tsa"}); o.Kind != tsa.Granted {
			t.Fatalf("outcome %+v", o)
		}
	}
	data := t.TempDir()
	ps := func() []projections.Projection { return []projections.Projection{archive.New()} }

	p, err := app.StartProjections(ctx, store, data, ps(), r.w.Log)
	if err != nil {
		t.Fatal(err)
	}
	issue()
	waitArchive(t, p, 1)
	p.Stop()
	issue()
	p, err = app.StartProjections(ctx, store, data, ps(), r.w.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	waitArchive(t, p, 2)
	if st := p.Status(); len(st) != 1 || st[0].Name != archive.Name || st[0].Checkpoint != store.Head() {
		t.Errorf("status %+v at head %d", st, store.Head())
	}
}

// With no projection there is no read side, and asking it is harmless.
func TestProjectionsNoneConfigured(t *testing.T) {
	r := newRig(t)
	p, err := app.StartProjections(context.Background(), nil, t.TempDir(), nil, r.w.Log)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status() != nil || p.DB(archive.Name) != nil {
		t.Error("a read side with no projection")
	}
	p.Stop()
}
