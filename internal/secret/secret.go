// Package secret holds values that must never reach a log line, a trace or an API response:
// shared secrets, passwords, one-time credentials. A Secret formats as "[redacted]" through
// fmt, slog, encoding/json and encoding/xml; Reveal is the one way to read it, so every use
// of the real value is explicit and easy to find.
package secret

import (
	"encoding/xml"
	"log/slog"
)

// Secret is a string that redacts itself.
type Secret struct{ v string }

// New wraps s.
func New(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value. Call it only where the value is used (a hash, a digest).
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty (unset).
func (s Secret) IsZero() bool { return s.v == "" }

const redacted = "[redacted]"

// String redacts.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return redacted
}

// GoString redacts under %#v.
func (s Secret) GoString() string { return "secret.Secret{" + s.String() + "}" }

// LogValue redacts in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts in JSON, XML attributes and text.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalXML writes nothing: a secret is write-only in every API document.
func (s Secret) MarshalXML(*xml.Encoder, xml.StartElement) error { return nil }
