package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/adapters/logkey"
	"github.com/chronolog/chronolog/adapters/signer/pkcs11"
	"github.com/chronolog/chronolog/adapters/translog/tessera"
	"github.com/chronolog/chronolog/cmd/internal/hsmkey"
	"github.com/chronolog/chronolog/domain/events"
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
	// hsm is the log's HSM key, closed once the writer stopped.
	hsm     *pkcs11.Key
	backend string
	origin  string
	stop    func()
}

// logKey is the log's note key: its signer and the verifier key auditors
// are given, from a file or from an HSM.
type logKey struct {
	signer note.Signer
	vkey   string
	// file holds vkey, when the key is a file's.
	file string
	// hsm is the HSM key, nil for a file key; activated records it.
	hsm       *pkcs11.Key
	activated *events.SigningKeyActivated
}

// logSigner loads the log's key; dev servers create one on first start.
// A --log-key of the form pkcs11:… (RFC 7512) names an Ed25519 key in an
// HSM, which signs every checkpoint without leaving it.
func logSigner(f *logFlags, data, node string, dev bool, w wiring) (*logKey, error) {
	if strings.HasPrefix(f.key, "pkcs11:") {
		return hsmLogSigner(f, node, dev, w)
	}
	files := logkey.InDir(data)
	if f.key != "" {
		files = logkey.Files{Private: f.key, Public: f.key + ".pub"}
	}
	if !dev || f.key != "" {
		s, err := logkey.Load(files.Private)
		if err != nil {
			return nil, fmt.Errorf("the log's key (--log-key): %w", err)
		}
		if f.origin != "" && s.Name() != f.origin {
			return nil, fmt.Errorf("--log-origin %q but the key is %q's", f.origin, s.Name())
		}
		return fileLogKey(s, files.Public), nil
	}
	origin := f.origin
	if origin == "" {
		origin = "chronolog-dev/" + node
	}
	s, created, err := logkey.Ensure(files, origin)
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Printf("created the log's key for origin %s in %s\n", origin, files.Private)
	}
	return fileLogKey(s, files.Public), nil
}

func fileLogKey(s note.Signer, pubFile string) *logKey {
	pub, _ := os.ReadFile(pubFile)
	return &logKey{signer: s, vkey: string(trimNL(pub)), file: pubFile}
}

func hsmLogSigner(f *logFlags, node string, dev bool, w wiring) (*logKey, error) {
	p, err := config.ParsePKCS11URI(f.key)
	if err != nil {
		return nil, fmt.Errorf("--log-key: %w", err)
	}
	origin := f.origin
	if origin == "" {
		if !dev {
			return nil, errors.New("--log-key names an HSM key: --log-origin must name the log (a key in a token has no note name)")
		}
		origin = "chronolog-dev/" + node
	}
	watch := &outageRecorder{w: w, purpose: "log", token: p.Token, label: p.Key}
	hk, err := hsmkey.Open(p, watch.observe)
	if err != nil {
		return nil, fmt.Errorf("--log-key: %w", err)
	}
	fp := hsmkey.PublicKeySHA256(hk.Public())
	watch.setFingerprint(fp)
	s, vkey, err := logkey.NewExternal(origin, hk)
	if err != nil {
		hk.Close()
		return nil, fmt.Errorf("--log-key: %w", err)
	}
	return &logKey{signer: s, vkey: vkey, hsm: hk, activated: &events.SigningKeyActivated{
		Purpose: "log", Token: p.Token, KeyLabel: hk.Label(), KeyID: hex.EncodeToString(hk.ID()),
		KeyType: string(pkcs11.KeyTypeOf(hk.Public())), PublicKeySHA256: fp, Module: p.Module, Sessions: hk.Sessions(),
	}}, nil
}

// startLog opens the configured log and starts its writer on store.
func startLog(ctx context.Context, f *logFlags, data, node string, dev bool, store *sqlite.Store, log *slog.Logger) (*transparencyLog, error) {
	if f.backend == "off" {
		return nil, nil
	}
	w := wiring{node: node, recorder: store, log: log}
	lk, err := logSigner(f, data, node, dev, w)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*transparencyLog, error) {
		if lk.hsm != nil {
			lk.hsm.Close()
		}
		return nil, err
	}
	if lk.activated != nil {
		if err := recordEvents(ctx, store, node, events.KeyStream, *lk.activated); err != nil {
			return fail(fmt.Errorf("record the log key's activation: %w", err))
		}
	}
	signer := lk.signer
	t := &transparencyLog{backend: f.backend, origin: signer.Name(), key: lk.vkey, keyFile: lk.file, hsm: lk.hsm}
	switch f.backend {
	case "tessera":
		dir := f.dir
		if dir == "" {
			dir = filepath.Join(data, "log")
		}
		l, err := tessera.New(ctx, tessera.Config{Dir: dir, Signer: signer, CheckpointInterval: f.checkpointInterval})
		if err != nil {
			return fail(err)
		}
		t.log, t.files = l, l.Files()
	case "trillian":
		l, err := openTrillian(ctx, f, signer)
		if err != nil {
			return fail(err)
		}
		t.log = l
	default:
		return fail(fmt.Errorf("--log %q: want tessera, trillian or off", f.backend))
	}
	ticker := time.NewTicker(f.tick)
	t.writer, err = translog.NewWriter(translog.WriterConfig{Backend: f.backend, MaxEvents: f.segmentEvents, Node: node},
		translog.WriterPorts{Store: store, Log: t.log, IDs: ids.Source{}, Clock: system.Clock{}, Tick: ticker.C, Logger: log})
	if err != nil {
		ticker.Stop()
		closeLog(t.log, log)
		return fail(err)
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
		if lk.hsm != nil {
			lk.hsm.Close()
		}
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
