package users

import (
	"fmt"
	"regexp"
	"strings"
)

// A Template turns an LDAP entry into a field of a user, with the syntax of CMS's field
// mapping expressions:
//
//	$uid$@example.com                 an attribute's value between dollar signs, in literal text
//	$mail|'/@test/@xmpp/'$            the value with a sed-like substitution: the first match
//	$cn|'/a//g'$                      of the regular expression replaced, or every match with g
//	$$                                a literal dollar sign (Confab's addition)
//
// In a substitution, any character but a single quote, a backslash or a digit may separate
// the parts in place of "/". Inside the quotes, \' is a single quote, \\ a backslash, and a
// backslash before the separator makes it literal; other backslash escapes are passed to
// the regular expression (RE2 syntax, e.g. \s, \.). The replacement refers to the whole match
// as \0 and to the bracketed groups as \1 to \9. An attribute with several values gives its
// first; an attribute the entry lacks is an error (see MissingAttributeError).
type Template struct {
	src   string
	parts []tplPart
}

type tplPart struct {
	lit  string // literal text, when attr is ""
	attr string
	sub  *substitution
}

type substitution struct {
	re     *regexp.Regexp
	repl   []replPiece
	global bool
}

// replPiece is literal text or (group >= 0) a reference to a group of the match.
type replPiece struct {
	lit   string
	group int
}

// TemplateError says where and why a template cannot be parsed.
type TemplateError struct {
	Offset int // byte offset in the template
	Msg    string
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("at offset %d: %s", e.Offset, e.Msg)
}

func tplErr(off int, format string, args ...any) *TemplateError {
	return &TemplateError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// MissingAttributeError is returned by Expand when the entry lacks an attribute the
// template uses.
type MissingAttributeError struct {
	Attr string
}

func (e *MissingAttributeError) Error() string {
	return fmt.Sprintf("the entry has no %s attribute", e.Attr)
}

// maxTemplateBytes bounds a template's length.
const maxTemplateBytes = 1024

// ParseTemplate parses a mapping template. Errors are *TemplateError.
func ParseTemplate(s string) (*Template, error) {
	if len(s) > maxTemplateBytes {
		return nil, tplErr(maxTemplateBytes, "longer than %d bytes", maxTemplateBytes)
	}
	t := &Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, tplPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		if s[i] != '$' {
			lit.WriteByte(s[i])
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i += 2
			continue
		}
		start := i
		j := i + 1
		for j < len(s) && isAttrByte(s[j], j == i+1) {
			j++
		}
		name := s[i+1 : j]
		switch {
		case j == len(s) && name == "":
			return nil, tplErr(start, "unterminated $: a $ must be followed by an attribute name and a closing $ (write $$ for a literal $)")
		case j == len(s):
			return nil, tplErr(start, "unterminated $%s: no closing $", name)
		case name == "":
			return nil, tplErr(j, "expected an attribute name after $, found %q (write $$ for a literal $)", s[j])
		}
		part := tplPart{attr: name}
		switch s[j] {
		case '$':
			i = j + 1
		case '|':
			sub, end, err := parseSubstitution(s, j+1)
			if err != nil {
				return nil, err
			}
			part.sub = sub
			i = end
		default:
			return nil, tplErr(j, "unexpected %q in attribute name %q: expected $ or |", s[j], name)
		}
		flush()
		t.parts = append(t.parts, part)
	}
	flush()
	return t, nil
}

// isAttrByte accepts the characters of an LDAP attribute description: a letter first, then
// letters, digits and hyphens.
func isAttrByte(c byte, first bool) bool {
	letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	return letter || !first && (c >= '0' && c <= '9' || c == '-')
}

