package main

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/chronolog/chronolog/domain/bundle"
)

func TestExportTimes(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-03-01":                     time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		"2026-03-01T12:00:00+02:00":      time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		"2026-03-01T10:00:00.000000001Z": time.Date(2026, 3, 1, 10, 0, 0, 1, time.UTC),
	} {
		got, err := parseExportTime(in)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	if _, err := parseExportTime("March 1st"); err == nil {
		t.Error("a time in words: accepted")
	}
}

// TestPrintBundleReport holds export verify's output to its layout: one
// line per check, its problems under it (the first 50), the verdict last.
func TestPrintBundleReport(t *testing.T) {
	many := make([]string, 52)
	for i := range many {
		many[i] = fmt.Sprintf("tokens/%x.tsr: does not verify", i+1)
	}
	cases := []struct {
		name string
		r    bundle.Report
		want string
	}{
		{"a bundle that verifies", bundle.Report{Checks: []bundle.Check{
			{Name: "manifest", Summary: "3 files listed"},
			{Name: "bookkeeping", Summary: "none after the range's last other event"},
		}}, "manifest:     3 files listed: OK\nbookkeeping:  none after the range's last other event: OK\nverify:       OK\n"},
		{"problems, some not listed", bundle.Report{Problems: 53, Checks: []bundle.Check{
			{Name: "manifest.tsr", Status: bundle.Failed, Failures: 1, Problems: []string{"manifest.tsr: not granted"}},
			{Name: "tokens", Status: bundle.Failed, Failures: 52, Problems: many},
			{Name: "bookkeeping", Status: bundle.NotChecked, Summary: "without log/checkpoint"},
		}}, "manifest.tsr: FAILED, 1 problem\n  - manifest.tsr: not granted\ntokens:       FAILED, 52 problems\n  - tokens/1.tsr: does not verify\n" +
			"  - tokens/2.tsr: does not verify\n"},
		{"an unreadable manifest", bundle.Report{Problems: 1, Stopped: "the manifest is unreadable: nothing else checked", Checks: []bundle.Check{
			{Name: "manifest", Status: bundle.Failed, Failures: 1, Problems: []string{"open manifest.json: file does not exist"}},
		}}, "manifest:     FAILED, 1 problem\n  - open manifest.json: file does not exist\n" +
			"verify:       FAILED, 1 problem (the manifest is unreadable: nothing else checked)\n"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		printBundleReport(&out, &c.r)
		got := out.String()
		if c.name == "problems, some not listed" {
			tail := "  - tokens/32.tsr: does not verify\n  … and 2 more\nbookkeeping:  not checked, without log/checkpoint\nverify:       FAILED, 53 problems\n"
			if !bytes.HasPrefix(out.Bytes(), []byte(c.want)) || !bytes.HasSuffix(out.Bytes(), []byte(tail)) || bytes.Count(out.Bytes(), []byte("\n  - ")) != 51 {
				t.Errorf("%s:\n%s", c.name, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.name, got, c.want)
		}
	}
}
