package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/chronolog/chronolog/adapters/logclient"
	"github.com/chronolog/chronolog/adapters/translog/translogtest"
	"github.com/chronolog/chronolog/domain/logwire"
	"github.com/chronolog/chronolog/domain/merkle"
	"github.com/chronolog/chronolog/domain/translog"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		pos     []string
		url     string
		wantErr bool
	}{
		{args: []string{"a.tsr", "--url", "u"}, pos: []string{"a.tsr"}, url: "u"},
		{args: []string{"--url", "u", "a.tsr"}, pos: []string{"a.tsr"}, url: "u"},
		{args: []string{"a.tsr", "--url", "u", "b.tsr"}, pos: []string{"a.tsr", "b.tsr"}, url: "u"},
		{args: []string{"--url", "u"}, url: "u"},
		{args: []string{"a.tsr", "--bogus"}, wantErr: true},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		url := fs.String("url", "", "")
		pos, err := parseInterspersed(fs, tt.args)
		if (err != nil) != tt.wantErr || err == nil && (!slices.Equal(pos, tt.pos) || *url != tt.url) {
			t.Errorf("%q: positional %q, url %q, err %v", tt.args, pos, *url, err)
		}
	}
}

// scriptedLog serves /log/v1/checkpoint and /log/v1/consistency from a
// tree of leaves, its checkpoint signed by whichever key the test says.
type scriptedLog struct {
	leaves [][]byte
	signer note.Signer
	down   bool
}

func (l *scriptedLog) hashes(n uint64) []merkle.Hash {
	hs := make([]merkle.Hash, n)
	for i := range hs {
		hs[i] = merkle.LeafHash(l.leaves[i])
	}
	return hs
}