// parseSubstitution parses '<d>regex<d>replacement<d>option'$ starting at s[i] (the opening
// quote) and returns the offset after the closing $.
func parseSubstitution(s string, i int) (*substitution, int, error) {
	if i >= len(s) || s[i] != '\'' {
		return nil, 0, tplErr(i, "expected ' to open a substitution after |")
	}
	open := i
	i++
	if i >= len(s) {
		return nil, 0, tplErr(open, "unterminated substitution: no closing '")
	}
	delim := s[i]
	if delim == '\'' || delim == '\\' || delim >= '0' && delim <= '9' {
		return nil, 0, tplErr(i, "%q cannot separate the parts of a substitution", delim)
	}
	i++
	// The three parts, with escapes resolved; in the replacement, group references are kept
	// as pieces.
	var re strings.Builder
	var repl []replPiece
	var lit strings.Builder
	var opt strings.Builder
	part := 0
	for {
		if i >= len(s) {
			return nil, 0, tplErr(open, "unterminated substitution: no closing '")
		}
		c := s[i]
		if c == '\'' {
			break
		}
		if c == '\\' {
			if i+1 >= len(s) {
				return nil, 0, tplErr(i, "a backslash at the end of the template")
			}
			e := s[i+1]
			i += 2
			switch {
			case e == '\'' || e == '\\' || e == delim:
				switch part {
				case 0:
					re.WriteByte(e) // so \\. is the expression \. (a literal dot)
				case 1:
					lit.WriteByte(e)
				default:
					return nil, 0, tplErr(i-2, "unexpected \\%c in the option", e)
				}
			case part == 0:
				re.WriteByte('\\')
				re.WriteByte(e)
			case part == 1 && e >= '0' && e <= '9':
				if lit.Len() > 0 {
					repl = append(repl, replPiece{lit: lit.String(), group: -1})
					lit.Reset()
				}
				repl = append(repl, replPiece{group: int(e - '0')})
			default:
				return nil, 0, tplErr(i-2, "unknown escape \\%c in the replacement (use \\0 to \\9, \\\\, \\' or \\%c)", e, delim)
			}
			continue
		}
		i++
		if c == delim {
			part++
			if part > 2 {
				return nil, 0, tplErr(i-1, "too many %q separators in the substitution", delim)
			}
			continue
		}
		switch part {
		case 0:
			re.WriteByte(c)
		case 1:
			lit.WriteByte(c)
		default:
			opt.WriteByte(c)
		}
	}
	closeQuote := i
	if part != 2 {
		return nil, 0, tplErr(closeQuote, "the substitution needs three %q separators: %cregex%creplacement%coption", delim, delim, delim, delim)
	}
	if lit.Len() > 0 {
		repl = append(repl, replPiece{lit: lit.String(), group: -1})
	}
	if o := opt.String(); o != "" && o != "g" {
		return nil, 0, tplErr(closeQuote-len(o), "unknown option %q (want g or nothing)", o)
	}
	if closeQuote+1 >= len(s) || s[closeQuote+1] != '$' {
		return nil, 0, tplErr(closeQuote+1, "expected $ after the closing ' of the substitution")
	}
	if re.Len() == 0 {
		return nil, 0, tplErr(open, "empty regular expression")
	}
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return nil, 0, tplErr(open, "invalid regular expression: %v", err)
	}
	for _, p := range repl {
		if p.group > rx.NumSubexp() {
			return nil, 0, tplErr(open, "the replacement refers to group \\%d; the expression has %d", p.group, rx.NumSubexp())
		}
	}
	return &substitution{re: rx, repl: repl, global: opt.String() == "g"}, closeQuote + 2, nil
}

// String returns the template as written.
func (t *Template) String() string { return t.src }

// Attributes returns the attributes the template uses, each once, in order of appearance.
func (t *Template) Attributes() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range t.parts {
		if k := strings.ToLower(p.attr); p.attr != "" && !seen[k] {
			seen[k] = true
			out = append(out, p.attr)
		}
	}
	return out
}

// Expand fills the template in from an entry: get returns an attribute's value and whether
// the entry has it.
func (t *Template) Expand(get func(attr string) (string, bool)) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.attr == "" {
			b.WriteString(p.lit)
			continue
		}
		v, ok := get(p.attr)
		if !ok {
			return "", &MissingAttributeError{Attr: p.attr}
		}
		if p.sub != nil {
			v = p.sub.apply(v)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func (s *substitution) apply(v string) string {
	n := 1
	if s.global {
		n = -1
	}
	matches := s.re.FindAllStringSubmatchIndex(v, n)
	if matches == nil {
		return v
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		b.WriteString(v[last:m[0]])
		for _, p := range s.repl {
			if p.group < 0 {
				b.WriteString(p.lit)
			} else if m[2*p.group] >= 0 {
				b.WriteString(v[m[2*p.group]:m[2*p.group+1]])
			}
		}
		last = m[1]
	}
	b.WriteString(v[last:])
	return b.String()
}
