package sameorigin_test

import (
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"testing"

	"confab.dev/confab/internal/sameorigin"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name            string
		tls             bool
		host            string
		origin, referer string
		ok              bool
	}{
		{"same origin", true, "admin.example.com:8445", "https://admin.example.com:8445", "", true},
		{"default port spelt out", true, "admin.example.com", "https://admin.example.com:443", "", true},
		{"default port left out", true, "admin.example.com:443", "https://admin.example.com", "", true},
		{"case", true, "Admin.Example.com:8445", "https://admin.example.COM:8445", "", true},
		{"IPv6", true, "[::1]:8445", "https://[::1]:8445", "", true},
		{"plain HTTP", false, "localhost:8080", "http://localhost:8080", "", true},
		{"other host", true, "admin.example.com:8445", "https://evil.test:8445", "", false},
		{"other port", true, "admin.example.com:8445", "https://admin.example.com:8443", "", false},
		{"other scheme", true, "admin.example.com:8445", "http://admin.example.com:8445", "", false},
		{"TLS page posting to plain", false, "admin.example.com:8445", "https://admin.example.com:8445", "", false},
		{"null", true, "admin.example.com:8445", "null", "", false},
		{"garbage", true, "admin.example.com:8445", "::", "", false},
		{"origin wins over referer", true, "admin.example.com:8445", "https://evil.test", "https://admin.example.com:8445/admin/", false},
		{"referer only", true, "admin.example.com:8445", "", "https://admin.example.com:8445/admin/status?x=1", true},
		{"foreign referer", true, "admin.example.com:8445", "", "https://evil.test/admin/status", false},
		{"nothing", true, "admin.example.com:8445", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", nil)
			r.Host = tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			} else {
				r.TLS = nil
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.referer != "" {
				r.Header.Set("Referer", tt.referer)
			}
			err := sameorigin.Check(r)
			if (err == nil) != tt.ok {
				t.Errorf("Check = %v, want ok %v", err, tt.ok)
			}
			if tt.origin == "" && tt.referer == "" && !errors.Is(err, sameorigin.ErrMissing) {
				t.Errorf("no headers: err %v, want ErrMissing", err)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	r := httptest.NewRequest("GET", "https://meet.example.com/xmpp-websocket", nil)
	tests := []struct {
		origin  string
		allowed []string
		ok      bool
	}{
		{"https://meet.example.com", nil, true},
		{"https://meet.example.com:443", nil, true},
		{"https://evil.example", nil, false},
		{"http://meet.example.com", nil, false},
		{"null", nil, false},
		{"https://app.example.com", []string{"https://app.example.com:443"}, true},
		{"https://meet.example.com", []string{"https://app.example.com"}, false},
		{"https://app.example.com:8443", []string{"https://app.example.com"}, false},
	}
	for _, tt := range tests {
		if err := sameorigin.Allowed(r, tt.origin, tt.allowed); (err == nil) != tt.ok {
			t.Errorf("Allowed(%q, %v) = %v, want ok=%v", tt.origin, tt.allowed, err, tt.ok)
		}
	}
}
