package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/chronolog/chronolog/adapters/datadir"
	"github.com/chronolog/chronolog/adapters/devpki"
)

func runDev(args []string) error {
	fs := flag.NewFlagSet("tsad dev", flag.ContinueOnError)
	var f serverFlags
	f.register(fs)
	keyType := fs.String("key-type", "ecdsa-p256", "TSA key type on first start: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.parsed(fs)
	// Before the development PKI is written into the directory.
	lock, err := datadir.Acquire(f.data)
	if err != nil {
		return err
	}
	defer lock.Release()
	files, err := devpki.Ensure(devpki.Options{
		Dir:          filepath.Join(f.data, "pki"),
		KeyType:      *keyType,
		Organization: "Chronolog development",
		Now:          time.Now(),
	})
	if err != nil {
		return fmt.Errorf("development PKI: %w", err)
	}
	if files.Created {
		fmt.Printf("created a development CA and TSA key (%s) in %s\n", *keyType, filepath.Dir(files.CACert))
	}
	return serve(&f, keyFiles{key: files.TSAKey, cert: files.TSACert, chain: files.Chain, caFile: files.CACert, dev: true})
}

func runServe(args []string) error {
	fs := flag.NewFlagSet("tsad serve", flag.ContinueOnError)
	var f serverFlags
	f.register(fs)
	var kf keyFiles
	fs.StringVar(&kf.key, "key", "", "TSA private key (PEM), without --config")
	fs.StringVar(&kf.cert, "cert", "", "TSA certificate (PEM)")
	fs.StringVar(&kf.chain, "chain", "", "issuer certificates up to the root (PEM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.parsed(fs)
	if f.config == "" && (kf.key == "" || kf.cert == "") {
		return fmt.Errorf("serve needs --config, or --key and --cert")
	}
	kf.caFile = kf.chain
	lock, err := datadir.Acquire(f.data)
	if err != nil {
		return err
	}
	defer lock.Release()
	return serve(&f, kf)
}
