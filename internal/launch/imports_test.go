package launch

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// maxInternalImports bounds the internal packages launch imports: it reads configuration,
// makes certificates, opens the store, binds listeners and starts and stops the roles. What
// belongs to a role (its media settings, its event log, its accounts, its files, its
// secrets) is wired in the role's package, where a reader looks for it.
const maxInternalImports = 8

// TestImportsFewInternalPackages fails when launch's non-test files import more than
// maxInternalImports internal packages, so that a role's wiring does not drift back here.
func TestImportsFewInternalPackages(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "confab.dev/confab/internal/"
	seen := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := strings.CutPrefix(path, prefix); ok {
				seen[p] = true
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no internal imports found: the file walk is wrong")
	}
	if len(seen) > maxInternalImports {
		pkgs := make([]string, 0, len(seen))
		for p := range seen {
			pkgs = append(pkgs, p)
		}
		slices.Sort(pkgs)
		t.Errorf("launch imports %d internal packages, want at most %d: %s\n"+
			"wire what belongs to a role in the role's package (see docs/ARCHITECTURE.md)",
			len(seen), maxInternalImports, strings.Join(pkgs, ", "))
	}
}
