package e2e

import (
	"database/sql"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAuditCatchesTamperingWithTheStore tampers with a stopped server's
// event store behind its back, as an insider with file access would, and
// has tsactl log audit find each change and name the segment it is in:
// one stored record with one byte changed, and one append dropped.
func TestAuditCatchesTamperingWithTheStore(t *testing.T) {
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, position int64)
		want   *regexp.Regexp
	}{
		{
			name: "one byte of one stored event",
			tamper: func(t *testing.T, db *sql.DB, position int64) {
				var rec []byte
				if err := db.QueryRow("SELECT record FROM appends WHERE last_position = ?", position).Scan(&rec); err != nil {
					t.Fatal(err)
				}
				rec[len(rec)/2] ^= 0x01
				execOne(t, db, "UPDATE appends SET record = ? WHERE last_position = ?", rec, position)
			},
			want: regexp.MustCompile(`segment \d+`),
		},
		{
			name: "an event dropped",
			tamper: func(t *testing.T, db *sql.DB, position int64) {
				execOne(t, db, "DELETE FROM appends WHERE last_position = ?", position)
			},
			want: regexp.MustCompile(`segment \d+.*(events served|event|position)`),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			srv := startServer(t, data, "--log-tick", "50ms")
			base := strings.TrimSuffix(srv.url, "/tsa")
			pub := filepath.Join(data, "log.pub")
			replies, serials := issueTokens(t, srv, t.TempDir(), "tamper", 6)
			for _, r := range replies {
				logOK(t, "log", "verify", "--url", base, "--log-key", pub, "--wait", "10s", r)
			}
			logOK(t, "log", "audit", "--url", base, "--log-key", pub)
			if err := srv.stop(t); err != nil {
				t.Fatal(err)
			}

			// The third token's TimestampIssued is the last event of its append.
			_, at := checkTesseraLog(t, data)
			position := at[serials[2]]
			db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "events.db"))
			if err != nil {
				t.Fatal(err)
			}
			c.tamper(t, db, int64(position))
			db.Close()

			again := startServer(t, data)
			out, code := logRun(t, "log", "audit", "--url", strings.TrimSuffix(again.url, "/tsa"), "--log-key", pub)
			if code == 0 {
				t.Fatalf("the audit passed a tampered store:\n%s", out)
			}
			if !c.want.MatchString(out) {
				t.Fatalf("the audit does not name where (want %s):\n%s", c.want, out)
			}
			t.Logf("audit output:\n%s", lastLines(out, 6))
			again.stop(t)
		})
	}
}

func execOne(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s changed %d rows", q, n)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
