package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/chronolog/chronolog/adapters/clock/system"
	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/datadir"
	"github.com/chronolog/chronolog/adapters/eventstore/sqlite"
	"github.com/chronolog/chronolog/adapters/ids"
	"github.com/chronolog/chronolog/adapters/signer/pkcs11"
	"github.com/chronolog/chronolog/adapters/signer/softkey"
	"github.com/chronolog/chronolog/app/hsmkey"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
)

const hsmUsage = `usage: tsactl hsm <step> [flags]

steps (keygen, import-cert and retire are recorded in the event store under --data,
stream tsa-keys: they take the data directory, so no tsad may run on it, and open
its store, creating it if new, before they change the token):
  init-token   initialise a token and its user PIN (SoftHSM2, for development)
  keygen       make a signing key in a token: non-extractable, sensitive, sign-only
  csr          a PKCS#10 request for a key, asking for the critical timeStamping EKU
  import-cert  store the key's certificate in the token, beside the key
  list         the token's keys, their attributes as the token reports them, and certificates
  retire       record that a key signs no more
  speed        how fast a key signs with no server around it, and its CPU per signature

The PIN comes from --pin-env VAR, --pin-file FILE or --pin-prompt; never from a flag's value.
`

func runHSM(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, hsmUsage)
		return errors.New("hsm needs a step")
	}
	steps := map[string]func([]string) error{
		"init-token":  hsmInitToken,
		"keygen":      hsmKeygen,
		"csr":         hsmCSR,
		"import-cert": hsmImportCert,
		"list":        hsmList,
		"retire":      hsmRetire,
		"speed":       hsmSpeed,
	}
	step, ok := steps[args[0]]
	if !ok {
		if a := args[0]; a == "-h" || a == "--help" || a == "help" {
			fmt.Print(hsmUsage)
			return nil
		}
		return fmt.Errorf("hsm: unknown step %q\n\n%s", args[0], hsmUsage)
	}
	return step(args[1:])
}

// tokenFlags select a token and say where its PIN comes from.
type tokenFlags struct {
	module, token string
	pin           config.PINSource
	data          string
	operator      string
}

func (t *tokenFlags) register(fs *flag.FlagSet, record bool) {
	fs.StringVar(&t.module, "module", os.Getenv("CHRONOLOG_PKCS11_MODULE"), "PKCS#11 library (default $CHRONOLOG_PKCS11_MODULE)")
	fs.StringVar(&t.token, "token", "", "token label")
	fs.StringVar(&t.pin.Env, "pin-env", "", "read the user PIN from this environment variable")
	fs.StringVar(&t.pin.File, "pin-file", "", "read the user PIN from this file's first line (mode 0600 or stricter)")
	fs.BoolVar(&t.pin.Prompt, "pin-prompt", false, "ask for the user PIN on the terminal")
	if record {
		fs.StringVar(&t.data, "data", "data", "the server's data directory: the step is recorded in its event store (created if new; tsad must be stopped)")
		fs.StringVar(&t.operator, "operator", defaultOperator(), "who performs the step, for the record")
	}
}

func defaultOperator() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func (t *tokenFlags) check() error {
	var missing []string
	if t.module == "" {
		missing = append(missing, "--module")
	}
	if t.token == "" {
		missing = append(missing, "--token")
	}
	if len(missing) > 0 {
		return fmt.Errorf("hsm: %s needed", strings.Join(missing, " and "))
	}
	return nil
}

func (t *tokenFlags) readPIN() (string, error) {
	if err := t.check(); err != nil {
		return "", err
	}
	return hsmkey.ReadPIN(t.pin, t.token)
}

// stepRecord is the event store under --data, held by a step from before
// it changes the token until it is recorded: the data directory's lock (so
// no tsad writes the store meanwhile) and the store, created if new. A
// step whose record cannot be written is refused before the token changes.
type stepRecord struct {
	data  string
	lock  *datadir.Lock
	store *sqlite.Store
}

// openRecord takes the data directory and opens its store for the step.
func (t *tokenFlags) openRecord(step string) (*stepRecord, error) {
	lock, err := datadir.Acquire(t.data)
	if err != nil {
		var held *datadir.HeldError
		if errors.As(err, &held) {
			return nil, fmt.Errorf("hsm %s: %w. The step is recorded in that directory's event store: stop the process first. The token is unchanged", step, err)
		}
		return nil, fmt.Errorf("hsm %s: the step could not be recorded, so the token is unchanged: %w", step, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(t.data, "events.db")})
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("hsm %s: the step could not be recorded, so the token is unchanged: open the event store: %w", step, err)
	}
	return &stepRecord{data: t.data, lock: lock, store: store}, nil
}

func (r *stepRecord) close() {
	r.store.Close()
	r.lock.Release()
}

