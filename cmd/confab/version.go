package main

import (
	"runtime/debug"
	"strings"
)

// versionString is the version, the commit the binary was built from (and whether the tree
// had uncommitted changes), and the Go toolchain: what an operator quotes in a bug report.
// The commit comes from the build information the go command records when it builds inside
// a git checkout; -ldflags "-X main.version=…" sets the version.
func versionString() string {
	s := "confab " + version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return s
	}
	var rev, when string
	dirty := false
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			when = kv.Value
		case "vcs.modified":
			dirty = kv.Value == "true"
		}
	}
	var parts []string
	if rev != "" {
		c := "commit " + rev[:min(12, len(rev))]
		if dirty {
			c += " (modified)"
		}
		parts = append(parts, c)
	}
	if when != "" {
		parts = append(parts, when)
	}
	parts = append(parts, bi.GoVersion)
	return s + " (" + strings.Join(parts, ", ") + ")"
}
