package projections_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsOnlyTheDomain holds the read side to its layer: a projection
// imports the standard library, the domain and the read side itself,
// never an adapter (its read store and its feed are ports) nor a module
// of its own. Test files may use anything.
func TestImportsOnlyTheDomain(t *testing.T) {
	const module = "github.com/chronolog/chronolog/"
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
			switch {
			case !strings.Contains(strings.SplitN(p, "/", 2)[0], "."): // the standard library
			case strings.HasPrefix(p, module+"domain/"), p == module+"projections", strings.HasPrefix(p, module+"projections/"):
			default:
				t.Errorf("%s imports %s: the read side imports the domain and the standard library only", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
