package app_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chronolog/chronolog/adapters/config"
	"github.com/chronolog/chronolog/adapters/devpki"
	"github.com/chronolog/chronolog/adapters/eventstore/memory"
	"github.com/chronolog/chronolog/app"
	"github.com/chronolog/chronolog/domain/events"
	"github.com/chronolog/chronolog/domain/eventstore"
	"github.com/chronolog/chronolog/domain/rfc3161"
	"github.com/chronolog/chronolog/domain/tsa"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is a development PKI, a store, and a configuration file to write.
type rig struct {
	t     *testing.T
	pki   *devpki.Files
	store *memory.Store
	dir   string
	w     app.Wiring
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	pki, err := devpki.Ensure(devpki.Options{Dir: filepath.Join(dir, "pki"), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &rig{t: t, pki: pki, store: store, dir: dir,
		w: app.Wiring{Node: "n1", Crypto: "go", Recorder: store, Log: log, Now: time.Now(), WarnDays: 30}}
}

// file writes a configuration of the services given (YAML, each with the
// development key) and reads it back checked.
func (r *rig) file(services string) (*config.File, error) {
	r.t.Helper()
	path := filepath.Join(r.dir, "tsad.yaml")
	key := fmt.Sprintf("{key: %s, cert: %s, chain: %s}", r.pki.TSAKey, r.pki.TSACert, r.pki.Chain)
	if err := os.WriteFile(path, []byte("services:\n"+strings.ReplaceAll(services, "KEY", key)), 0o600); err != nil {
		r.t.Fatal(err)
	}
	cfg, err := config.Read(path)
	if err != nil {
		return nil, err
	}
	return cfg, cfg.Check()
}

func (r *rig) mustFile(services string) *config.File {
	r.t.Helper()
	cfg, err := r.file(services)
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

// stream is the types of a stream's events, in order.
func (r *rig) stream(name string) []string {
	r.t.Helper()
	recs, err := r.store.ReadStream(context.Background(), name)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range recs {
		out = append(out, strings.TrimSuffix(e.Type, ".v1"))
	}
	return out
}

const one = `
  - name: first
    paths: [/tsa]
    policy: 1.3.6.1.4.1.32473.3161.1
    signer: KEY
`

func query(t *testing.T) []byte {
	t.Helper()
	sum := sha256.Sum256([]byte("app test"))
	q, err := rfc3161.NewTimeStampReq(rfc3161.SHA256, sum[:], nil, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	der, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A generation answers on its paths, and its start is on the record
// before its first answer: the configuration, then the key's activation.
func TestBuildAnswersAndRecordsItsStart(t *testing.T) {
	r := newRig(t)
	gen, err := app.Build(r.mustFile(one), r.w)
	if err != nil {
		t.Fatal(err)
	}
	live := app.NewLive(gen)
	defer live.Close()
	if err := gen.RecordStart(context.Background(), r.store, "n1"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.stream(events.ConfigStream), " "); got != "ServiceConfigured" {
		t.Errorf("configuration record: %s", got)
	}
	if got := strings.Join(r.stream(events.KeyStream), " "); got != "SigningKeyActivated" {
		t.Errorf("key record: %s", got)
	}
	svc, ok := live.Route("/tsa")
	if !ok {
		t.Fatal("no service on /tsa")
	}
	if o := svc.Handle(context.Background(), tsa.Request{Body: query(t), Path: "/tsa"}); o.Kind != tsa.Granted || !o.Recorded {
		t.Fatalf("outcome %+v", o)
	}
	if _, ok := live.Route("/elsewhere"); ok {
		t.Error("a service on a path no service has")
	}
	if path, signing := gen.First(); path != "/tsa" || signing != "Go crypto" {
		t.Errorf("first service %s, signing by %s", path, signing)
	}
}

// Every problem of a configuration's services is reported at once, and
// nothing is left open.
func TestBuildReportsEveryProblem(t *testing.T) {
	r := newRig(t)
	cfg := r.mustFile(one + `
  - name: second
    paths: [/second]
    policy: 1.3.6.1.4.1.32473.3161.2
    signer: {key: /nonexistent/key.pem, cert: /nonexistent/cert.pem}
  - name: third
    paths: [/third]
    policy: 1.3.6.1.4.1.32473.3161.3
    signer: KEY
    chains: {default: [{type: tls-client-cert, caFile: /nonexistent/ca.pem}]}
`)
	_, err := app.Build(cfg, r.w)
	if err == nil || !strings.Contains(err.Error(), "services[1] second: signer") || !strings.Contains(err.Error(), "services[2] third: chains.default[0]: caFile") {
		t.Fatalf("Build: %v", err)
	}
}

// A key the record says was retired never signs again, whatever the file
// says.
func TestRetiredKeyIsRefused(t *testing.T) {
	r := newRig(t)
	gen, err := app.Build(r.mustFile(one), r.w)
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.RecordStart(context.Background(), r.store, "n1"); err != nil {
		t.Fatal(err)
	}
	app.NewLive(gen).Close()
	recs, err := r.store.ReadStream(context.Background(), events.KeyStream)
	if err != nil {
		t.Fatal(err)
	}
	_, e, err := events.Decode(recs[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	fp := e.(*events.SigningKeyActivated).PublicKeySHA256
	ed, err := events.Encode("01938d2e-6c4b-7e2a-9f1d-3b5c7a9e1f20", events.KeyStream, time.Now(), events.Metadata{},
		events.SigningKeyRetired{PublicKeySHA256: fp, Reason: "compromised in a test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.Append(context.Background(), events.KeyStream, eventstore.Any, ed); err != nil {
		t.Fatal(err)
	}
	if r.w.Retired, err = app.RetiredKeys(context.Background(), r.store); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Build(r.mustFile(one), r.w); err == nil || !strings.Contains(err.Error(), "was retired (compromised in a test)") {
		t.Fatalf("Build with a retired key: %v", err)
	}
}

// A reload puts a changed configuration in force whole, on the record; a
// refused one is on the record too, and the running one stays.
func TestReload(t *testing.T) {
	r := newRig(t)
	gen, err := app.Build(r.mustFile(one), r.w)
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.RecordStart(context.Background(), r.store, "n1"); err != nil {
		t.Fatal(err)
	}
	live := app.NewLive(gen)
	defer live.Close()
	rl := app.Reloader{Live: live, Wiring: r.w, Keys: r.store}
	ctx := context.Background()
	source := filepath.Join(r.dir, "tsad.yaml")

	// A second service appears: in force at once, on both routes.
	cfg, err := r.file(one + `
  - name: second
    paths: [/second]
    policy: 1.3.6.1.4.1.32473.3161.2
    signer: KEY
`)
	if !rl.Reload(ctx, source, cfg, err) {
		t.Fatal("a good change was not put in force")
	}
	if _, ok := live.Route("/second"); !ok {
		t.Fatal("the new service does not answer")
	}
	if _, ok := live.Accuracies()["second"]; !ok {
		t.Error("the clock monitor does not see the new service")
	}

	// A file with mistakes, a change that needs a restart, and no file at
	// all: refused, recorded, the running configuration stays.
	bad, badErr := r.file(one + "    hashes: [md5]\n")
	if rl.Reload(ctx, source, bad, badErr) {
		t.Error("a bad file was put in force")
	}
	moved, err := r.file(strings.Replace(one, "policy:", "tcp: 127.0.0.1:0\n    policy:", 1))
	if rl.Reload(ctx, source, moved, err) {
		t.Error("a new socket was put in force without a restart")
	}
	if rl.Reload(ctx, "", nil, nil) {
		t.Error("a server configured by flags reloaded")
	}
	if _, ok := live.Route("/second"); !ok {
		t.Error("a refused reload disturbed the running services")
	}
	want := "ServiceConfigured ServiceConfigChanged ServiceConfigRefused ServiceConfigRefused ServiceConfigRefused"
	if got := strings.Join(r.stream(events.ConfigStream), " "); got != want {
		t.Errorf("configuration record:\n got %s\nwant %s", got, want)
	}
	// The unchanged file: nothing to do, nothing recorded.
	same, err := r.file(one + `
  - name: second
    paths: [/second]
    policy: 1.3.6.1.4.1.32473.3161.2
    signer: KEY
`)
	if rl.Reload(ctx, source, same, err) {
		t.Error("an unchanged file was reloaded")
	}
	if n := len(r.stream(events.ConfigStream)); n != 5 {
		t.Errorf("%d configuration events after an unchanged reload, want 5", n)
	}
}

// The service of a name stands for it across reloads, as a socket
// listener needs.
func TestServiceOfANameFollowsReloads(t *testing.T) {
	r := newRig(t)
	gen, err := app.Build(r.mustFile(one), r.w)
	if err != nil {
		t.Fatal(err)
	}
	live := app.NewLive(gen)
	defer live.Close()
	first := live.Service("first")
	rl := app.Reloader{Live: live, Wiring: r.w, Keys: r.store}
	cfg, err := r.file(strings.Replace(one, "3161.1", "3161.9", 1))
	if !rl.Reload(context.Background(), filepath.Join(r.dir, "tsad.yaml"), cfg, err) {
		t.Fatal("the policy change was not put in force")
	}
	o := first.Handle(context.Background(), tsa.Request{Body: query(t), Path: "/tsa"})
	if o.Kind != tsa.Granted {
		t.Fatalf("outcome %+v", o)
	}
	info, err := rfc3161.TokenTSTInfo(o.Token)
	if err != nil || info.Policy.String() != "1.3.6.1.4.1.32473.3161.9" {
		t.Fatalf("token under policy %v (%v): the old generation answered", info, err)
	}
}
