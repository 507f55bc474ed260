package logclient_test

import (
	"os/exec"
	"strings"
	"testing"
)

// An auditor's client links nothing of the server: not its store, not its
// read side, not its HTTP handlers.
func TestLinksNothingOfTheServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/mattn/go-sqlite3", "github.com/ThreeDotsLabs/watermill",
			"github.com/chronolog/chronolog/projections", "github.com/chronolog/chronolog/adapters/httpapi",
			"github.com/chronolog/chronolog/domain/tsa"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("logclient links %s", dep)
			}
		}
	}
}
