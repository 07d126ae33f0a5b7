package callbridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/google/uuid"

	"confab.dev/confab/internal/callbridge/ladder"
	"confab.dev/confab/internal/callbridge/media"
	"confab.dev/confab/internal/callbridge/sfu"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/turnd"
	"confab.dev/confab/internal/web/webapp"
)

// EmbeddedTURNID is the id, in /api/v1/turnServers, of the TURN server the Call Bridge runs
// beside itself (package launch registers it there as it listens).
var EmbeddedTURNID = uuid.NewSHA1(uuid.NameSpaceURL, []byte("confab:turnServer:embedded")).String()

// CredentialLifetime is how long the TURN credentials a participant gets from a
// shared-secret server are valid: an allocation cannot be refreshed past it, so it is
// longer than a meeting lasts.
const CredentialLifetime = 24 * time.Hour

// DefaultTURNPort is the UDP and TCP port of a turnServer whose serverAddress names none.
const DefaultTURNPort = 3478

// AttachTURN makes srv the embedded TURN server whose allocations the REST API and the
// web admin show (as the turnServer EmbeddedTURNID). Call it before serving.
func (b *Bridge) AttachTURN(srv *turnd.Server) {
	b.mu.Lock()
	b.turn = srv
	b.mu.Unlock()
}

// TURN returns the embedded TURN server, nil when none runs.
func (b *Bridge) TURN() *turnd.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.turn
}

// ICEServers returns the TURN servers of /api/v1/turnServers as a browser gets them, with
// credentials for userID: issued now from a server's shared secret, or its static
// username and password. A server without credentials is offered as STUN only; a
// lyncEdge server (MS-TURN, which browsers do not speak) is not offered.
func (b *Bridge) ICEServers(ctx context.Context, userID string, ttl time.Duration) []sfu.ICEServer {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	objs, _, err := b.Store.ListObjects(ctx, store.KindTURNServer, store.UsageAny, 0, 0)
	if err != nil {
		b.log.Warn("TURN servers could not be read; browsers get none", "err", err)
		return nil
	}
	out := make([]sfu.ICEServer, 0, len(objs))
	for _, o := range objs {
		if is, ok := TURNServerICE(o, userID, b.cfg.Now().Add(ttl)); ok {
			out = append(out, is)
		}
	}
	return out
}

// mediaICEServers is the media service's ICEServers.
func (b *Bridge) mediaICEServers(userID string, ttl time.Duration) []sfu.ICEServer {
	return b.ICEServers(b.ctx, userID, ttl)
}

// TURNServerICE turns one turnServer object into the ICE server a browser gets, with
// credentials for userID that expire at expires; ok is false for a server browsers cannot
// use.
func TURNServerICE(o store.Object, userID string, expires time.Time) (sfu.ICEServer, bool) {
	f := o.Fields
	if f["type"] == "lyncEdge" {
		return sfu.ICEServer{}, false
	}
	addr := f["clientAddress"]
	if addr == "" {
		addr = f["serverAddress"]
	}
	host, port := splitHostPort(addr, DefaultTURNPort)
	if host == "" {
		return sfu.ICEServer{}, false
	}
	tcp := port
	if p, err := strconv.Atoi(f["tcpPortNumberOverride"]); err == nil && p > 0 {
		tcp = p
	}
	tlsPort, _ := strconv.Atoi(f["tlsPortNumber"])
	udp := port
	if f["udpDisabled"] == "true" {
		udp = 0
	}
	if f["tcpDisabled"] == "true" {
		tcp = 0
	}
	is := sfu.ICEServer{ID: o.ID}
	switch {
	case f["sharedSecret"] != "":
		c, err := turnd.IssueCredentials(secret.New(f["sharedSecret"]), userID, expires)
		if err != nil {
			return sfu.ICEServer{}, false
		}
		is.Username, is.Credential = c.Username, c.Password.Reveal()
	case f["username"] != "" && f["password"] != "":
		is.Username, is.Credential = f["username"], f["password"]
	default:
		// No credentials: the server can still tell a browser its address as STUN.
		is.URLs = []string{"stun:" + net.JoinHostPort(host, strconv.Itoa(port))}
		return is, true
	}
	is.URLs = turnd.ICEURLs(host, udp, tcp, tlsPort)
	return is, len(is.URLs) > 0
}

// splitHostPort splits host[:port] (an IPv6 address in brackets with a port, or bare).
func splitHostPort(addr string, def int) (string, int) {
	if h, p, err := net.SplitHostPort(addr); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return "", 0
		}
		return h, n
	}
	if len(addr) > 1 && addr[0] == '[' && addr[len(addr)-1] == ']' {
		return addr[1 : len(addr)-1], def
	}
	return addr, def
}

// connTester runs the web app's connection tests on the media service; nil without media.
func (b *Bridge) connTester() webapp.ConnectionTester {
	if b.Media == nil {
		return nil
	}
	return connTester{b}
}

type connTester struct{ b *Bridge }

func (c connTester) TestServers(ctx context.Context, userID string, ttl time.Duration) []webapp.ICEServer {
	var out []webapp.ICEServer
	for _, s := range c.b.ICEServers(ctx, userID, ttl) {
		out = append(out, webapp.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

func (c connTester) StartProbe(offer string, servers []webapp.ICEServer) (string, string, error) {
	is := make([]sfu.ICEServer, 0, len(servers))
	for _, s := range servers {
		is = append(is, sfu.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	id, answer, err := c.b.Media.StartProbe(offer, is)
	switch {
	case errors.Is(err, media.ErrTooManyProbes):
		err = fmt.Errorf("%w: %w", webapp.ErrTooManyProbes, err)
	case errors.Is(err, sfu.ErrBadSDP), errors.Is(err, sfu.ErrNoCommonCodec), errors.Is(err, sfu.ErrSDPTooLarge):
		err = fmt.Errorf("%w: %w", webapp.ErrBadOffer, err)
	}
	return id, answer, err
}

func (c connTester) ProbeReport(id string, r *ladder.Report) (ladder.Ladder, error) {
	l, err := c.b.Media.ProbeReport(id, r)
	if errors.Is(err, media.ErrUnknownProbe) {
		err = fmt.Errorf("%w: %w", webapp.ErrUnknownProbe, err)
	}
	return l, err
}
