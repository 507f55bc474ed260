package bundle

import "fmt"

// Status is a check's outcome.
type Status int

const (
	// OK: the check established what its Summary says.
	OK Status = iota
	// Failed: the check found problems; the bundle does not verify.
	Failed
	// NotChecked: the check could not run, for the reason its Summary
	// gives; another check's problem says why.
	NotChecked
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Failed:
		return "FAILED"
	case NotChecked:
		return "not checked"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MaxProblems bounds the problems a check lists: a bundle verified against
// the wrong CA fails at every token. The counts stay exact.
const MaxProblems = 1000

// Check is one of the verification's checks, in the order they run:
// manifest, manifest.tsr, events.jsonl, streams, tokens, log, bookkeeping.
type Check struct {
	Name   string
	Status Status
	// Summary is what the check established when OK (it is worded as a
	// claim of that), or why it did not run when NotChecked.
	Summary string
	// Failures counts the problems found; Problems lists the first
	// MaxProblems, each naming its file and where in it.
	Failures int
	Problems []string
}

// Counts are what the bundle holds, as the checks found it.
type Counts struct {
	// Files is how many the manifest lists.
	Files int
	// Events is how many lines events.jsonl holds, Issued how many
	// TimestampIssued among them; Clock, Keys and Config the lines of
	// clock.jsonl, keys.jsonl and config.jsonl.
	Events, Issued, Clock, Keys, Config int
	// RFC3161 and Authenticode are the token files checked, by kind.
	RFC3161, Authenticode int
	// Proofs is how many inclusion proofs verified, ViaConsistency how
	// many of those through a consistency proof from an older checkpoint.
	Proofs, ViaConsistency int
	// TailSegments and TailCheckpoints are the trailing bookkeeping's
	// seals and checkpoints.
	TailSegments, TailCheckpoints int
}

// Report is what the verification found. The bundle verifies when no
// check failed.
type Report struct {
	Checks []Check
	// Problems counts every check's problems.
	Problems int
	// Stopped, when set, says why the checks after the last one did not
	// run.
	Stopped string
	Counts  Counts
}

// OK says whether the bundle verifies.
func (r *Report) OK() bool { return r.Problems == 0 && r.Stopped == "" }

// Check returns the check of that name, and whether it ran or was listed.
func (r *Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

func (r *Report) add(name, summary string, problems []string) {
	c := Check{Name: name, Summary: summary, Failures: len(problems)}
	if len(problems) > 0 {
		c.Status = Failed
		c.Problems = problems[:min(len(problems), MaxProblems)]
		r.Problems += len(problems)
	}
	r.Checks = append(r.Checks, c)
}

func (r *Report) notChecked(name, why string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: NotChecked, Summary: why})
}
