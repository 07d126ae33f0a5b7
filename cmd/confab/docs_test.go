package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// internalPackages returns every directory under ../../internal that holds Go files, as
// "internal/…" paths, with whether one of its non-test files has a package doc comment.
func internalPackages(t *testing.T) map[string]bool {
	t.Helper()
	pkgs := map[string]bool{}
	err := filepath.WalkDir("../../internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		dir, _ := filepath.Rel("../..", filepath.Dir(path))
		dir = filepath.ToSlash(dir)
		documented := pkgs[dir]
		if !strings.HasSuffix(path, "_test.go") {
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				return err
			}
			documented = documented || f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != ""
		} else if _, seen := pkgs[dir]; !seen {
			// A directory of tests only (internal/faults) documents itself in a doc.go.
			documented = false
		}
		pkgs[dir] = documented
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestArchitectureNamesEveryPackage: docs/ARCHITECTURE.md names every package under
// internal/ (and no package that does not exist), and every package has a doc comment.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	doc, err := os.ReadFile("../../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := internalPackages(t)
	if len(pkgs) < 20 {
		t.Fatalf("found %d packages under internal/: the walk is wrong", len(pkgs))
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`(internal/[a-z0-9_/]+)`").FindAllStringSubmatch(string(doc), -1) {
		named[strings.TrimSuffix(m[1], "/")] = true
	}
	for p, documented := range pkgs {
		if !named[p] {
			t.Errorf("docs/ARCHITECTURE.md does not name `%s`", p)
		}
		if !documented {
			t.Errorf("%s has no package doc comment", p)
		}
	}
	for p := range named {
		if fi, err := os.Stat("../../" + p); err == nil && fi.IsDir() {
			continue // a package, or a directory of packages (internal/web/)
		}
		if _, ok := pkgs[p]; !ok {
			t.Errorf("docs/ARCHITECTURE.md names `%s`, which is not a package", p)
		}
	}
}
