package diagnose

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteTable writes the report as a step-by-step table for a terminal: one block per row
// with the step number, PASS/FAIL/SKIP and the step's title, then what was looked up, came
// back or was checked, and for a failure its cause and remedy; then the verdict. Long lines
// are not wrapped, so that records and commands can be copied whole.
func (r Report) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	who := "Call Bridge"
	if r.ComponentJID != "" {
		who += " " + r.ComponentJID
	}
	fmt.Fprintf(bw, "Confab diagnose: %s", who)
	if r.Domain != "" {
		fmt.Fprintf(bw, " -> XMPP domain %s", r.Domain)
	}
	if r.ServerAddressOverride != "" {
		fmt.Fprintf(bw, " via serverAddressOverride %s", r.ServerAddressOverride)
	}
	bw.WriteString("\n\n")
	fmt.Fprintf(bw, "%-4s  %-6s  %s\n", "STEP", "RESULT", "CHECK")
	const indent = "              "
	for _, row := range r.Rows {
		title := row.Title
		var extra []string
		if row.Target != "" {
			extra = append(extra, row.Target)
		}
		if row.Result != Skip || row.DurationMs > 0 {
			extra = append(extra, formatMs(row.DurationMs))
		}
		if len(extra) > 0 {
			title += "  [" + strings.Join(extra, ", ") + "]"
		}
		fmt.Fprintf(bw, "%4d  %-6s  %s\n", row.Number, row.Result, title)
		if row.Detail != "" {
			bw.WriteString(indent + row.Detail + "\n")
		}
		if row.Result == Fail {
			if row.Cause != "" {
				bw.WriteString(indent + "cause:  " + row.Cause + "\n")
			}
			if row.Remedy != "" {
				bw.WriteString(indent + "remedy: " + row.Remedy + "\n")
			}
		}
	}
	bw.WriteString("\n")
	if r.Failure == nil {
		fmt.Fprintf(bw, "RESULT: PASS")
		switch {
		case r.Server != "" && r.Server != r.Address:
			fmt.Fprintf(bw, " (XMPP server %s at %s)", r.Server, r.Address)
		case r.Server != "":
			fmt.Fprintf(bw, " (XMPP server %s)", r.Server)
		}
		bw.WriteString("\n")
	} else {
		f := r.Failure
		fmt.Fprintf(bw, "RESULT: FAIL at step %d (%s): %s, cause %s", f.Step, f.Name, f.FailureReason, f.Cause)
		if f.TLSCause != "" && f.TLSCause != f.Cause {
			fmt.Fprintf(bw, ", TLS cause %s", f.TLSCause)
		}
		bw.WriteString("\n")
		if f.Detail != "" {
			bw.WriteString("        " + f.Detail + "\n")
		}
		if f.Remedy != "" {
			bw.WriteString("remedy: " + f.Remedy + "\n")
		}
	}
	for _, n := range r.Notes {
		bw.WriteString("note: " + n + "\n")
	}
	return bw.Flush()
}

func formatMs(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Passed bool `json:"passed"`
		Report
	}{r.Passed(), r})
}
