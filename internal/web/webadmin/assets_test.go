package webadmin_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

// TestAssetCompression: each asset comes in the smallest encoding the request accepts,
// with Vary, an ETag per encoding and 304 for that ETag only.
func TestAssetCompression(t *testing.T) {
	e := newAdminEnv(t)
	// The transport must not add or undo Accept-Encoding: set it by hand.
	plain, err := os.ReadFile("assets/admin.css")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, accept, inm string) response {
		t.Helper()
		r, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		r.Header.Set("Accept-Encoding", accept)
		if inm != "" {
			r.Header.Set("If-None-Match", inm)
		}
		return do(t, e.client, r)
	}
	decode := map[string]func([]byte) ([]byte, error){
		"": func(b []byte) ([]byte, error) { return b, nil },
		"gzip": func(b []byte) ([]byte, error) {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			return io.ReadAll(zr)
		},
		"br": func(b []byte) ([]byte, error) { return io.ReadAll(brotli.NewReader(bytes.NewReader(b))) },
	}
	etags := map[string]string{}
	for _, tc := range []struct {
		accept, want string
	}{
		{"", ""},
		{"identity", ""},
		{"gzip", "gzip"},
		{"gzip, deflate", "gzip"},
		{"gzip, deflate, br, zstd", "br"},
		{"br;q=0, gzip", "gzip"},
		{"*", "br"},
		{"gzip;q=0, br;q=0", ""},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			res := get("/admin/assets/admin.css", tc.accept, "")
			if got := res.header.Get("Content-Encoding"); got != tc.want {
				t.Errorf("Content-Encoding %q, want %q", got, tc.want)
			}
			if res.header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("Vary %q", res.header.Get("Vary"))
			}
			body, err := decode[tc.want]([]byte(res.body))
			if err != nil || !bytes.Equal(body, plain) {
				t.Errorf("decoded body differs from admin.css (err %v)", err)
			}
			if tc.want != "" && len(res.body) >= len(plain)/2 {
				t.Errorf("%s body %d bytes of %d: hardly compressed", tc.want, len(res.body), len(plain))
			}
			tag := res.header.Get("ETag")
			if old, ok := etags[tc.want]; ok && old != tag {
				t.Errorf("ETag %s, was %s for the same encoding", tag, old)
			}
			etags[tc.want] = tag
			if res := get("/admin/assets/admin.css", tc.accept, tag); res.code != http.StatusNotModified {
				t.Errorf("If-None-Match %s: %d, want 304", tag, res.code)
			}
		})
	}
	if len(etags) != 3 || etags[""] == etags["gzip"] || etags["gzip"] == etags["br"] {
		t.Errorf("ETags %v: want one per encoding", etags)
	}
	// Another encoding's ETag does not validate this one.
	if res := get("/admin/assets/admin.css", "gzip", etags["br"]); res.code != http.StatusOK {
		t.Errorf("gzip request with the br ETag: %d, want 200", res.code)
	}
	// Pages are never compressed (they hold the CSRF token beside reflected text).
	e.login(t, e.client)
	if res := get("/admin/logs?q=abc", "gzip, br", ""); res.header.Get("Content-Encoding") != "" {
		t.Errorf("the event log page is sent %s-compressed", res.header.Get("Content-Encoding"))
	}
}

// TestContrast computes the contrast of the main text and background colours of the style
// sheet, light and dark, against WCAG's 4.5:1 for normal text.
func TestContrast(t *testing.T) {
	css, err := os.ReadFile("assets/admin.css")
	if err != nil {
		t.Fatal(err)
	}
	light := vars(t, string(css), `:root {`)
	dark := vars(t, string(css), `@media (prefers-color-scheme: dark) {`)
	for k, v := range light {
		if _, ok := dark[k]; !ok {
			dark[k] = v
		}
	}
	pairs := [][2]string{
		{"text", "bg"}, {"text", "surface"}, {"text", "band"},
		{"muted", "surface"}, {"muted", "bg"}, {"muted", "band"}, {"muted", "none-bg"},
		{"primary", "surface"}, {"primary", "bg"}, {"primary-text", "primary"}, {"primary-text", "primary-hover"},
		{"primary-text", "failed"}, {"primary-text", "danger-hover"},
		{"ok", "ok-bg"}, {"warn", "warn-bg"}, {"failed", "failed-bg"}, {"failed", "surface"},
	}
	for name, scheme := range map[string]map[string]string{"light": light, "dark": dark} {
		for _, p := range pairs {
			fg, bg := scheme[p[0]], scheme[p[1]]
			if fg == "" || bg == "" {
				t.Errorf("%s: --%s or --%s is not defined", name, p[0], p[1])
				continue
			}
			if c := contrast(t, fg, bg); c < 4.5 {
				t.Errorf("%s: --%s %s on --%s %s has contrast %.2f:1, want at least 4.5:1", name, p[0], fg, p[1], bg, c)
			}
		}
	}
}

var cssVar = regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-fA-F]{6})\b`)

// vars returns the colour variables of the block that starts at opener.
func vars(t *testing.T, css, opener string) map[string]string {
	t.Helper()
	i := strings.Index(css, opener)
	if i < 0 {
		t.Fatalf("no %q in the style sheet", opener)
	}
	block := css[i:]
	block = block[:strings.Index(block, "}")]
	out := map[string]string{}
	for _, m := range cssVar.FindAllStringSubmatch(block, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func contrast(t *testing.T, a, b string) float64 {
	la, lb := luminance(t, a), luminance(t, b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

func luminance(t *testing.T, hex string) float64 {
	t.Helper()
	var c [3]float64
	for i := range c {
		v, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		if err != nil {
			t.Fatalf("colour %s: %v", hex, err)
		}
		s := float64(v) / 255
		if s <= 0.04045 {
			c[i] = s / 12.92
		} else {
			c[i] = math.Pow((s+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
}
