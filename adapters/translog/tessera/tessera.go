// Package tessera is the embedded transparency log: transparency-dev's
// Tessera with its POSIX driver, which keeps the log as C2SP tlog-tiles
// files under one directory, publishes checkpoints signed with the log's
// note key, and needs no server. The directory can be served as it is to
// anyone who wants to check the log without trusting us (Files).
package tessera

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"time"

	ttessera "github.com/transparency-dev/tessera"
	tclient "github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

// Config configures the log.
type Config struct {
	// Dir is the log's directory; it is created if missing. Required.
	Dir string
	// Signer signs checkpoints; its name is the log's origin. Required.
	Signer note.Signer
	// CheckpointInterval is how often a checkpoint is published when the
	// tree grew; default 200 ms, at least 100 ms (Tessera's floor). It is
	// most of the lag between an event and a checkpoint covering it.
	CheckpointInterval time.Duration
	// BatchMaxAge bounds how long Tessera holds a leaf before integrating
	// it; default 10 ms. The writer appends one leaf at a time and waits,
	// so there is nothing to gain from waiting for company.
	BatchMaxAge time.Duration
}

// Log is a Tessera POSIX log. It implements translog.Log.
type Log struct {
	cfg      Config
	appender *ttessera.Appender
	reader   ttessera.LogReader
	shutdown func(context.Context) error
	cancel   context.CancelFunc
}

var _ translog.Log = (*Log)(nil)

// New opens (creating if needed) the log in cfg.Dir.
func New(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Dir == "" || cfg.Signer == nil {
		return nil, errors.New("translog/tessera: Config.Dir and Config.Signer are required")
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = 200 * time.Millisecond
	}
	if cfg.BatchMaxAge <= 0 {
		cfg.BatchMaxAge = 10 * time.Millisecond
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("translog/tessera: %w", err)
	}
	// Tessera's goroutines live as long as this context; Close cancels it
	// after the appender's shutdown.
	lctx, cancel := context.WithCancel(context.Background())
	driver, err := posix.New(lctx, posix.Config{Path: cfg.Dir})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("translog/tessera: driver: %w", err)
	}
	opts := ttessera.NewAppendOptions().
		WithCheckpointSigner(cfg.Signer).
		WithBatching(256, cfg.BatchMaxAge).
		WithCheckpointInterval(cfg.CheckpointInterval).
		// An unchanged tree is republished hourly, so that a monitor can
		// tell a quiet log from a dead one.
		WithCheckpointRepublishInterval(time.Hour)
	appender, shutdown, reader, err := ttessera.NewAppender(lctx, driver, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("translog/tessera: open %s: %w", cfg.Dir, err)
	}
	l := &Log{cfg: cfg, appender: appender, reader: reader, shutdown: shutdown, cancel: cancel}
	// The checkpoint must be ours: a directory written with another key
	// would be served as if it were this log.
	if signed, err := reader.ReadCheckpoint(ctx); err == nil {
		if _, err := translog.OpenCheckpoint(signed, verifierOf(cfg.Signer)); err != nil {
			l.Close()
			return nil, fmt.Errorf("translog/tessera: %s holds a log signed with another key or origin: %w", cfg.Dir, err)
		}
	}
	return l, nil
}

// Close waits until every appended leaf is under a published checkpoint,
// then stops Tessera.
func (l *Log) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*l.cfg.CheckpointInterval+10*time.Second)
	defer cancel()
	err := l.shutdown(ctx)
	l.cancel()
	if err != nil {
		return fmt.Errorf("translog/tessera: shutdown: %w", err)
	}
	return nil
}

// Append adds leaf at index, once: Tessera assigns indices itself, so the
// leaf is added only when the log's size is index, and a retry finds it.
func (l *Log) Append(ctx context.Context, index uint64, leaf []byte) error {
	size, err := l.Size(ctx)
	if err != nil {
		return err
	}
	switch {
	case index < size:
		return translog.SameLeaf(ctx, l, index, leaf)
	case index > size:
		return fmt.Errorf("%w: the log has %d leaves, cannot append at %d", translog.ErrConflict, size, index)
	}
	// The future resolves once the leaf is integrated and durable.
	idx, err := l.appender.Add(ctx, ttessera.NewEntry(leaf))()
	if err != nil {
		return fmt.Errorf("translog/tessera: append leaf %d: %w", index, err)
	}
	if idx.Index != index {
		return fmt.Errorf("%w: the leaf meant for %d landed at %d: another writer shares the log", translog.ErrConflict, index, idx.Index)
	}
	return nil
}