// record appends a key lifecycle event. The step already happened in the
// token: if recording fails now (the store was opened, so a full disk or
// an I/O error) the operator is told loudly, with the event, so it can be
// recorded by hand.
func (r *stepRecord) record(e events.Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := events.Recorder{Store: r.store, Clock: system.Clock{}, IDs: ids.Source{}, Meta: events.Metadata{Node: hostname(), Service: "tsactl"}}
	if _, err := rec.Record(ctx, events.KeyStream, eventstore.Any, e); err != nil {
		return fmt.Errorf("the token has the change but the record does not (%s under %s): %w — record it before the key is used", e.EventType(), r.data, err)
	}
	fmt.Fprintf(os.Stderr, "recorded %s in %s\n", e.EventType(), filepath.Join(r.data, "events.db"))
	return nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// keySelector picks a key by label or by id.
type keySelector struct{ label, id string }

func (k *keySelector) register(fs *flag.FlagSet) {
	fs.StringVar(&k.label, "key", "", "the key's label (CKA_LABEL)")
	fs.StringVar(&k.id, "id", "", "the key's id (CKA_ID, hex), instead of --key")
}

func (k *keySelector) bytes() ([]byte, error) {
	if (k.label == "") == (k.id == "") {
		return nil, errors.New("hsm: give the key's --key label or its --id")
	}
	if k.id == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(k.id)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("hsm: --id %q is not hex", k.id)
	}
	return b, nil
}

// openKey reads the PIN and opens the key k selects, with one session:
// the steps that use a key sign once at most.
func openKey(t *tokenFlags, k *keySelector) (*pkcs11.Key, string, error) {
	idb, err := k.bytes()
	if err != nil {
		return nil, "", err
	}
	pin, err := t.readPIN()
	if err != nil {
		return nil, "", err
	}
	key, err := pkcs11.Open(pkcs11.Config{Module: t.module, Token: t.token, KeyLabel: k.label, KeyID: idb, PIN: pin, Sessions: 1})
	if err != nil {
		return nil, "", err
	}
	return key, pin, nil
}

