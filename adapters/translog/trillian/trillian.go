// Package trillian is the transparency log on a Google Trillian (v1.8)
// server: a PREORDERED_LOG tree, to which the writer assigns the indices
// itself, reached over gRPC at trillian_log_server. Trillian's own roots are
// unsigned since v1.8, so this adapter signs the checkpoints with the log's
// note key, after checking that each new root extends the last one it
// signed.
package trillian

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// Config configures the adapter.
type Config struct {
	// Addr is trillian_log_server's gRPC address, host:port. Required.
	Addr string
	// TreeID is the PREORDERED_LOG tree holding the log. Required.
	TreeID int64
	// Signer signs checkpoints; its name is the log's origin. Required.
	Signer note.Signer
	// PollInterval is how often Append asks whether the signer has
	// integrated its leaf; default 20 ms. Trillian's sequencer runs on its
	// own clock (--sequencer_interval), so an append costs up to one of its
	// intervals plus one of these.
	PollInterval time.Duration
	// IntegrationTimeout bounds how long Append waits for a queued leaf to
	// be integrated; default 10 s. Without a bound a stopped
	// trillian_log_signer would hold Append forever and the writer would
	// never report the log as down; past it Append fails with
	// ErrNotIntegrated, the writer retries, and the retry finds the queued
	// leaf.
	IntegrationTimeout time.Duration
	// DialOptions are added after the defaults (plaintext transport, which
	// suits a loopback or sidecar server, and a reconnect backoff capped at
	// one second), so they may replace either.
	DialOptions []grpc.DialOption
}

// Log is a Trillian PREORDERED_LOG tree. It implements translog.Log.
type Log struct {
	cfg  Config
	conn *grpc.ClientConn
	log  trillian.TrillianLogClient

	closeOnce sync.Once
	closeErr  error

	// mu serialises Checkpoint, so that the last signed checkpoint only
	// moves forward and repeated calls at one size return the same bytes.
	mu     sync.Mutex
	signed struct {
		size uint64
		root merkle.Hash
		note []byte
	}
}

var _ translog.Log = (*Log)(nil)

// New connects to the log server and checks that the tree exists, is an
// active PREORDERED_LOG, and has been initialised.
func New(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Addr == "" || cfg.TreeID == 0 || cfg.Signer == nil {
		return nil, errors.New("translog/trillian: Config.Addr, Config.TreeID and Config.Signer are required")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.IntegrationTimeout <= 0 {
		cfg.IntegrationTimeout = 10 * time.Second
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// gRPC's default backoff grows to two minutes: after an outage the
		// log would stay unreachable long after the server is back.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	}
	conn, err := grpc.NewClient(cfg.Addr, append(opts, cfg.DialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("translog/trillian: connect to %s: %w", cfg.Addr, err)
	}
	l := &Log{cfg: cfg, conn: conn, log: trillian.NewTrillianLogClient(conn)}
	if err := l.checkTree(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) checkTree(ctx context.Context) error {
	tree, err := trillian.NewTrillianAdminClient(l.conn).GetTree(ctx, &trillian.GetTreeRequest{TreeId: l.cfg.TreeID})
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("translog/trillian: %s has no tree %d: %w", l.cfg.Addr, l.cfg.TreeID, err)
	}
	if err != nil {
		return fmt.Errorf("translog/trillian: read tree %d at %s: %w", l.cfg.TreeID, l.cfg.Addr, err)
	}
	switch {
	case tree.Deleted:
		return fmt.Errorf("translog/trillian: tree %d is deleted", l.cfg.TreeID)
	case tree.TreeType != trillian.TreeType_PREORDERED_LOG:
		// A LOG tree picks the indices itself: the writer could not put a
		// leaf at the index it knows, nor tell a retry from a duplicate.
		return fmt.Errorf("translog/trillian: tree %d is a %v, want a PREORDERED_LOG", l.cfg.TreeID, tree.TreeType)
	case tree.TreeState != trillian.TreeState_ACTIVE:
		return fmt.Errorf("translog/trillian: tree %d is %v, want ACTIVE", l.cfg.TreeID, tree.TreeState)
	}
	if _, err := l.root(ctx); err != nil {
		return fmt.Errorf("%w (was the tree initialised with InitLog?)", err)
	}
	return nil
}

// Close closes the connection; calling it again does nothing.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		if err := l.conn.Close(); err != nil {
			l.closeErr = fmt.Errorf("translog/trillian: close: %w", err)
		}
	})
	return l.closeErr
}

