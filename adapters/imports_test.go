// Package adapters_test holds the adapters to their layer: each imports the
// standard library, the domain, the read side (whose ports a read store
// keeps and whose read models an API serves) and the system it wraps,
// never another adapter nor cmd.
package adapters_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/chronolog/chronolog/"

// systems are the modules each adapter wraps (or leans on), by its folder;
// a folder's entry covers the folders below it.
var systems = map[string][]string{
	"clock/kernel":              {"golang.org/x/sys/"},
	"clock/ntp":                 {"github.com/beevik/ntp"},
	"config":                    {"gopkg.in/yaml.v3"},
	"eventstore/sqlite":         {"github.com/mattn/go-sqlite3", "github.com/klauspost/compress/", "github.com/google/uuid"},
	"eventstore/eventstoretest": {"github.com/google/uuid"},
	"ids":                       {"github.com/google/uuid"},
	"readstore/sqlite":          {"github.com/mattn/go-sqlite3"},
	"signer/pkcs11":             {"github.com/miekg/pkcs11"},
	"translog/tessera":          {"github.com/transparency-dev/tessera"},
	"translog/trillian":         {"github.com/google/trillian", "google.golang.org/grpc", "google.golang.org/protobuf/"},
}

// shared are the modules any adapter may use, as the domain does: pure
// formats and cryptography.
var shared = []string{"golang.org/x/crypto/", "golang.org/x/mod/sumdb/note"}

func allowed(dir, p string) bool {
	has := func(prefixes []string) bool {
		for _, x := range prefixes {
			if p == strings.TrimSuffix(x, "/") || strings.HasPrefix(p, x) || strings.HasPrefix(p, x+"/") {
				return true
			}
		}
		return false
	}
	switch {
	case !strings.Contains(strings.SplitN(p, "/", 2)[0], "."): // the standard library (and cgo's "C")
		return true
	case strings.HasPrefix(p, module+"domain/"), p == module+"projections", strings.HasPrefix(p, module+"projections/"):
		return true
	case strings.HasPrefix(p, module+"adapters/"+dir+"/") || p == module+"adapters/"+dir:
		return true
	case has(shared):
		return true
	case strings.HasPrefix(p, module+"adapters/"+strings.SplitN(dir, "/", 2)[0]+"/internal/"):
		// What the adapters of one family share (the clock sources'
		// address syntax), kept internal to it.
		return true
	case strings.HasPrefix(p, module):
		return false // another adapter, or cmd
	}
	for d := dir; d != "."; d = filepath.Dir(d) {
		if has(systems[d]) {
			return true
		}
	}
	return false
}

func TestAdaptersImportTheirOwnSystem(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !allowed(dir, p) {
				t.Errorf("%s imports %s: an adapter imports the domain, the read side, the standard library and the system it wraps", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTheRuleHolds: the rule refuses what it should.
func TestTheRuleHolds(t *testing.T) {
	for _, c := range []struct {
		dir, imp string
		ok       bool
	}{
		{"readstore/sqlite", "github.com/mattn/go-sqlite3", true},
		{"queryapi", "github.com/mattn/go-sqlite3", false},
		{"queryapi", module + "projections/archive", true},
		{"queryapi", module + "adapters/readstore/sqlite", false},
		{"httpapi", module + "domain/logwire", true},
		{"httpapi", module + "adapters/logclient", false},
		{"clock/ntp", module + "adapters/clock/internal/hostport", true},
		{"eventstore/sqlite", module + "adapters/clock/internal/hostport", false},
		{"httpapi", module + "app", false},
		{"httpapi", module + "cmd/internal/readmodels", false},
		{"translog/trillian/trilliantest", "google.golang.org/grpc/credentials/insecure", true},
		{"translog/tessera", "google.golang.org/grpc", false},
		{"eventstore/sqlite", module + "adapters/eventstore/sqlite/internal", true},
	} {
		if got := allowed(c.dir, c.imp); got != c.ok {
			t.Errorf("%s importing %s: allowed %v, want %v", c.dir, c.imp, got, c.ok)
		}
	}
}
