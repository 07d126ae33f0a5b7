package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"confab.dev/confab/internal/certs"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/discover/dnstest"
	"confab.dev/confab/internal/xmppd"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestXMPPCertificateSelfCheck: `confab xmpp` checks its own certificate at start for the
// XMPP domain and the names its SRV records point Call Bridges to, and says what is missing
// in its log and on /healthz; -hosts puts those names in a generated certificate; a DNS
// failure only says the SRV names could not be checked.
func TestXMPPCertificateSelfCheck(t *testing.T) {
	zone := dnstest.Zone{
		"_xmpp-component._tcp.example.com": {SRV: []dnstest.SRV{{Priority: 10, Weight: 50, Port: 5223, Target: "xmpp.example.com"}}},
		"xmpp.example.com":                 {A: []string{"127.0.0.1"}},
	}
	dns := dnstest.Start(t, zone)
	gone := dnstest.Start(t, zone)
	gone.Close()
	ca, err := certs.NewCA("self-check test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noDomain := filepath.Join(t.TempDir(), "nodomain")
	pair, err := ca.Issue(certs.Options{CommonName: "xmpp.example.com", DNSNames: []string{"xmpp.example.com"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := pair.WriteFiles(noDomain+".pem", noDomain+"-key.pem"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cert     string // a configured certificate; "" generates one
		opts     XMPPOptions
		ok       bool
		warnings []string // each in some warning
		srv      string
	}{
		{name: "generated, SRV target missing", opts: XMPPOptions{DNSServer: dns.Addr},
			warnings: []string{"_xmpp-component._tcp.example.com points Call Bridges to xmpp.example.com, which the certificate lacks"}, srv: "xmpp.example.com:5223"},
		{name: "generated with -hosts", opts: XMPPOptions{DNSServer: dns.Addr, Hosts: []string{"xmpp.example.com"}}, ok: true, srv: "xmpp.example.com:5223"},
		{name: "configured, lacks the domain", cert: noDomain, opts: XMPPOptions{DNSServer: dns.Addr},
			warnings: []string{"the certificate lacks the XMPP domain example.com: every Call Bridge refuses it"}, srv: "xmpp.example.com:5223"},
		{name: "DNS not answering", opts: XMPPOptions{DNSServer: gone.Addr}, ok: true, srv: "could not check the names the SRV records give"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg config.XMPP
			cfg.Domain = "example.com"
			cfg.DataDir = t.TempDir()
			cfg.Listen.C2S, cfg.Listen.Component, cfg.Listen.WebSocket, cfg.Listen.Admin = "127.0.0.1:0", "127.0.0.1:0", "-", "127.0.0.1:0"
			if tc.cert != "" {
				cfg.TLS.Cert, cfg.TLS.Key = tc.cert+".pem", tc.cert+"-key.pem"
			}
			logs := &syncBuf{}
			x, err := StartXMPPWith(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)), nil, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				x.Shutdown(ctx)
			})
			var h struct {
				Domain      string           `json:"domain"`
				Certificate *xmppd.CertCheck `json:"certificate"`
			}
			deadline := time.Now().Add(15 * time.Second)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				resp, err := http.Get("http://" + x.Addrs.Admin + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				err = json.NewDecoder(resp.Body).Decode(&h)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if h.Certificate != nil && h.Certificate.SRV != "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no SRV check on /healthz within 15s: %+v", h)
				}
				<-tick.C
			}
			c := h.Certificate
			if h.Domain != "example.com" {
				t.Errorf("/healthz domain %q, want example.com", h.Domain)
			}
			if c.OK != tc.ok || (tc.ok && len(c.Warnings) > 0) {
				t.Errorf("certificate check ok=%v warnings %q, want ok=%v", c.OK, c.Warnings, tc.ok)
			}
			all := strings.Join(c.Warnings, "\n")
			for _, w := range tc.warnings {
				if !strings.Contains(all, w) {
					t.Errorf("warnings %q: want %q", c.Warnings, w)
				}
				if !strings.Contains(logs.String(), "certificate self-check: "+w) {
					t.Errorf("log lacks the warning %q:\n%s", w, logs.String())
				}
			}
			if !strings.Contains(c.SRV, tc.srv) {
				t.Errorf("srv %q: want %q", c.SRV, tc.srv)
			}
			if tc.opts.Hosts != nil && !strings.Contains(strings.Join(c.Names, ","), "DNS:"+tc.opts.Hosts[0]) {
				t.Errorf("names %q lack the -hosts name", c.Names)
			}
		})
	}
}
