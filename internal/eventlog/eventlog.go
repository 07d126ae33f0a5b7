// Package eventlog keeps the last records of a program's log in memory, for the web admin's
// event log (CMS's Logs > Event log): a slog.Handler that copies each record it is given
// into a ring buffer and passes it on, unchanged, to the handler that writes the log.
//
// A record is kept as text: its time, level, component (the "component" attribute, as the
// Call Bridge's services set it with Logger.With, else the handler's default), message and
// attributes, each attribute's value resolved first, so that values which redact
// themselves in logs (package secret) are kept redacted, exactly as the log shows them.
// Groups are flattened into dotted keys.
//
// The ring holds at most Size records; the oldest is dropped for each new one. Records
// below MinLevel are not kept (they may still be written by the next handler).
package eventlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Record is one kept log record.
type Record struct {
	Time      time.Time
	Level     slog.Level
	Component string
	Message   string
	Attrs     []Attr
}

// Attr is one attribute of a record, as text.
type Attr struct {
	Key, Value string
}

// Options configure New.
type Options struct {
	// Size is how many records are kept (DefaultSize when 0).
	Size int
	// MinLevel is the least level kept (slog.LevelInfo when nil).
	MinLevel slog.Leveler
	// Component names the records that carry no "component" attribute ("" when empty).
	Component string
}

// DefaultSize is how many records a Handler keeps by default.
const DefaultSize = 5000

// maxValue bounds the length of one attribute's value as kept.
const maxValue = 2000

// Handler is a slog.Handler that keeps records and passes them on.
type Handler struct {
	next      slog.Handler
	ring      *ring
	min       slog.Leveler
	component string
	attrs     []Attr // from WithAttrs, already flattened
	prefix    string // the open groups, "a.b."
}

// New returns a Handler that keeps records in a fresh ring and passes every record to next.
func New(next slog.Handler, o Options) *Handler {
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	if o.MinLevel == nil {
		o.MinLevel = slog.LevelInfo
	}
	return &Handler{next: next, ring: &ring{buf: make([]Record, o.Size)}, min: o.MinLevel, component: o.Component}
}

// Wrap returns a logger whose handler keeps the records of log (see New) under the default
// component name.
func Wrap(log *slog.Logger, component string) *slog.Logger {
	return slog.New(New(log.Handler(), Options{Component: component}))
}

// Enabled reports whether the record would be kept or written.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min.Level() || h.next.Enabled(ctx, l)
}

// Handle keeps r when its level is high enough and passes it to the next handler when
// that one wants it.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= h.min.Level() {
		rec := Record{Time: r.Time, Level: r.Level, Component: h.component, Message: r.Message}
		rec.Attrs = append(make([]Attr, 0, len(h.attrs)+r.NumAttrs()), h.attrs...)
		r.Attrs(func(a slog.Attr) bool {
			rec.Attrs = flatten(rec.Attrs, h.prefix, a)
			return true
		})
		for _, a := range rec.Attrs {
			if a.Key == "component" {
				rec.Component = a.Value
			}
		}
		h.ring.add(rec)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

// WithAttrs returns a Handler whose records carry attrs, sharing h's ring.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.attrs = append([]Attr(nil), h.attrs...)
	for _, a := range attrs {
		c.attrs = flatten(c.attrs, h.prefix, a)
	}
	return &c
}

// WithGroup returns a Handler that puts later attributes in group name, sharing h's ring.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}

// Records returns the kept records, oldest first.
func (h *Handler) Records() []Record { return h.ring.records() }

// flatten appends a (resolved, groups flattened) to out.
func flatten(out []Attr, prefix string, a slog.Attr) []Attr {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return out
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			out = flatten(out, p, g)
		}
		return out
	}
	return append(out, Attr{Key: prefix + a.Key, Value: text(a.Value)})
}

// text is a value as a text handler would write it, bounded.
func text(v slog.Value) string {
	var s string
	switch v.Kind() {
	case slog.KindTime:
		s = v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			s = fmt.Sprintf("%+v", x)
		}
	default:
		s = v.String()
	}
	if len(s) > maxValue {
		s = strings.ToValidUTF8(s[:maxValue], "") + "…"
	}
	return s
}

// ring is a fixed-size buffer of the newest records.
type ring struct {
	mu   sync.Mutex
	buf  []Record
	next int  // where the next record goes
	full bool // buf has wrapped
}

func (r *ring) add(rec Record) {
	r.mu.Lock()
	r.buf[r.next] = rec
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

func (r *ring) records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]Record(nil), r.buf[:r.next]...)
	}
	out := make([]Record, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}