// Append queues leaf at index and returns once Trillian's signer has
// integrated it, so that Size counts it: the writer resumes from Size.
func (l *Log) Append(ctx context.Context, index uint64, leaf []byte) error {
	i, err := toInt64(index)
	if err != nil {
		return err
	}
	size, err := l.Size(ctx)
	if err != nil {
		return err
	}
	switch {
	case index < size:
		return l.compare(ctx, index, leaf)
	case index > size:
		// Trillian would queue it and wait for the gap to fill: refuse
		// instead, as the contract says.
		return fmt.Errorf("%w: the log has %d leaves, cannot append at %d", translog.ErrConflict, size, index)
	}
	resp, err := l.log.AddSequencedLeaves(ctx, &trillian.AddSequencedLeavesRequest{
		LogId: l.cfg.TreeID,
		Leaves: []*trillian.LogLeaf{{
			LeafIndex: i,
			LeafValue: leaf,
			// Trillian refuses a second leaf with the identity hash of one
			// it holds, wherever it is, and by default that hash is the
			// leaf's. Binding it to the index too makes a refusal mean one
			// thing only: index is taken, by this leaf or another, so the
			// wait below ends and the comparison decides.
			LeafIdentityHash: identityHash(index, leaf),
		}},
	})
	if err != nil {
		return fmt.Errorf("translog/trillian: append leaf %d: %w", index, err)
	}
	if len(resp.Results) != 1 {
		return fmt.Errorf("translog/trillian: append leaf %d: %d results for one leaf", index, len(resp.Results))
	}
	switch code := codes.Code(resp.Results[0].GetStatus().GetCode()); code {
	case codes.OK:
		return l.awaitIntegrated(ctx, index)
	case codes.FailedPrecondition, codes.AlreadyExists:
		// Index is taken, yet was not when we read the size: a leaf queued
		// but not yet integrated, most likely ours from an append whose
		// answer was lost. It is integrated in turn; then compare.
		if err := l.awaitIntegrated(ctx, index); err != nil {
			return err
		}
		return l.compare(ctx, index, leaf)
	default:
		return fmt.Errorf("translog/trillian: append leaf %d: %v: %s", index, code, resp.Results[0].GetStatus().GetMessage())
	}
}

// identityHash is what Trillian deduplicates leaves by: the leaf at its
// index.
func identityHash(index uint64, leaf []byte) []byte {
	h := sha256.New()
	h.Write([]byte("chronolog translog leaf identity\x00"))
	h.Write(binary.BigEndian.AppendUint64(nil, index))
	h.Write(leaf)
	return h.Sum(nil)
}

// compare checks that the log's leaf at index, below its size, is leaf.
func (l *Log) compare(ctx context.Context, index uint64, leaf []byte) error {
	return translog.SameLeaf(ctx, l, index, leaf)
}

// ErrNotIntegrated is wrapped by Append when its leaf is queued but the
// signer did not integrate it within Config.IntegrationTimeout. It is not a
// conflict: a retry finds the queued leaf and waits for it again.
var ErrNotIntegrated = errors.New("translog/trillian: leaf queued but not integrated in time (is trillian_log_signer running?)")

// awaitIntegrated polls the latest root until the tree counts leaf index.
func (l *Log) awaitIntegrated(ctx context.Context, index uint64) error {
	// A timer, not a context deadline, bounds the wait: cut by a deadline,
	// a poll in flight would end in an RPC error indistinguishable from an
	// outage.
	timeout := time.NewTimer(l.cfg.IntegrationTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(l.cfg.PollInterval)
	defer tick.Stop()
	for {
		size, err := l.Size(ctx)
		if err != nil {
			return err
		}
		if size > index {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("translog/trillian: waiting for leaf %d to be integrated: %w", index, ctx.Err())
		case <-timeout.C:
			return fmt.Errorf("%w: leaf %d after %s", ErrNotIntegrated, index, l.cfg.IntegrationTimeout)
		case <-tick.C:
		}
	}
}

// Size is the size of the latest root: leaves integrated in the tree.
func (l *Log) Size(ctx context.Context) (uint64, error) {
	r, err := l.root(ctx)
	if err != nil {
		return 0, err
	}
	return r.TreeSize, nil
}

func (l *Log) root(ctx context.Context) (*types.LogRootV1, error) {
	resp, err := l.log.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: l.cfg.TreeID})
	if err != nil {
		return nil, fmt.Errorf("translog/trillian: latest root of tree %d: %w", l.cfg.TreeID, err)
	}
	var r types.LogRootV1
	if err := r.UnmarshalBinary(resp.GetSignedLogRoot().GetLogRoot()); err != nil {
		return nil, fmt.Errorf("translog/trillian: latest root of tree %d: %w", l.cfg.TreeID, err)
	}
	if len(r.RootHash) != sha256.Size {
		return nil, fmt.Errorf("translog/trillian: latest root of tree %d: root hash of %d bytes", l.cfg.TreeID, len(r.RootHash))
	}
	return &r, nil
}

