package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/rfc3161"
)

// apiGet calls the query API with a bearer token ("" for none).
func apiGet(t *testing.T, url, token string) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), b
}

func digestLine(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// projectionStatus is a read model's state as /api/v1/projections gives it.
type projectionStatus struct {
	Name             string
	Checkpoint, Head uint64
	Failed           string
}

// waitProjections waits until every live read model is caught up by
// caught's judgement, failing on one that stopped.
func waitProjections(t *testing.T, api, token string, limit time.Duration, caught func(projectionStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		status, _, body := apiGet(t, api+"/projections", token)
		var st struct{ Projections []projectionStatus }
		if status != 200 || json.Unmarshal(body, &st) != nil || len(st.Projections) != 4 {
			t.Fatalf("projections: %d %s", status, body)
		}
		all := true
		for _, p := range st.Projections {
			if p.Failed != "" {
				t.Fatalf("projection %s failed: %s", p.Name, p.Failed)
			}
			all = all && caught(p)
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projections did not catch up in %s: %s", limit, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestQueryAPIAndReplay issues tokens, reads them back through the read
// side (archive, billing, renewal-due, projections' lag) under the roles
// that may see them, then rebuilds every read model from the record with
// tsactl replay and checks it against the live ones.
func TestQueryAPIAndReplay(t *testing.T) {
	const auditor, biller, operator = "chl_e2e-auditor", "chl_e2e-billing", "chl_e2e-operator"
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "tsad.yaml")
	cfg := fmt.Sprintf(`server:
  api:
    tokens:
      - {name: audit, sha256: %q, roles: [auditor]}
      - {name: money, sha256: %q, roles: [billing]}
      - {name: ops, sha256: %q, roles: [operator]}
services:
  - name: default
    paths: [/tsa]
    policy: 1.3.6.1.4.1.32473.3161.1
`, digestLine(auditor), digestLine(biller), digestLine(operator))
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	srv := startServer(t, data, "--config", cfgFile, "--log", "off")
	api := srv.base + "/api/v1"

	tokens := map[string][]byte{}
	var firstImprint string
	for range 5 {
		r := ask(t, srv.url)
		info, err := rfc3161.TokenTSTInfo(r.Token)
		if err != nil {
			t.Fatal(err)
		}
		serial := info.SerialNumber.Text(16)
		tokens[serial] = r.Token
		if firstImprint == "" {
			mi, err := rfc3161.ParseMessageImprint(info.MessageImprint)
			if err != nil {
				t.Fatal(err)
			}
			firstImprint = serial + " sha256:" + hex.EncodeToString(mi.HashedMessage)
		}
	}
	if status, _, _ := post(t, srv.url, "application/timestamp-query", []byte("not a request")); status != 200 {
		t.Fatalf("garbage: HTTP %d", status)
	}

	// The read side catches up within a second.
	waitProjections(t, api, operator, 5*time.Second, func(p projectionStatus) bool { return p.Checkpoint == p.Head && p.Head > 0 })

	// 401 without a token, 403 without the role.
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/tokens", "", 401}, {"/tokens", "chl_unknown", 401}, {"/tokens", biller, 403}, {"/billing", auditor, 403},
		{"/projections", auditor, 403}, {"/tokens", auditor, 200}, {"/billing", biller, 200}, {"/renewal-due", operator, 200},
	} {
		if status, _, body := apiGet(t, api+c.path, c.token); status != c.want {
			t.Errorf("GET %s with %q: %d, want %d: %s", c.path, c.token, status, c.want, body)
		}
	}

	// A token by its serial, byte for byte what the client got.
	for serial, tok := range tokens {
		status, ct, body := apiGet(t, api+"/tokens/"+serial, auditor)
		if status != 200 || ct != "application/timestamp-reply" {
			t.Fatalf("token %s: %d %s %s", serial, status, ct, body)
		}
		resp, err := rfc3161.ParseTimeStampResp(body)
		if err != nil || string(resp.Token) != string(tok) {
			t.Fatalf("token %s from the archive differs from the one issued (%v)", serial, err)
		}
	}
	if status, _, _ := apiGet(t, api+"/tokens/abc123", auditor); status != 404 {
		t.Fatalf("unknown serial: %d", status)
	}
	serial, imprint, _ := strings.Cut(firstImprint, " ")
	if _, _, body := apiGet(t, api+"/tokens?imprint="+imprint, auditor); !strings.Contains(string(body), `"serial":"`+serial+`"`) {
		t.Fatalf("search by imprint %s: %s", imprint, body)
	}
	day := time.Now().UTC().Format(time.DateOnly)
	_, _, body := apiGet(t, api+"/billing?from="+day+"&to="+day, biller)
	if !strings.Contains(string(body), `"service":"default"`) || !strings.Contains(string(body), `"issued":5`) || !strings.Contains(string(body), `"rejected":1`) {
		t.Fatalf("billing: %s", body)
	}
	if _, ct, body := apiGet(t, api+"/billing?format=csv", biller); !strings.HasPrefix(ct, "text/csv") || strings.Count(string(body), "\n") != 2 {
		t.Fatalf("billing CSV (%s):\n%s", ct, body)
	}
	if _, _, body := apiGet(t, api+"/renewal-due/count?by=signatureAlgorithm", auditor); !strings.Contains(string(body), `"key":"ecdsa-p256"`) || !strings.Contains(string(body), `"count":5`) {
		t.Fatalf("renewal-due by signature algorithm: %s", body)
	}
	if _, _, body := apiGet(t, srv.base+"/metrics", ""); !strings.Contains(string(body), `chronolog_projection_lag_events{projection="archive"} 0`) ||
		!strings.Contains(string(body), `chronolog_projection_failed{projection="renewal-due"} 0`) {
		t.Fatalf("metrics lack the projections:\n%s", body)
	}
	// Against the running server too, while it keeps issuing.
	tsactl := filepath.Join(binDir, "tsactl")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			// Not post: a goroutine may not end the test.
			if res, err := http.Post(srv.url, "application/timestamp-query", strings.NewReader("keep the live read models moving")); err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}
	}()
	out := run(t, tsactl, "replay", "--data", data, "--verify", "--quiet")
	<-done
	if !strings.Contains(out, "verified:   OK") {
		t.Fatalf("replay --verify against a running server:\n%s", out)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}

	// Replay rebuilds every read model and finds it equal to the live one,
	// each token re-checked.
	out = run(t, tsactl, "replay", "--data", data, "--verify", "--quiet")
	for _, want := range []string{"tokens:     5 checked (signature, imprint, serial), 0 problems", "read model: archive", "equal to the live one", "verified:   OK"} {
		if !strings.Contains(out, want) {
			t.Fatalf("replay --verify lacks %q:\n%s", want, out)
		}
	}
	out = run(t, tsactl, "replay", "--data", data, "--until", "3", "--projections", "archive,billing", "--quiet")
	if !strings.Contains(out, "up to position 3") {
		t.Fatalf("replay --until 3:\n%s", out)
	}
}
