package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestComplete(t *testing.T) {
	tests := []struct {
		words []string
		want  []string // each must be offered
		not   []string // none of these may be
	}{
		{[]string{""}, []string{"up", "xmpp", "callbridge", "diagnose", "completion", "version"}, []string{"bench", "__complete"}},
		{[]string{"xmpp", ""}, []string{"callbridge"}, nil},
		{[]string{"xmpp", "callbridge", ""}, []string{"add", "add-secret", "list", "del", "unblock"}, nil},
		{[]string{"callbridge", "api-user", ""}, []string{"add", "list", "del"}, nil},
		{[]string{"up", "-"}, []string{"-data", "-domain", "-web", "-api", "-media"}, nil},
		{[]string{"diagnose", "-"}, []string{"-store"}, nil},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.words, " "), func(t *testing.T) {
			var b bytes.Buffer
			complete(context.Background(), tt.words, stdio{strings.NewReader(""), &b, &b})
			got := strings.Fields(b.String())
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("offers %v, want %q among them", got, w)
				}
			}
			for _, w := range tt.not {
				if slices.Contains(got, w) {
					t.Errorf("offers %q", w)
				}
			}
		})
	}
}

// TestBashCompletion: in a real bash, with the script loaded as the README says, <Tab>
// after "confab xmpp callbridge a" offers add and add-secret.
func TestBashCompletion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := filepath.Dir(builtConfab(t))
	script := `source <(confab completion bash)
COMP_WORDS=(confab xmpp callbridge a); COMP_CWORD=3; _confab; echo "${COMPREPLY[*]}"`
	cmd := exec.Command(bash, "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "add add-secret" {
		t.Errorf("completions %q, want %q", got, "add add-secret")
	}
}
