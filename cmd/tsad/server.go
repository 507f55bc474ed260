package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/httpapi"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/adapters/signer/libcrypto"
	"github.com/chronolog/chronolog/adapters/signer/softkey"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

// keyFiles name the TSA key material.
type keyFiles struct {
	key, cert, chain string
	// caFile is printed for clients to verify against.
	caFile string
	dev    bool
}

// serve wires the adapters and runs until SIGTERM or SIGINT.
func serve(f *serverFlags, kf keyFiles) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(f.gcPercent)
	}
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	policy, err := parseOID(f.policy)
	if err != nil {
		return err
	}
	accepted, err := parseOIDs(f.accepted)
	if err != nil {
		return err
	}
	hashes, err := parseHashes(f.hashes)
	if err != nil {
		return err
	}
	key, err := softkey.Load(softkey.Config{KeyFile: kf.key, CertFile: kf.cert, ChainFile: kf.chain}, time.Now())
	if err != nil {
		return fmt.Errorf("load TSA key: %w", err)
	}
	arith, how, err := signingArithmetic(f.crypto, key.Signer())
	if err != nil {
		return err
	}
	if c, ok := arith.(io.Closer); ok {
		defer c.Close()
	}
	signer, err := rfc3161.NewTokenSigner(rfc3161.SigningIdentity{
		Signer:      arith,
		Certificate: key.Certificate(),
		Chain:       key.Chain(),
	})
	if err != nil {
		return fmt.Errorf("prepare TSA signer: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	store, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(f.data, "events.db")})
	if err != nil {
		return fmt.Errorf("open event store: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close event store", "err", err)
		}
	}()

	svc, err := tsa.New(tsa.Config{
		Name:             "default",
		Node:             f.node,
		Policy:           policy,
		AcceptedPolicies: accepted,
		Hashes:           hashes,
		Accuracy:         accuracyOf(f.accuracy),
		Precision:        f.precision,
		IncludeTSAName:   f.tsaName,
	}, tsa.Ports{
		Clock:    system.Clock{},
		Serials:  ids.Source{},
		IDs:      ids.Source{},
		Rand:     rand.Reader,
		Signer:   signer,
		Recorder: store,
		Log:      log,
	})
	if err != nil {
		return err
	}
	tlog, err := startLog(ctx, &f.log, f.data, f.node, kf.dev, store, log)
	if err != nil {
		return fmt.Errorf("transparency log: %w", err)
	}
	// The writer stops before the store closes: it records events.
	if tlog != nil {
		defer tlog.stop()
	}
	hcfg := httpapi.Config{
		Routes:    map[string]httpapi.Service{f.path: svc},
		MaxBody:   f.maxBody,
		Log:       log,
		StoreHead: store.Head,
	}
	if tlog != nil {
		hcfg.TransparencyLog = &httpapi.LogAPI{Log: tlog.log, Store: store, Key: tlog.key, Files: tlog.files}
		hcfg.LogStatus = tlog.writer.Status
	}
	handler, err := httpapi.New(hcfg)
	if err != nil {
		return err
	}

	if f.debugAddr != "" {
		stopDebug, err := serveDebug(f.debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Requests keep running on SIGTERM until they finish: their
		// context must not be the signal's.
		BaseContext: func(net.Listener) context.Context { return context.Background() },
	}
	if kf.dev {
		fmt.Println("Chronolog tsad — DEVELOPMENT mode: the CA below is a development CA, not for production.")
	}
	fmt.Printf("endpoint: http://%s%s\n", ln.Addr(), f.path)
	fmt.Printf("verify against CA: %s\n", kf.caFile)
	fmt.Printf("TSA certificate: %s (sha256 %s)\n", kf.cert, key.Fingerprint())
	fmt.Printf("data: %s\n", f.data)
	fmt.Printf("signing: %s\n", how)
	if tlog != nil {
		fmt.Printf("transparency log: %s, origin %s, verifier key %s\n", tlog.backend, tlog.origin, tlog.keyFile)
		fmt.Printf("log key: %s\n", tlog.key)
	} else {
		fmt.Println("transparency log: OFF — events are recorded but not committed to a log")
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped cleanly")
	return nil
}

// signingArithmetic picks who computes signatures with the loaded key:
// OpenSSL's libcrypto where it loads (several times faster for RSA), or
// Go's crypto.
func signingArithmetic(choice string, key crypto.Signer) (crypto.Signer, string, error) {
	switch choice {
	case "go":
		return key, "Go crypto", nil
	case "auto", "openssl":
		lc, err := libcrypto.New(key)
		if err == nil {
			return lc, "OpenSSL 3 libcrypto", nil
		}
		if choice == "openssl" {
			return nil, "", err
		}
		return key, fmt.Sprintf("Go crypto (%v)", err), nil
	}
	return nil, "", fmt.Errorf("--crypto %q: want auto, openssl or go", choice)
}
