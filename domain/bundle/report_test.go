package bundle

import (
	"crypto/x509"
	"fmt"
	"testing"
	"testing/fstest"
)

func TestReportCountsEveryProblemAndListsTheFirst(t *testing.T) {
	var r Report
	r.add("manifest", "3 files listed", nil)
	many := make([]string, MaxProblems+5)
	for i := range many {
		many[i] = fmt.Sprintf("tokens/%x.tsr: does not verify", i+1)
	}
	r.add("tokens", "", many)
	r.notChecked("bookkeeping", "without log/checkpoint")
	if r.OK() || r.Problems != MaxProblems+5 {
		t.Fatalf("OK %v, %d problems", r.OK(), r.Problems)
	}
	c, _ := r.Check("tokens")
	if c.Status != Failed || c.Failures != MaxProblems+5 || len(c.Problems) != MaxProblems || c.Problems[0] != "tokens/1.tsr: does not verify" {
		t.Errorf("tokens: %s, %d failures, %d listed", c.Status, c.Failures, len(c.Problems))
	}
	if c, _ := r.Check("manifest"); c.Status != OK || c.Summary != "3 files listed" {
		t.Errorf("manifest: %+v", c)
	}
	if c, _ := r.Check("bookkeeping"); c.Status != NotChecked || c.Status.String() != "not checked" {
		t.Errorf("bookkeeping: %+v", c)
	}
	if _, ok := r.Check("log"); ok {
		t.Error("a check that did not run is found")
	}
}

func TestVerifyNeedsTheRelyingPartysAnchors(t *testing.T) {
	l := newMiniLog(t)
	ok := func([]byte) error { return nil }
	for name, o := range map[string]Options{
		"no roots":   {Log: l.verifier, ValidateEvent: ok},
		"no log key": {Roots: x509.NewCertPool(), ValidateEvent: ok},
		"no schemas": {Roots: x509.NewCertPool(), Log: l.verifier},
	} {
		if _, err := Verify(fstest.MapFS{}, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A directory without a manifest: that one problem, nothing else
	// checked.
	r, err := Verify(fstest.MapFS{}, Options{Roots: x509.NewCertPool(), Log: l.verifier, ValidateEvent: ok})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.Problems != 1 || len(r.Checks) != 1 || r.Stopped == "" {
		t.Errorf("an empty bundle: %+v", r)
	}
}
