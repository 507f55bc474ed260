package app

import (
	"context"
	"encoding/hex"
	"errors"
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
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/adapters/logkey"
	"github.com/chronolog/chronolog/adapters/signer/pkcs11"
	"github.com/chronolog/chronolog/adapters/translog/tessera"
	"github.com/chronolog/chronolog/adapters/translog/trillian"
	"github.com/chronolog/chronolog/app/hsmkey"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/translog"
)

// LogConfig configures the transparency log (tsad's --log flags).
type LogConfig struct {
	// Backend is tessera, trillian or off; Dir is Tessera's directory
	// (default DATA/log).
	Backend, Dir string
	// Key is the log's note key file, or an RFC 7512 pkcs11: URI naming
	// an Ed25519 key in an HSM; Origin the log's name.
	Key, Origin string
	// SegmentEvents cuts a segment at this many events; Tick paces the
	// writer; CheckpointInterval paces Tessera's checkpoints.
	SegmentEvents            int
	Tick, CheckpointInterval time.Duration
	// TrillianAddr and TrillianTree name a Trillian log server's tree.
	TrillianAddr string
	TrillianTree int64
}

// TransparencyLog is a running log and its writer.
type TransparencyLog struct {
	Log    translog.Log
	Writer *translog.Writer
	// Files are Tessera's tiles, served to auditors; nil for Trillian.
	Files fs.FS
	// Key is the public verifier key auditors are given; KeyFile holds
	// it, when the key is a file's.
	Key, KeyFile string
	// HSM is the log's HSM key, closed once the writer stopped.
	HSM             *pkcs11.Key
	Backend, Origin string
	// Stop stops the writer, then closes the log and its key.
	Stop func()
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
func logSigner(f *LogConfig, data, node string, dev bool, w Wiring) (*logKey, error) {
	if strings.HasPrefix(f.Key, "pkcs11:") {
		return hsmLogSigner(f, node, dev, w)
	}
	files := logkey.InDir(data)
	if f.Key != "" {
		files = logkey.Files{Private: f.Key, Public: f.Key + ".pub"}
	}
	if !dev || f.Key != "" {
		s, err := logkey.Load(files.Private)
		if err != nil {
			return nil, fmt.Errorf("the log's key (--log-key): %w", err)
		}
		if f.Origin != "" && s.Name() != f.Origin {
			return nil, fmt.Errorf("--log-origin %q but the key is %q's", f.Origin, s.Name())
		}
		return fileLogKey(s, files.Public), nil
	}
	origin := f.Origin
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

func hsmLogSigner(f *LogConfig, node string, dev bool, w Wiring) (*logKey, error) {
	p, err := config.ParsePKCS11URI(f.Key)
	if err != nil {
		return nil, fmt.Errorf("--log-key: %w", err)
	}
	origin := f.Origin
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

// StartLog opens the configured log and starts its writer on store. A
// development server (dev) creates the log's key in data on first start.
// It returns nil for --log off.
func StartLog(ctx context.Context, f *LogConfig, data, node string, dev bool, store translog.EventStore, log *slog.Logger) (*TransparencyLog, error) {
	if f.Backend == "off" {
		return nil, nil
	}
	w := Wiring{Node: node, Recorder: store, Log: log}
	lk, err := logSigner(f, data, node, dev, w)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*TransparencyLog, error) {
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
	t := &TransparencyLog{Backend: f.Backend, Origin: signer.Name(), Key: lk.vkey, KeyFile: lk.file, HSM: lk.hsm}
	switch f.Backend {
	case "tessera":
		dir := f.Dir
		if dir == "" {
			dir = filepath.Join(data, "log")
		}
		l, err := tessera.New(ctx, tessera.Config{Dir: dir, Signer: signer, CheckpointInterval: f.CheckpointInterval})
		if err != nil {
			return fail(err)
		}
		t.Log, t.Files = l, l.Files()
	case "trillian":
		l, err := openTrillian(ctx, f, signer)
		if err != nil {
			return fail(err)
		}
		t.Log = l
	default:
		return fail(fmt.Errorf("--log %q: want tessera, trillian or off", f.Backend))
	}
	ticker := time.NewTicker(f.Tick)
	t.Writer, err = translog.NewWriter(translog.WriterConfig{Backend: f.Backend, MaxEvents: f.SegmentEvents, Node: node},
		translog.WriterPorts{Store: store, Log: t.Log, IDs: ids.Source{}, Clock: system.Clock{}, Tick: ticker.C, Logger: log})
	if err != nil {
		ticker.Stop()
		closeLog(t.Log, log)
		return fail(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := t.Writer.Run(wctx); err != nil && !errors.Is(err, context.Canceled) {
			// The TSA goes on issuing: its events are durable, and a
			// writer that cannot go on needs an operator, loudly.
			log.Error("TRANSPARENCY LOG WRITER STOPPED: events are no longer being logged", "err", err)
		}
	}()
	t.Stop = func() {
		cancel()
		<-done
		ticker.Stop()
		closeLog(t.Log, log)
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

// openTrillian connects to a Trillian log server holding the log in a
// PREORDERED_LOG tree.
func openTrillian(ctx context.Context, f *LogConfig, signer note.Signer) (translog.Log, error) {
	if f.TrillianAddr == "" || f.TrillianTree == 0 {
		return nil, errors.New("--log trillian needs --trillian-addr and --trillian-tree")
	}
	return trillian.New(ctx, trillian.Config{Addr: f.TrillianAddr, TreeID: f.TrillianTree, Signer: signer})
}
