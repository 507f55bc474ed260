package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/events"
)

// granted is a token a client received.
type granted struct {
	serial string
	token  []byte
}

// load sends valid requests from workers until stop is closed and returns
// every token granted.
func load(t *testing.T, url string, workers int, stop <-chan struct{}) []granted {
	var mu sync.Mutex
	var out []granted
	var wg sync.WaitGroup
	var seq atomic.Uint64
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				q := sha256Query(fmt.Sprintf("load %d", seq.Add(1)))
				nonce := make([]byte, 9)
				nonce[0] = 0x01 // keeps the INTEGER minimal and positive
				binary.BigEndian.PutUint64(nonce[1:], seq.Add(1))
				q.Nonce = rawInteger(nonce)
				der, err := marshalQuiet(q)
				if err != nil {
					return
				}
				res, err := client.Post(url, "application/timestamp-query", bytes.NewReader(der))
				if err != nil {
					continue // the server is gone or going
				}
				var buf bytes.Buffer
				_, err = buf.ReadFrom(res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != 200 {
					continue
				}
				r, err := tryParseResp(buf.Bytes())
				if err != nil {
					t.Error(err)
					return
				}
				if r.Status.Status != 0 {
					continue
				}
				info, err := tryTSTInfo(r)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				out = append(out, granted{serial: info.SerialNumber.Text(16), token: r.Token.FullBytes})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// TestKill9UnderLoad kills the server with SIGKILL while clients are being
// answered. After a restart, every token a client received as granted is in
// the store exactly as sent, no serial repeats, and the transparency log
// took up where it stopped.
func TestKill9UnderLoad(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)
	stop := make(chan struct{})
	var before []granted
	done := make(chan struct{})
	go func() { before = load(t, srv.url, 16, stop); close(done) }()
	time.Sleep(1500 * time.Millisecond)
	srv.kill()
	close(stop)
	<-done
	if len(before) < 50 {
		t.Fatalf("only %d tokens before the kill: the load did not run", len(before))
	}

	again := startServer(t, data)
	stop2 := make(chan struct{})
	time.AfterFunc(300*time.Millisecond, func() { close(stop2) })
	after := load(t, again.url, 4, stop2)
	if err := again.stop(t); err != nil {
		t.Fatalf("restarted tsad did not stop cleanly: %v", err)
	}

	streams := readStore(t, data)
	issued := map[string][]byte{}
	for _, evs := range streams {
		for _, e := range evs {
			if is, ok := e.(*events.TimestampIssued); ok {
				if _, dup := issued[is.Serial]; dup {
					t.Fatalf("serial %s issued twice", is.Serial)
				}
				issued[is.Serial] = is.Token
			}
		}
	}
	seen := map[string]bool{}
	for _, g := range append(before, after...) {
		if seen[g.serial] {
			t.Fatalf("serial %s received twice", g.serial)
		}
		seen[g.serial] = true
		tok, ok := issued[g.serial]
		if !ok {
			t.Fatalf("token %s was received as granted but is not in the store", g.serial)
		}
		if !bytes.Equal(tok, g.token) {
			t.Fatalf("token %s in the store differs from the one sent", g.serial)
		}
	}
	// The log resumed where it stopped: no gap, no repeat, and every token
	// granted before the kill is in it.
	covered, at := checkTesseraLog(t, data)
	for _, g := range before {
		if at[g.serial] > covered {
			t.Fatalf("token %s (position %d) granted before the kill is not in the log (covered up to %d)", g.serial, at[g.serial], covered)
		}
	}
	t.Logf("%d tokens before kill -9, %d after restart, all recorded; %d issued events in the store; the log covers positions 1–%d",
		len(before), len(after), len(issued), covered)
}

// TestGracefulShutdown sends SIGTERM under load: the server exits 0 after
// the requests in flight finish, and the store holds every granted token.
func TestGracefulShutdown(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)
	stop := make(chan struct{})
	var got []granted
	done := make(chan struct{})
	go func() { got = load(t, srv.url, 8, stop); close(done) }()
	time.Sleep(700 * time.Millisecond)
	if err := srv.stop(t); err != nil {
		t.Fatalf("tsad exited with %v after SIGTERM\n%s", err, srv.output())
	}
	close(stop)
	<-done
	if !strings.Contains(srv.output(), "stopped cleanly") {
		t.Fatalf("no clean stop reported:\n%s", srv.output())
	}
	streams := readStore(t, data)
	recorded := map[string]bool{}
	for _, evs := range streams {
		if is, ok := evs[len(evs)-1].(*events.TimestampIssued); ok {
			recorded[is.Serial] = true
		}
	}
	for _, g := range got {
		if !recorded[g.serial] {
			t.Fatalf("granted token %s not in the store after shutdown", g.serial)
		}
	}
	if len(got) == 0 {
		t.Fatal("no token granted before shutdown")
	}
}
