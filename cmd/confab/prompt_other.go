//go:build !linux

package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// readHidden prints prompt to w and reads a line from the terminal f without echoing it.
func readHidden(f *os.File, w io.Writer, prompt string) (string, error) {
	fmt.Fprint(w, prompt)
	defer fmt.Fprintln(w)
	b, err := term.ReadPassword(int(f.Fd()))
	return string(b), err
}
