package users

import (
	"errors"
	"strings"
	"testing"
)

func entry(attrs map[string]string) func(string) (string, bool) {
	return func(a string) (string, bool) {
		for k, v := range attrs {
			if strings.EqualFold(k, a) {
				return v, true
			}
		}
		return "", false
	}
}

func TestTemplateExpand(t *testing.T) {
	e := entry(map[string]string{
		"uid": "fred", "cn": "Fred Bloggs", "sAMAccountName": "fbloggs",
		"mail": "fred.bloggs@test.example.com", "ipPhone": "4021", "path": `a\b/c`,
	})
	tests := []struct {
		tpl, want string
		attrs     []string
	}{
		{"$uid$@example.com", "fred@example.com", []string{"uid"}},
		{"$sAMAccountName$@example.com", "fbloggs@example.com", []string{"sAMAccountName"}},
		{"$samaccountname$", "fbloggs", []string{"samaccountname"}},
		{"$cn$", "Fred Bloggs", []string{"cn"}},
		{"$cn$ personal space", "Fred Bloggs personal space", []string{"cn"}},
		{"literal only", "literal only", nil},
		{"", "", nil},
		{"cost: $$5 for $uid$", "cost: $5 for fred", []string{"uid"}},
		{"$uid$.$uid$", "fred.fred", []string{"uid"}},
		// The examples of CMS's documentation.
		{`$mail|'/@test/@xmpp/'$`, "fred.bloggs@xmpp.example.com", []string{"mail"}},
		{`$cn|'/e//g'$`, "Frd Bloggs", []string{"cn"}},
		{`$mail|'/@.*//'$.space`, "fred.bloggs.space", []string{"mail"}},
		// First match only, unless g.
		{`$cn|'/o/0/'$`, "Fred Bl0ggs", []string{"cn"}},
		{`$cn|'/g/G/g'$`, "Fred BloGGs", []string{"cn"}},
		// Groups.
		{`$cn|'/(\w+) (\w+)/\2, \1/'$`, "Bloggs, Fred", []string{"cn"}},
		{`$mail|'/^([^.]+)\.([^@]+)@.*/\1_\2@example.com/'$`, "fred_bloggs@example.com", []string{"mail"}},
		{`$uid|'/.*/[\0]/'$`, "[fred]", []string{"uid"}},
		// Another separator, and escapes.
		{`$mail|'#@test#@xmpp#'$`, "fred.bloggs@xmpp.example.com", []string{"mail"}},
		{`$path|'/\//|/g'$`, `a\b|c`, []string{"path"}},
		{`$path|'/\\\\/+/'$`, `a+b/c`, []string{"path"}}, // \\\\ is the expression \\: a backslash
		{`$mail|'/\\./-/g'$`, "fred-bloggs@test-example-com", []string{"mail"}},
		{`$mail|'/\./-/'$`, "fred-bloggs@test.example.com", []string{"mail"}},
		{`$cn|'/ /\'/'$`, "Fred'Bloggs", []string{"cn"}},
		{`$cn|'/x/y/'$`, "Fred Bloggs", []string{"cn"}}, // no match: unchanged
		{`$ipPhone$ $cn|'/ .*//'$`, "4021 Fred", []string{"ipPhone", "cn"}},
	}
	for _, tt := range tests {
		t.Run(tt.tpl, func(t *testing.T) {
			tpl, err := ParseTemplate(tt.tpl)
			if err != nil {
				t.Fatalf("ParseTemplate: %v", err)
			}
			got, err := tpl.Expand(e)
			if err != nil || got != tt.want {
				t.Errorf("Expand = %q, %v; want %q", got, err, tt.want)
			}
			if a := tpl.Attributes(); strings.Join(a, ",") != strings.Join(tt.attrs, ",") {
				t.Errorf("Attributes = %v, want %v", a, tt.attrs)
			}
			if tpl.String() != tt.tpl {
				t.Errorf("String = %q, want the template as written", tpl.String())
			}
		})
	}
}

func TestTemplateMissingAttribute(t *testing.T) {
	tpl, err := ParseTemplate("$uid$@$domain$")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpl.Expand(entry(map[string]string{"uid": "x"}))
	var m *MissingAttributeError
	if !errors.As(err, &m) || m.Attr != "domain" {
		t.Errorf("Expand without domain: %v, want MissingAttributeError{domain}", err)
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		tpl    string
		offset int
		msg    string // a part of the message
	}{
		{"$uid", 0, "unterminated $uid"},
		{"abc$", 3, "unterminated $"},
		{"$ uid$", 1, "expected an attribute name"},
		{"$1uid$", 1, "expected an attribute name"},
		{"$u.id$", 2, `unexpected '.'`},
		{"$uid|/a/b/$", 5, "expected ' to open"},
		{"$uid|'/a/b/", 5, "unterminated substitution"},
		{"$uid|'/a/b/'", 12, "expected $ after the closing '"},
		{"$uid|'/a/b'$", 10, "three '/' separators"},
		{"$uid|'/a/b/c/d'$", 12, "too many"},
		{"$uid|'/a/b/x'$", 11, `unknown option "x"`},
		{"$uid|'1a1b1'$", 6, "cannot separate"},
		{`$uid|'/a/\q/'$`, 9, `unknown escape \q`},
		{"$uid|'/(/x/'$", 5, "invalid regular expression"},
		{"$uid|'//x/'$", 5, "empty regular expression"},
		{`$uid|'/a/\1/'$`, 5, `group \1`},
		{"$uid|'", 5, "unterminated substitution"},
		{`$uid|'/a\`, 8, "backslash at the end"},
		{strings.Repeat("x", 1025), 1024, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.tpl, func(t *testing.T) {
			_, err := ParseTemplate(tt.tpl)
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("ParseTemplate(%q) = %v, want a TemplateError", tt.tpl, err)
			}
			if te.Offset != tt.offset || !strings.Contains(te.Msg, tt.msg) {
				t.Errorf("error = %q at %d, want %q at %d", te.Msg, te.Offset, tt.msg, tt.offset)
			}
		})
	}
}

// FuzzParseTemplate checks that any template either parses into one that expands without
// panicking (and to itself when it has no $), or fails with a TemplateError inside it.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{
		"$uid$@example.com", `$mail|'/@test/@xmpp/'$`, `$cn|'/(\w+) (\w+)/\2 \1/g'$`, "$$", "$",
		`$a|'#x\#y#\0\'#g'$`, "$uid|'/a/b/", `$x|'/\\\\/\\\\/'$`, "plain text",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tpl, err := ParseTemplate(s)
		if err != nil {
			var te *TemplateError
			if !errors.As(err, &te) || te.Offset < 0 || te.Offset > len(s) {
				t.Fatalf("ParseTemplate(%q): %v, want a TemplateError at an offset within it", s, err)
			}
			return
		}
		for _, a := range tpl.Attributes() {
			if a == "" || !isAttrByte(a[0], true) {
				t.Fatalf("ParseTemplate(%q): attribute %q", s, a)
			}
		}
		got, err := tpl.Expand(func(a string) (string, bool) { return "v-" + a + "-" + s, true })
		if err != nil {
			t.Fatalf("Expand(%q) with every attribute present: %v", s, err)
		}
		if !strings.Contains(s, "$") && got != s {
			t.Fatalf("Expand(%q) = %q, want the text itself", s, got)
		}
	})
}