// Leaf reads leaf index, which must be integrated.
func (l *Log) Leaf(ctx context.Context, index uint64) ([]byte, error) {
	i, err := toInt64(index)
	if err != nil {
		return nil, err
	}
	resp, err := l.log.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{LogId: l.cfg.TreeID, StartIndex: i, Count: 1})
	if err != nil {
		return nil, fmt.Errorf("translog/trillian: leaf %d: %w", index, err)
	}
	// Trillian answers a range beyond the tree with no leaves, not an
	// error.
	if len(resp.Leaves) != 1 {
		return nil, fmt.Errorf("translog/trillian: leaf %d: not in the log (%d leaves returned)", index, len(resp.Leaves))
	}
	got := resp.Leaves[0]
	if got.LeafIndex != i {
		return nil, fmt.Errorf("translog/trillian: asked for leaf %d, got leaf %d", index, got.LeafIndex)
	}
	// The tree commits to the Merkle leaf hash, not to the stored value:
	// check that they agree before anyone relies on the value.
	if h := merkle.LeafHash(got.LeafValue); !bytes.Equal(got.MerkleLeafHash, h[:]) {
		return nil, fmt.Errorf("translog/trillian: leaf %d: stored value does not match its Merkle leaf hash", index)
	}
	return got.LeafValue, nil
}

// Checkpoint signs the latest root as a C2SP checkpoint. A root is signed
// only if it extends the last one this Log signed (Trillian's roots carry
// no signature of their own: ours is the only one), and the note of a size
// is kept, so that asking again returns the same bytes.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, err := l.root(ctx)
	if err != nil {
		return nil, err
	}
	var root merkle.Hash
	copy(root[:], r.RootHash)
	last := &l.signed
	switch {
	case last.note != nil && r.TreeSize == last.size:
		if root != last.root {
			return nil, fmt.Errorf("%w: the root at size %d changed since it was signed", translog.ErrConflict, r.TreeSize)
		}
		return last.note, nil
	case last.note != nil && r.TreeSize < last.size:
		return nil, fmt.Errorf("%w: the log shrank from %d to %d leaves", translog.ErrConflict, last.size, r.TreeSize)
	case last.note != nil && last.size > 0:
		p, err := l.ConsistencyProof(ctx, last.size, r.TreeSize)
		if err != nil {
			return nil, err
		}
		if err := merkle.VerifyConsistency(last.size, r.TreeSize, p, last.root, root); err != nil {
			return nil, fmt.Errorf("%w: the root at size %d does not extend the one signed at %d: %w",
				translog.ErrConflict, r.TreeSize, last.size, err)
		}
	}
	signed, err := translog.SignCheckpoint(translog.Checkpoint{Origin: l.cfg.Signer.Name(), Size: r.TreeSize, Root: root}, l.cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("translog/trillian: sign checkpoint: %w", err)
	}
	last.size, last.root, last.note = r.TreeSize, root, signed
	return signed, nil
}

// InclusionProof proves leaf index in the tree of size leaves.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([]merkle.Hash, error) {
	if index >= size {
		return nil, fmt.Errorf("translog/trillian: leaf %d is outside a tree of %d leaves", index, size)
	}
	i, err := toInt64(index)
	if err != nil {
		return nil, err
	}
	n, err := toInt64(size)
	if err != nil {
		return nil, err
	}
	resp, err := l.log.GetInclusionProof(ctx, &trillian.GetInclusionProofRequest{LogId: l.cfg.TreeID, LeafIndex: i, TreeSize: n})
	if err != nil {
		return nil, fmt.Errorf("translog/trillian: inclusion of %d at size %d: %w", index, size, err)
	}
	// Trillian answers a size beyond its tree with no proof and no error.
	if resp.Proof == nil {
		return nil, fmt.Errorf("translog/trillian: inclusion of %d at size %d: the tree is smaller", index, size)
	}
	return merkle.ProofFromBytes(resp.Proof.Hashes)
}

// ConsistencyProof proves the tree of size2 leaves extends that of size1.
func (l *Log) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([]merkle.Hash, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("translog/trillian: consistency %d→%d: sizes out of order", size1, size2)
	}
	// RFC 9162 proves nothing in these cases, and Trillian refuses size 0.
	if size1 == 0 || size1 == size2 {
		return nil, nil
	}
	a, err := toInt64(size1)
	if err != nil {
		return nil, err
	}
	b, err := toInt64(size2)
	if err != nil {
		return nil, err
	}
	resp, err := l.log.GetConsistencyProof(ctx, &trillian.GetConsistencyProofRequest{LogId: l.cfg.TreeID, FirstTreeSize: a, SecondTreeSize: b})
	if err != nil {
		return nil, fmt.Errorf("translog/trillian: consistency %d→%d: %w", size1, size2, err)
	}
	if resp.Proof == nil {
		return nil, fmt.Errorf("translog/trillian: consistency %d→%d: the tree is smaller than %d", size1, size2, size2)
	}
	return merkle.ProofFromBytes(resp.Proof.Hashes)
}

// toInt64 converts an index or size to Trillian's signed integers.
func toInt64(n uint64) (int64, error) {
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("translog/trillian: %d is beyond Trillian's int64 indices", n)
	}
	return int64(n), nil
}
