package trillian

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/trillian"
	"go.uber.org/goleak"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chronolog/chronolog/adapters/translog/translogtest"
	"github.com/chronolog/chronolog/adapters/translog/trillian/trilliantest"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, srv *trilliantest.Server, tree int64, signer note.Signer, cfg Config) *Log {
	t.Helper()
	cfg.Addr, cfg.TreeID, cfg.Signer = srv.Addr, tree, signer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Close is idempotent: this only catches a log a failed test left open.
	t.Cleanup(func() { l.Close() })
	return l
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func leaf(i int) []byte {
	return translog.SegmentLeaf{First: uint64(i + 1), Last: uint64(i + 1), Count: 1}.Marshal()
}

func TestContract(t *testing.T) {
	srv := trilliantest.Start(t)
	translogtest.Run(t, translogtest.Harness{
		Open: func(t *testing.T, signer note.Signer) (translog.Log, func() translog.Log) {
			tree := srv.NewTree(t)
			l := open(t, srv, tree, signer, Config{})
			return l, func() translog.Log {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				return open(t, srv, tree, signer, Config{})
			}
		},
		CheckpointWithin: 10 * time.Second,
	})
}

// TestOutage stops both servers: appends fail as the writer retries them,
// never as conflicts, and once the servers are back the log goes on where
// it stopped.
func TestOutage(t *testing.T) {
	srv := trilliantest.Start(t)
	signer, verifier := translogtest.Keys(t, translogtest.Origin)
	l := open(t, srv, srv.TreeID, signer, Config{})
	defer l.Close()
	ctx := ctxT(t, time.Minute)
	for i := range 3 {
		if err := l.Append(ctx, uint64(i), leaf(i)); err != nil {
			t.Fatal(err)
		}
	}

	srv.Stop()
	down, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := l.Append(down, 3, leaf(3)); err == nil || errors.Is(err, translog.ErrConflict) {
		t.Fatalf("append with the servers down: err = %v, want a retryable error", err)
	}
	if _, err := l.Size(down); err == nil || errors.Is(err, translog.ErrConflict) {
		t.Fatalf("size with the servers down: err = %v, want a retryable error", err)
	}
	if _, err := l.Checkpoint(down); err == nil {
		t.Fatal("checkpoint with the servers down: no error")
	}

	srv.Restart(t)
	// As the writer does: retry until the log answers. gRPC reconnects
	// within its backoff, at most a second.
	retry(t, ctx, func() error { return l.Append(ctx, 3, leaf(3)) })
	assertLeaves(t, l, 4)
	cp, err := translog.OpenCheckpoint(mustCheckpoint(t, l), verifier)
	if err != nil || cp.Size != 4 {
		t.Fatalf("checkpoint after the outage: %+v, %v", cp, err)
	}
}

// TestSignerDown stops only the signer: the log server queues leaves but
// nothing integrates them, so Append times out, retryably, and so do its
// retries, which find the index taken by a leaf not yet integrated. Once
// the signer is back, a retry waiting on that leaf succeeds if it is its
// own and conflicts if it is another.
func TestSignerDown(t *testing.T) {
	srv := trilliantest.Start(t)
	signer, _ := translogtest.Keys(t, translogtest.Origin)
	impatient := open(t, srv, srv.TreeID, signer, Config{IntegrationTimeout: 300 * time.Millisecond})
	patient := open(t, srv, srv.TreeID, signer, Config{IntegrationTimeout: 30 * time.Second})
	ctx := ctxT(t, time.Minute)
	for i := range 2 {
		if err := patient.Append(ctx, uint64(i), leaf(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		index   int
		retried []byte // what the retry after the outage appends
		want    error  // nil, or ErrConflict
	}{
		{"the same leaf", 2, leaf(2), nil},
		{"another leaf", 3, leaf(99), translog.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.StopSigner()
			i := uint64(tc.index)
			// First the append that queues the leaf, then a retry that
			// finds it queued: both time out, neither conflicts.
			for range 2 {
				err := impatient.Append(ctx, i, leaf(tc.index))
				if !errors.Is(err, ErrNotIntegrated) || errors.Is(err, translog.ErrConflict) {
					t.Fatalf("append with the signer down: err = %v, want a retryable timeout", err)
				}
			}
			if size, err := impatient.Size(ctx); err != nil || size != i {
				t.Fatalf("size with a leaf queued: %d, %v; want %d", size, err, i)
			}
			// A retry waiting when the signer comes back.
			done := make(chan error, 1)
			go func() { done <- patient.Append(ctx, i, tc.retried) }()
			time.Sleep(200 * time.Millisecond)
			srv.Restart(t)
			if err := <-done; !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("retry once the signer is back: err = %v, want %v", err, tc.want)
			}
			assertLeaves(t, patient, tc.index+1)
		})
	}
}

// TestAppendEdges covers what the contract suite does not: Trillian's own
// duplicate detection must not turn a repeated value into a hang or a
// conflict, and reads beyond the tree are errors, not empty answers.
func TestAppendEdges(t *testing.T) {
	srv := trilliantest.Start(t)
	signer, _ := translogtest.Keys(t, translogtest.Origin)
	l := open(t, srv, srv.TreeID, signer, Config{})
	ctx := ctxT(t, time.Minute)
	// The same bytes at two indices: Trillian deduplicates by identity
	// hash, which the adapter binds to the index.
	same := leaf(7)
	for i := range 2 {
		if err := l.Append(ctx, uint64(i), same); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if size, err := l.Size(ctx); err != nil || size != 2 {
		t.Fatalf("size %d, %v; want 2", size, err)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"leaf at the size", func() error { _, err := l.Leaf(ctx, 2); return err }},
		{"inclusion beyond the tree", func() error { _, err := l.InclusionProof(ctx, 0, 3); return err }},
		{"inclusion of an index outside the size", func() error { _, err := l.InclusionProof(ctx, 2, 2); return err }},
		{"consistency beyond the tree", func() error { _, err := l.ConsistencyProof(ctx, 1, 3); return err }},
		{"consistency out of order", func() error { _, err := l.ConsistencyProof(ctx, 2, 1); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil || errors.Is(err, translog.ErrConflict) {
				t.Fatalf("err = %v, want an error other than ErrConflict", err)
			}
		})
	}
	for _, sizes := range [][2]uint64{{0, 2}, {2, 2}} {
		if p, err := l.ConsistencyProof(ctx, sizes[0], sizes[1]); err != nil || len(p) != 0 {
			t.Errorf("consistency %d→%d = %d hashes, %v; want an empty proof", sizes[0], sizes[1], len(p), err)
		}
	}
	// A checkpoint asked for twice at one size is the same bytes.
	if a, b := mustCheckpoint(t, l), mustCheckpoint(t, l); !bytes.Equal(a, b) {
		t.Errorf("two checkpoints at one size differ:\n%s\n%s", a, b)
	}
}

// TestNewRefuses checks that New names what is wrong with the tree.
func TestNewRefuses(t *testing.T) {
	srv := trilliantest.Start(t)
	signer, _ := translogtest.Keys(t, translogtest.Origin)
	logTree := createTree(t, srv.Addr, trillian.TreeType_LOG)
	for _, tc := range []struct {
		name string
		tree int64
	}{
		{"missing tree", 424242},
		{"LOG tree", logTree},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(ctxT(t, 10*time.Second), Config{Addr: srv.Addr, TreeID: tc.tree, Signer: signer})
			if err == nil {
				l.Close()
				t.Fatal("New accepted it")
			}
			t.Log(err)
		})
	}
}

