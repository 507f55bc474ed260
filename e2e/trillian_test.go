package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/adapters/logkey"
	"github.com/chronolog/chronolog/adapters/translog/trillian"
	"github.com/chronolog/chronolog/adapters/translog/trillian/trilliantest"
	"github.com/chronolog/chronolog/domain/logwire"
)

// TestTsadOnTrillian runs tsad with its transparency log on a real Trillian
// log server over MariaDB, takes the log down under load and brings it back:
// issuance never stops, the log catches up with no gap or repeat, and a
// token's proof from the API verifies against the checkpoint we signed.
func TestTsadOnTrillian(t *testing.T) {
	tr := trilliantest.Start(t)
	data := t.TempDir()
	srv := startServer(t, data, "--log", "trillian", "--trillian-addr", tr.Addr, "--trillian-tree", fmt.Sprint(tr.TreeID),
		"--log-segment-events", "512", "--log-tick", "100ms")
	if !strings.Contains(srv.output(), "transparency log: trillian") {
		t.Fatalf("tsad does not say it logs to Trillian:\n%s", srv.output())
	}
	base := strings.TrimSuffix(srv.url, "/tsa")

	stop := make(chan struct{})
	var got []granted
	done := make(chan struct{})
	go func() { got = load(t, srv.url, 8, stop); close(done) }()
	time.Sleep(700 * time.Millisecond)
	tr.Stop() // the log goes down; issuance must not
	time.Sleep(700 * time.Millisecond)
	if h := get(t, base+"/healthz"); !strings.Contains(h, "log: down") {
		t.Errorf("healthz while Trillian is down:\n%s", h)
	}
	tr.Restart(t)
	time.Sleep(700 * time.Millisecond)
	close(stop)
	<-done
	if len(got) < 50 {
		t.Fatalf("only %d tokens under load", len(got))
	}

	// Wait for the log to catch up, then prove the last token.
	last := got[len(got)-1]
	var proof logwire.Proof
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(base + "/log/v1/proof/" + last.serial)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode == http.StatusOK {
			json.NewDecoder(res.Body).Decode(&proof)
			res.Body.Close()
			break
		}
		res.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("token %s not proven 20 s after the load: HTTP %d\n%s", last.serial, res.StatusCode, get(t, base+"/healthz"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	verifier, err := logkey.LoadVerifier(filepath.Join(data, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	ep, err := proof.EventProof()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Verify(verifier); err != nil {
		t.Fatalf("the token's proof does not verify: %v", err)
	}
	if h := get(t, base+"/healthz"); !strings.Contains(h, "log: up") {
		t.Errorf("healthz after recovery:\n%s", h)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}

	signer, err := logkey.Load(filepath.Join(data, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := trillian.New(context.Background(), trillian.Config{Addr: tr.Addr, TreeID: tr.TreeID, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	covered, at := checkLog(t, data, l)
	for _, g := range got {
		if at[g.serial] > covered {
			t.Fatalf("token %s at %d is not in the log (covered up to %d)", g.serial, at[g.serial], covered)
		}
	}
	t.Logf("%d tokens through a Trillian outage; the log covers positions 1–%d", len(got), covered)
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}