func hsmInitToken(args []string) error {
	fs := flag.NewFlagSet("tsactl hsm init-token", flag.ContinueOnError)
	var t tokenFlags
	t.register(fs, false)
	soPINEnv := fs.String("so-pin-env", "", "read the security officer's PIN from this environment variable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pin, err := t.readPIN()
	if err != nil {
		return err
	}
	so := os.Getenv(*soPINEnv)
	if *soPINEnv == "" || so == "" {
		return errors.New("hsm init-token: --so-pin-env must name a set variable holding the security officer's PIN")
	}
	if err := pkcs11.InitToken(t.module, t.token, so, pin); err != nil {
		return err
	}
	fmt.Printf("token %q initialised\n", t.token)
	return nil
}

func hsmKeygen(args []string) error {
	fs := flag.NewFlagSet("tsactl hsm keygen", flag.ContinueOnError)
	var t tokenFlags
	t.register(fs, true)
	label := fs.String("label", "", "the new key's label")
	id := fs.String("id", "", "the new key's id (hex; default 16 random octets)")
	typ := fs.String("type", "ecdsa-p256", "ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519 (the log's checkpoint key)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *label == "" {
		return errors.New("hsm keygen: --label needed")
	}
	var idb []byte
	if *id != "" {
		var err error
		if idb, err = hex.DecodeString(*id); err != nil || len(idb) == 0 {
			return fmt.Errorf("hsm keygen: --id %q is not hex", *id)
		}
	}
	if err := t.check(); err != nil {
		return err
	}
	rec, err := t.openRecord("keygen")
	if err != nil {
		return err
	}
	defer rec.close()
	pin, err := t.readPIN()
	if err != nil {
		return err
	}
	info, err := pkcs11.GenerateKey(t.module, t.token, pin, pkcs11.KeySpec{Type: pkcs11.KeyType(*typ), Label: *label, ID: idb})
	if err != nil {
		return err
	}
	spki, err := x509.MarshalPKIXPublicKey(info.Public)
	if err != nil {
		return fmt.Errorf("hsm keygen: the token's public key: %w", err)
	}
	fp := hsmkey.PublicKeySHA256(info.Public)
	fmt.Printf("key %q id %x (%s) in token %q\npublic key sha256 %s\nextractable=%t sensitive=%t sign=%t decrypt=%t unwrap=%t derive=%t\n",
		info.Label, info.ID, info.Type, t.token, fp, info.Extractable, info.Sensitive, info.Sign, info.Decrypt, info.Unwrap, info.Derive)
	return rec.record(events.SigningKeyGenerated{
		Token: t.token, KeyLabel: info.Label, KeyID: hex.EncodeToString(info.ID), KeyType: string(info.Type),
		PublicKey: spki, PublicKeySHA256: fp,
		Attributes: events.KeyAttributes{Extractable: info.Extractable, Sensitive: info.Sensitive, Sign: info.Sign,
			Decrypt: info.Decrypt, Unwrap: info.Unwrap, Derive: info.Derive},
		Operator: t.operator, Module: t.module,
	})
}

// oidExtKeyUsage and oidTimeStamping make the critical, sole
// extendedKeyUsage RFC 3161 §2.3 requires of a TSA certificate.
var (
	oidExtKeyUsage  = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
)

func hsmCSR(args []string) error {
	fs := flag.NewFlagSet("tsactl hsm csr", flag.ContinueOnError)
	var t tokenFlags
	t.register(fs, false)
	var k keySelector
	k.register(fs)
	cn := fs.String("cn", "", "the subject's commonName")
	org := fs.String("o", "", "the subject's organizationName")
	country := fs.String("c", "", "the subject's countryName")
	out := fs.String("out", "", "write the PEM request here (default standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cn == "" {
		return errors.New("hsm csr: --cn needed")
	}
	key, _, err := openKey(&t, &k)
	if err != nil {
		return err
	}
	defer key.Close()
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidTimeStamping})
	subject := pkix.Name{CommonName: *cn}
	if *org != "" {
		subject.Organization = []string{*org}
	}
	if *country != "" {
		subject.Country = []string{*country}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         subject,
		ExtraExtensions: []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}},
	}, key)
	if err != nil {
		return fmt.Errorf("hsm csr: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if *out == "" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

func hsmImportCert(args []string) error {
	fs := flag.NewFlagSet("tsactl hsm import-cert", flag.ContinueOnError)
	var t tokenFlags
	t.register(fs, true)
	var k keySelector
	k.register(fs)
	certFile := fs.String("cert", "", "the key's certificate (PEM; the first certificate is taken)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *certFile == "" {
		return errors.New("hsm import-cert: --cert needed")
	}
	certs, err := softkey.ReadCertificates(*certFile)
	if err != nil {
		return err
	}
	cert := certs[0]
	if err := t.check(); err != nil {
		return err
	}
	if _, err := k.bytes(); err != nil {
		return err
	}
	rec, err := t.openRecord("import-cert")
	if err != nil {
		return err
	}
	defer rec.close()
	key, pin, err := openKey(&t, &k)
	if err != nil {
		return err
	}
	label, id := key.Label(), key.ID()
	// The import check is the server's own: a certificate the server
	// would refuse at start is refused here, before it is in the token.
	if err := softkey.CheckTSACertificate(cert, key.Public(), time.Now()); err != nil {
		key.Close()
		return fmt.Errorf("hsm import-cert: %w", err)
	}
	key.Close()
	if err := pkcs11.ImportCertificate(t.module, t.token, pin, label, id, cert); err != nil {
		return err
	}
	sum := sha256.Sum256(cert.Raw)
	fmt.Printf("certificate %s (%s, until %s) stored with key %q in token %q\n", hex.EncodeToString(sum[:]), cert.Subject, cert.NotAfter.UTC().Format(time.RFC3339), label, t.token)
	return rec.record(events.CertificateImported{
		Token: t.token, KeyLabel: label, KeyID: hex.EncodeToString(id),
		Certificate: cert.Raw, CertificateSHA256: hex.EncodeToString(sum[:]),
		Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), SerialNumber: cert.SerialNumber.Text(16),
		NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC(),
		PublicKeySHA256: hsmkey.PublicKeySHA256(cert.PublicKey), Operator: t.operator,
	})
}

func hsmList(args []string) error {
	fs := flag.NewFlagSet("tsactl hsm list", flag.ContinueOnError)
	var t tokenFlags
	t.register(fs, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	pin, err := t.readPIN()
	if err != nil {
		return err
	}
	keys, err := pkcs11.ListKeys(t.module, t.token, pin)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		fmt.Printf("token %q holds no private key\n", t.token)
	}
	for _, k := range keys {
		fmt.Printf("key %q id %x %s public key sha256 %s\n  extractable=%t sensitive=%t always-sensitive=%t never-extractable=%t sign=%t decrypt=%t unwrap=%t derive=%t\n",
			k.Label, k.ID, k.Type, hsmkey.PublicKeySHA256(k.Public), k.Extractable, k.Sensitive, k.AlwaysSensitive, k.NeverExtractable, k.Sign, k.Decrypt, k.Unwrap, k.Derive)
		if k.Certificate != nil {
			fmt.Printf("  certificate %s, issuer %s, until %s\n", k.Certificate.Subject, k.Certificate.Issuer, k.Certificate.NotAfter.UTC().Format(time.RFC3339))
		} else {
			fmt.Println("  no certificate stored")
		}
	}
	return nil
}

func hsmRetire(args []string) error {
	fs := flag.NewFlagSet("tsactl hsm retire", flag.ContinueOnError)
	var t tokenFlags
	t.register(fs, true)
	var k keySelector
	k.register(fs)
	reason := fs.String("reason", "", "why the key signs no more (superseded, compromised, certificate expired, ...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *reason == "" {
		return errors.New("hsm retire: --reason needed: the record says why")
	}
	if err := t.check(); err != nil {
		return err
	}
	if _, err := k.bytes(); err != nil {
		return err
	}
	rec, err := t.openRecord("retire")
	if err != nil {
		return err
	}
	defer rec.close()
	key, _, err := openKey(&t, &k)
	if err != nil {
		return err
	}
	label, id, fp := key.Label(), key.ID(), hsmkey.PublicKeySHA256(key.Public())
	key.Close()
	return rec.record(events.SigningKeyRetired{
		Token: t.token, KeyLabel: label, KeyID: hex.EncodeToString(id), PublicKeySHA256: fp,
		Reason: *reason, Operator: t.operator,
	})
}
