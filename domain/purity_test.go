// Package domain_test enforces that the domain stays pure: it imports only
// the standard library, x/crypto and itself, and never the packages that
// reach the machine's clock, network, files or processes.
package domain_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var forbidden = map[string]string{
	"os":           "files and environment belong in adapters",
	"os/exec":      "processes belong in adapters",
	"net":          "the network belongs in adapters",
	"net/http":     "the network belongs in adapters",
	"crypto/rand":  "randomness is handed in as an io.Reader",
	"math/rand":    "randomness is handed in as an io.Reader",
	"database/sql": "storage belongs in adapters",
	"log":          "logging is a port",
	"log/slog":     "logging is a port",
}

// allowedModule: x/crypto, and x/mod's signed notes, the C2SP checkpoint
// signature format (pure formatting and Ed25519, no I/O).
func allowedModule(p string) bool {
	return strings.HasPrefix(p, "golang.org/x/crypto/") ||
		p == "golang.org/x/mod/sumdb/note" ||
		strings.HasPrefix(p, "github.com/chronolog/chronolog/domain/")
}

func TestDomainImportsOnlyPurePackages(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if why, bad := forbidden[p]; bad {
				t.Errorf("%s imports %s: %s", path, p, why)
			}
			if strings.Contains(strings.SplitN(p, "/", 2)[0], ".") && !allowedModule(p) {
				t.Errorf("%s imports %s: the domain depends only on the standard library, x/crypto and x/mod's signed notes", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMachineClockIsNotRead(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, call := range []string{"time.Now(", "time.Since(", "time.Until(", "time.Sleep(", "time.After(", "time.NewTimer(", "time.Tick("} {
			if strings.Contains(string(src), call) {
				t.Errorf("%s calls %s…): the domain is handed its time", path, call)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
