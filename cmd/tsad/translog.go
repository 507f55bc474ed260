package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/adapters/logkey"
	"github.com/chronolog/chronolog/adapters/translog/tessera"
	"github.com/chronolog/chronolog/domain/translog"
)

// logFlags configure the transparency log.
type logFlags struct {
	backend            string
	dir                string
	key, origin        string
	segmentEvents      int
	tick               time.Duration
	checkpointInterval time.Duration
	trillianAddr       string
	trillianTree       int64
}

func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.backend, "log", "tessera", "transparency log: tessera (embedded, C2SP tiles on disk), trillian (a Trillian log server), or off")
	fs.StringVar(&f.dir, "log-dir", "", "Tessera log directory (default DATA/log)")
	fs.StringVar(&f.key, "log-key", "", "the log's note private key file (dev: DATA/log.key, created on first start)")
	fs.StringVar(&f.origin, "log-origin", "", "the log's origin, the name of its key (dev default: chronolog-dev/NODE)")
	fs.IntVar(&f.segmentEvents, "log-segment-events", 16384, "cut a segment at this many events (fewer, larger segments cost the log less)")
	fs.DurationVar(&f.tick, "log-tick", 250*time.Millisecond, "cut a segment, record new checkpoints and retry a log that is down this often")
	fs.DurationVar(&f.checkpointInterval, "log-checkpoint-interval", 200*time.Millisecond, "Tessera: publish a checkpoint this often when the tree grew (at least 100ms)")
	fs.StringVar(&f.trillianAddr, "trillian-addr", "", "Trillian log server gRPC address (host:port)")
	fs.Int64Var(&f.trillianTree, "trillian-tree", 0, "Trillian tree id: a PREORDERED_LOG tree")
}

// transparencyLog is a running log and its writer.
type transparencyLog struct {
	log     translog.Log
	writer  *translog.Writer
	files   fs.FS
	key     string // public verifier key
	keyFile string
	backend string
	origin  string
	stop    func()
}

// logSigner loads the log's key; dev servers create one on first start.
func logSigner(f *logFlags, data, node string, dev bool) (note.Signer, string, error) {
	files := logkey.InDir(data)
	if f.key != "" {
		files = logkey.Files{Private: f.key, Public: f.key + ".pub"}
	}
	if !dev || f.key != "" {
		s, err := logkey.Load(files.Private)
		if err != nil {
			return nil, "", fmt.Errorf("the log's key (--log-key): %w", err)
		}
		if f.origin != "" && s.Name() != f.origin {
			return nil, "", fmt.Errorf("--log-origin %q but the key is %q's", f.origin, s.Name())
		}
		return s, files.Public, nil
	}
	origin := f.origin
	if origin == "" {
		origin = "chronolog-dev/" + node
	}
	s, created, err := logkey.Ensure(files, origin)
	if err != nil {
		return nil, "", err
	}
	if created {
		fmt.Printf("created the log's key for origin %s in %s\n", origin, files.Private)
	}
	return s, files.Public, nil
}

// startLog opens the configured log and starts its writer on store.
func startLog(ctx context.Context, f *logFlags, data, node string, dev bool, store *sqlite.Store, log *slog.Logger) (*transparencyLog, error) {
	if f.backend == "off" {
		return nil, nil
	}
	signer, pubFile, err := logSigner(f, data, node, dev)
	if err != nil {
		return nil, err
	}
	pub, _ := os.ReadFile(pubFile)
	t := &transparencyLog{backend: f.backend, origin: signer.Name(), key: string(trimNL(pub)), keyFile: pubFile}
	switch f.backend {
	case "tessera":
		dir := f.dir
		if dir == "" {
			dir = filepath.Join(data, "log")
		}
		l, err := tessera.New(ctx, tessera.Config{Dir: dir, Signer: signer, CheckpointInterval: f.checkpointInterval})
		if err != nil {
			return nil, err
		}
		t.log, t.files = l, l.Files()
	case "trillian":
		l, err := openTrillian(ctx, f, signer)
		if err != nil {
			return nil, err
		}
		t.log = l
	default:
		return nil, fmt.Errorf("--log %q: want tessera, trillian or off", f.backend)
	}
	ticker := time.NewTicker(f.tick)
	t.writer, err = translog.NewWriter(translog.WriterConfig{Backend: f.backend, MaxEvents: f.segmentEvents, Node: node},
		translog.WriterPorts{Store: store, Log: t.log, IDs: ids.Source{}, Clock: system.Clock{}, Tick: ticker.C, Logs: log})
	if err != nil {
		ticker.Stop()
		closeLog(t.log, log)
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := t.writer.Run(wctx); err != nil && !errors.Is(err, context.Canceled) {
			// The TSA goes on issuing: its events are durable, and a
			// writer that cannot go on needs an operator, loudly.
			log.Error("TRANSPARENCY LOG WRITER STOPPED: events are no longer being logged", "err", err)
		}
	}()
	t.stop = func() {
		cancel()
		<-done
		ticker.Stop()
		closeLog(t.log, log)
	}
	return t, nil
}

func closeLog(l translog.Log, log *slog.Logger) {
	if c, ok := l.(io.Closer); ok {
		if err := c.Close(); err != nil {
			log.Error("close the transparency log", "err", err)
		}
	}
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
