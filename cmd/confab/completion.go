package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// commands is the command tree that completion offers: each command's verbs. Flags are not
// listed here: completion asks the command itself (its -h output), so they never drift.
var commands = map[string][]string{
	"up":         nil,
	"xmpp":       {"callbridge"},
	"callbridge": {"api-user", "user"},
	"diagnose":   nil,
	"turn":       {"credentials"},
	"completion": {"bash", "zsh", "fish"},
	"version":    nil,
	"help":       nil,
}

// verbs of second-level commands.
var verbs = map[string][]string{
	"xmpp callbridge":         {"add", "add-secret", "list", "del", "unblock"},
	"callbridge api-user":     {"add", "list", "del"},
	"callbridge user":         {"add", "list", "del"},
	"turn credentials":        nil,
	"completion bash":         nil,
	"completion zsh":          nil,
	"completion fish":         nil,
	"xmpp callbridge add":     nil,
	"callbridge api-user add": nil,
}

const bashCompletion = `# bash completion for confab; load with: source <(confab completion bash)
_confab() {
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$(confab __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
}
complete -o default -F _confab confab
`

const zshCompletion = `#compdef confab
# zsh completion for confab; load with: source <(confab completion zsh)
_confab() {
	local -a c
	c=("${(@f)$(confab __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	compadd -- $c
}
compdef _confab confab
`

const fishCompletion = `# fish completion for confab; load with: confab completion fish | source
complete -c confab -f -a '(confab __complete (commandline -opc)[2..-1] (commandline -ct))'
`

func runCompletion(args []string, io stdio) error {
	if len(args) != 1 {
		return &exitError{2, errors.New("usage: confab completion bash|zsh|fish")}
	}
	switch args[0] {
	case "bash":
		fmt.Fprint(io.out, bashCompletion)
	case "zsh":
		fmt.Fprint(io.out, zshCompletion)
	case "fish":
		fmt.Fprint(io.out, fishCompletion)
	default:
		return &exitError{2, fmt.Errorf("completion: unknown shell %q (bash, zsh or fish)", args[0])}
	}
	return nil
}

// complete prints the words that may follow words[:len-1], the last word being the one
// typed so far (the shell filters by it): commands, verbs, or the command's flags.
func complete(ctx context.Context, words []string, io stdio) {
	var path []string // the commands and verbs typed so far
	for _, w := range words[:max(len(words)-1, 0)] {
		if strings.HasPrefix(w, "-") {
			break
		}
		path = append(path, w)
	}
	cur := ""
	if len(words) > 0 {
		cur = words[len(words)-1]
	}
	var out []string
	switch {
	case strings.HasPrefix(cur, "-") && len(path) > 0:
		out = flagsOf(ctx, path)
	case len(path) == 0:
		for c := range commands {
			out = append(out, c)
		}
	case len(path) == 1:
		out = append(out, commands[path[0]]...)
	default:
		out = append(out, verbs[strings.Join(path[:2], " ")]...)
	}
	sort.Strings(out)
	for _, w := range out {
		fmt.Fprintln(io.out, w)
	}
}

// flagsOf runs the command with -h and reads the flags from its usage.
func flagsOf(ctx context.Context, path []string) []string {
	var b bytes.Buffer
	_ = run(ctx, append(slices.Clone(path), "-h"), stdio{strings.NewReader(""), &b, &b})
	var flags []string
	for _, line := range strings.Split(b.String(), "\n") {
		t := strings.TrimLeft(line, " \t")
		if !strings.HasPrefix(t, "-") || len(line)-len(t) > 4 {
			continue
		}
		name, _, _ := strings.Cut(t, " ")
		flags = append(flags, name)
	}
	return flags
}