// Size is the integrated size: leaves durably in the tree, perhaps not yet
// under a published checkpoint.
func (l *Log) Size(ctx context.Context) (uint64, error) {
	n, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return 0, fmt.Errorf("translog/tessera: size: %w", err)
	}
	return n, nil
}

// Leaf reads leaf index from its entry bundle.
func (l *Log) Leaf(ctx context.Context, index uint64) ([]byte, error) {
	size, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	if index >= size {
		return nil, fmt.Errorf("translog/tessera: leaf %d beyond the log's %d", index, size)
	}
	const perBundle = 256 // C2SP tlog-tiles: 256 entries per bundle
	b, err := tclient.GetEntryBundle(ctx, l.reader.ReadEntryBundle, index/perBundle, size)
	if err != nil {
		return nil, fmt.Errorf("translog/tessera: leaf %d: %w", index, err)
	}
	i := index % perBundle
	if i >= uint64(len(b.Entries)) {
		return nil, fmt.Errorf("translog/tessera: leaf %d missing from its bundle", index)
	}
	return b.Entries[i], nil
}

// Checkpoint is the published checkpoint file.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	cp, err := l.reader.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("translog/tessera: checkpoint: %w", err)
	}
	return cp, nil
}

// InclusionProof proves leaf index in the tree of size leaves. Tessera keeps
// the tiles of published sizes only: ask at a checkpoint's size.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([]merkle.Hash, error) {
	pb, err := tclient.NewProofBuilder(ctx, size, l.reader.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("translog/tessera: proof at size %d: %w", size, err)
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("translog/tessera: inclusion of %d at size %d: %w", index, size, err)
	}
	return merkle.ProofFromBytes(p)
}

// ConsistencyProof proves the tree of size2 leaves extends that of size1.
func (l *Log) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([]merkle.Hash, error) {
	if size1 == 0 || size1 == size2 {
		return nil, nil
	}
	pb, err := tclient.NewProofBuilder(ctx, size2, l.reader.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("translog/tessera: proof at size %d: %w", size2, err)
	}
	p, err := pb.ConsistencyProof(ctx, size1, size2)
	if err != nil {
		return nil, fmt.Errorf("translog/tessera: consistency %d→%d: %w", size1, size2, err)
	}
	return merkle.ProofFromBytes(p)
}

// Files is the log directory as an auditor may read it: the checkpoint,
// the tiles and the entry bundles (C2SP tlog-tiles), and nothing else —
// not Tessera's private state, nor a temporary file a crash left behind.
func (l *Log) Files() fs.FS { return publicFS{os.DirFS(l.cfg.Dir)} }

// publicPath matches the paths of C2SP tlog-tiles: "checkpoint",
// "tile/<L>/<N>[.p/<W>]" and "tile/entries/<N>[.p/<W>]", N written in
// groups of three digits, all but the last prefixed with x.
var publicPath = regexp.MustCompile(`^(checkpoint|tile/(entries|[0-9]{1,3})(/x[0-9]{3})*/[0-9]{3}(\.p/[0-9]{1,3})?)$`)

type publicFS struct{ fs fs.FS }

func (p publicFS) Open(name string) (fs.File, error) {
	if !publicPath.MatchString(path.Clean(name)) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return p.fs.Open(name)
}

// verifierOf derives the note verifier of an Ed25519 note signer, for the
// start-up check that the directory's checkpoint is ours.
func verifierOf(s note.Signer) note.Verifier { return signerVerifier{s} }

// signerVerifier verifies by re-deriving nothing: it accepts a signature
// with the signer's name and key hash only if the signer itself produces
// the same signature bytes (Ed25519 signing is deterministic).
type signerVerifier struct{ s note.Signer }

func (v signerVerifier) Name() string    { return v.s.Name() }
func (v signerVerifier) KeyHash() uint32 { return v.s.KeyHash() }
func (v signerVerifier) Verify(msg, sig []byte) bool {
	mine, err := v.s.Sign(msg)
	return err == nil && bytes.Equal(mine, sig)
}
