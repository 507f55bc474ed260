package e2e

import (
	"encoding/csv"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCalibrate runs tsactl calibrate against a real tsad dev: every query
// granted, a CSV row per query with its times in order, a PNG that
// decodes, and a report with the statistics and the accuracy check. A
// hash the server refuses makes every query fail, and the run with it.
func TestCalibrate(t *testing.T) {
	srv := startServer(t, t.TempDir(), append(verifiedClock(t), "--hashes", "sha256,sha512")...)
	tsactl := filepath.Join(binDir, "tsactl")
	work := t.TempDir()
	csvFile, pngFile := filepath.Join(work, "cal.csv"), filepath.Join(work, "cal.png")

	out := run(t, tsactl, "calibrate", srv.url, "--n", "40", "--csv", csvFile, "--png", pngFile)
	if !strings.Contains(out, "queries:    40 sent, 40 granted, 0 failed") {
		t.Errorf("report does not count 40 granted queries:\n%s", out)
	}
	for _, name := range []string{"Ts - Tq", "Tr - Tq", "Tr - Ts"} {
		re := regexp.MustCompile(`(?m)^` + name + `:\s+mean\s+-?\d+\.\d{3}\s+sd\s+\d+\.\d{3}\s+min\s+-?\d+\.\d{3}\s+max\s+-?\d+\.\d{3}\s+median\s+-?\d+\.\d{3}\s+ms$`)
		if !re.MatchString(out) {
			t.Errorf("report lacks the %s statistics line:\n%s", name, out)
		}
	}
	// tsad runs on this machine's clock, verified by an NTP source: every
	// token declares 1 s, and every genTime lies within it of the exchange.
	if !strings.Contains(out, "accuracy:   1s declared in every token") {
		t.Errorf("report does not show the declared accuracy:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^check:\s+yes, .*: 0 of 40 outside$`).MatchString(out) {
		t.Errorf("report lacks the accuracy check, or it failed against a server on the same clock:\n%s", out)
	}

	f, err := os.Open(csvFile)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 41 || strings.Join(rows[0], ",") != "index,tq,tr,ts,ts_minus_tq_ms,tr_minus_tq_ms,status,serial,error" {
		t.Fatalf("CSV has %d rows (want a header and 40), header %q", len(rows), rows[0])
	}
	serials := map[string]bool{}
	var prevTr time.Time
	for _, r := range rows[1:] {
		var ts [3]time.Time
		for i := range ts {
			if ts[i], err = time.Parse(time.RFC3339Nano, r[1+i]); err != nil {
				t.Fatalf("row %s: %v", r[0], err)
			}
		}
		tq, tr, gen := ts[0], ts[1], ts[2]
		if tr.Before(tq) || tq.Before(prevTr) {
			t.Errorf("row %s: Tq %s, Tr %s, previous Tr %s: out of order", r[0], tq, tr, prevTr)
		}
		if gen.Before(tq) || gen.After(tr) {
			t.Errorf("row %s: genTime %s not in [Tq, Tr] = [%s, %s] on one machine", r[0], gen, tq, tr)
		}
		if r[6] != "granted" || r[7] == "" || r[8] != "" {
			t.Errorf("row %s: status %q serial %q error %q", r[0], r[6], r[7], r[8])
		}
		serials[r[7]] = true
		prevTr = tr
	}
	if len(serials) != 40 {
		t.Errorf("%d distinct serials in 40 tokens", len(serials))
	}

	f, err = os.Open(pngFile)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("%s: %v", pngFile, err)
	}
	if sz := img.Bounds().Size(); sz.X < 600 || sz.X > 2000 || sz.Y < 300 || sz.Y > 1000 || sz.X != 2*sz.Y {
		t.Errorf("plot is %v pixels, want about 8x4 in", sz)
	}

	// Every query refused: counted, reported, and the run fails.
	res, err := execOutput(tsactl, "calibrate", "--n", "3", "--hash", "sha384", srv.url)
	if err == nil {
		t.Fatalf("calibrate with every query rejected succeeded:\n%s", res)
	}
	if !strings.Contains(res, "3 sent, 0 granted, 3 failed") || !strings.Contains(res, "badAlg") {
		t.Errorf("calibrate with every query rejected:\n%s", res)
	}
}