// createTree creates a tree of another type than trilliantest does, without
// initialising it.
func createTree(t *testing.T, addr string, typ trillian.TreeType) int64 {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tree, err := trillian.NewTrillianAdminClient(conn).CreateTree(ctxT(t, 10*time.Second), &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeState: trillian.TreeState_ACTIVE, TreeType: typ, MaxRootDuration: durationpb.New(0),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return tree.TreeId
}

// retry calls f until it succeeds, failing on a conflict or after ctx.
func retry(t *testing.T, ctx context.Context, f func() error) {
	t.Helper()
	for {
		err := f()
		if err == nil {
			return
		}
		if errors.Is(err, translog.ErrConflict) {
			t.Fatalf("a retry conflicts: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("still failing: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// assertLeaves checks that the log holds exactly leaf(0)…leaf(n-1), the
// values and the root.
func assertLeaves(t *testing.T, l *Log, n int) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	size, err := l.Size(ctx)
	if err != nil || size != uint64(n) {
		t.Fatalf("size %d, %v; want %d", size, err, n)
	}
	var hashes []merkle.Hash
	for i := range n {
		got, err := l.Leaf(ctx, uint64(i))
		if err != nil || !bytes.Equal(got, leaf(i)) {
			t.Fatalf("leaf %d = %x, %v; want %x", i, got, err, leaf(i))
		}
		hashes = append(hashes, merkle.LeafHash(got))
	}
	cp, err := translog.ParseCheckpoint(body(mustCheckpoint(t, l)))
	if err != nil || cp.Size != uint64(n) || cp.Root != merkle.Root(hashes) {
		t.Fatalf("checkpoint %+v, %v does not commit to the %d leaves", cp, err, n)
	}
}

func mustCheckpoint(t *testing.T, l *Log) []byte {
	t.Helper()
	signed, err := l.Checkpoint(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// body is a signed note's text, up to the blank line.
func body(signed []byte) []byte {
	if i := bytes.Index(signed, []byte("\n\n")); i >= 0 {
		return signed[:i+1]
	}
	return signed
}