func (l *scriptedLog) checkpoint(t *testing.T, size uint64, signer note.Signer) []byte {
	t.Helper()
	b, err := translog.SignCheckpoint(translog.Checkpoint{Origin: signer.Name(), Size: size, Root: merkle.Root(l.hashes(size))}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (l *scriptedLog) serve(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /log/v1/checkpoint", func(w http.ResponseWriter, _ *http.Request) {
		if l.down {
			http.Error(w, `{"error":"down"}`, http.StatusServiceUnavailable)
			return
		}
		w.Write(l.checkpoint(t, uint64(len(l.leaves)), l.signer))
	})
	mux.HandleFunc("GET /log/v1/consistency", func(w http.ResponseWriter, r *http.Request) {
		var from, to uint64
		fmt.Sscan(r.URL.Query().Get("from"), &from)
		fmt.Sscan(r.URL.Query().Get("to"), &to)
		p, err := merkle.ConsistencyProof(from, l.hashes(to))
		if err != nil {
			http.Error(w, `{"error":"bad range"}`, http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"from":%d,"to":%d,"proof":["%s"]}`, from, to, strings.Join(logwire.EncodeHashes(p), `","`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestMonitorRound holds each round's verdict to what it must be: which
// errors stop the monitor with which code, and when the state moves.
func TestMonitorRound(t *testing.T) {
	const origin = "monitor.example.org/log"
	signer, verifier := translogtest.Keys(t, origin)
	stranger, _ := translogtest.Keys(t, origin)
	leaves := func(n int) [][]byte {
		var out [][]byte
		for i := range n {
			out = append(out, fmt.Appendf(nil, "leaf %d", i))
		}
		return out
	}
	forked := leaves(6)
	forked[2] = []byte("another leaf 2")
	tests := []struct {
		name      string
		state     func(l *scriptedLog) []byte // nil: no state file
		serve     *scriptedLog
		code      int // 0: the round succeeds; -1: a plain error, the monitor retries
		wantOut   string
		stateMove bool
	}{
		{
			name:    "first use trusts a verified checkpoint",
			serve:   &scriptedLog{leaves: leaves(4), signer: signer},
			wantOut: "size 4 root", stateMove: true,
		},
		{
			name:    "growth with a valid proof",
			state:   func(l *scriptedLog) []byte { return l.checkpoint(t, 3, signer) },
			serve:   &scriptedLog{leaves: leaves(6), signer: signer},
			wantOut: "consistent with size 3, trusted", stateMove: true,
		},
		{
			name:    "growth from an empty log",
			state:   func(l *scriptedLog) []byte { return l.checkpoint(t, 0, signer) },
			serve:   &scriptedLog{leaves: leaves(2), signer: signer},
			wantOut: "consistent with size 0, trusted", stateMove: true,
		},
		{
			name:    "no change",
			state:   func(l *scriptedLog) []byte { return l.checkpoint(t, 6, signer) },
			serve:   &scriptedLog{leaves: leaves(6), signer: signer},
			wantOut: "size 6 root",
		},
		{
			name:    "growth that rewrote an old leaf is a fork",
			state:   func(*scriptedLog) []byte { return (&scriptedLog{leaves: leaves(4)}).checkpoint(t, 4, signer) },
			serve:   &scriptedLog{leaves: forked, signer: signer},
			code:    exitForkOrRollback,
			wantOut: "FORK DETECTED",
		},
		{
			name:    "same size, another root is a fork",
			state:   func(*scriptedLog) []byte { return (&scriptedLog{leaves: leaves(6)}).checkpoint(t, 6, signer) },
			serve:   &scriptedLog{leaves: forked, signer: signer},
			code:    exitForkOrRollback,
			wantOut: "FORK DETECTED",
		},
		{
			name:    "a smaller log is a rollback",
			state:   func(*scriptedLog) []byte { return (&scriptedLog{leaves: leaves(6)}).checkpoint(t, 6, signer) },
			serve:   &scriptedLog{leaves: leaves(5), signer: signer},
			code:    exitForkOrRollback,
			wantOut: "ROLLBACK DETECTED",
		},
		{
			name:    "a served checkpoint signed by another key",
			state:   func(l *scriptedLog) []byte { return l.checkpoint(t, 3, signer) },
			serve:   &scriptedLog{leaves: leaves(6), signer: stranger},
			code:    1,
			wantOut: "CHECKPOINT DOES NOT VERIFY",
		},
		{
			name:    "a state signed by another key",
			state:   func(l *scriptedLog) []byte { return l.checkpoint(t, 3, stranger) },
			serve:   &scriptedLog{leaves: leaves(6), signer: signer},
			code:    1,
			wantOut: "STATE DOES NOT VERIFY",
		},
		{
			name:  "a server that is down is no evidence",
			state: func(l *scriptedLog) []byte { return l.checkpoint(t, 3, signer) },
			serve: &scriptedLog{leaves: leaves(6), signer: signer, down: true},
			code:  -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.serve.serve(t)
			state := filepath.Join(t.TempDir(), "state.note")
			var before []byte
			if tt.state != nil {
				before = tt.state(tt.serve)
				if err := os.WriteFile(state, before, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			m := &monitor{client: logclient.New(srv.URL, srv.Client()), log: verifier, state: state, url: srv.URL, out: &out, alarms: &out}
			err := m.round(context.Background())
			var ee *exitError
			switch {
			case tt.code == 0 && err != nil:
				t.Fatalf("round: %v\n%s", err, out.String())
			case tt.code == -1 && (err == nil || errors.As(err, &ee)):
				t.Fatalf("round err = %v, want a plain error to retry on", err)
			case tt.code > 0 && (!errors.As(err, &ee) || ee.code != tt.code):
				t.Fatalf("round err = %v, want exit code %d\n%s", err, tt.code, out.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out.String())
			}
			after, _ := os.ReadFile(state)
			served := tt.serve.checkpoint(t, uint64(len(tt.serve.leaves)), tt.serve.signer)
			if moved := !bytes.Equal(after, before); moved != tt.stateMove || moved && !bytes.Equal(after, served) {
				t.Errorf("state moved %v, want %v:\n%s", moved, tt.stateMove, after)
			}
			if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(state), ".*tmp*")); len(tmp) != 0 {
				t.Errorf("temporary files left: %q", tmp)
			}
		})
	}
}
