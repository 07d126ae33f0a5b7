package users

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/store"
)

// The LDAP configuration objects, as the store keeps them.
type (
	// LDAPServer is a directory server (CMS /ldapServers).
	LDAPServer = store.LDAPServer
	// LDAPMapping holds the templates that make a user of an entry (CMS /ldapMappings).
	LDAPMapping = store.LDAPMapping
	// LDAPSource is what to import, from which server, with which mapping (CMS /ldapSources).
	LDAPSource = store.LDAPSource
	// LDAPSync is one run of the import (CMS /ldapSyncs).
	LDAPSync = store.LDAPSync
)

// validateLDAPServer checks a server's fields.
func validateLDAPServer(v *LDAPServer) error {
	switch {
	case v.Address == "":
		return fieldErr("address", "required")
	case len(v.Address) > 253 || strings.ContainsFunc(v.Address, func(r rune) bool { return r <= ' ' || r == '/' || r >= 0x7f }):
		return fieldErr("address", "not a host name or IP address")
	case v.PortNumber == 0:
		return fieldErr("portNumber", "required")
	case v.PortNumber < 1 || v.PortNumber > 65535:
		return fieldErr("portNumber", "not a port number")
	case len(v.Username) > 1024 || !isPrintable(v.Username):
		return fieldErr("username", "longer than 1024 bytes or contains control characters")
	case len(v.Password.Reveal()) > 1024:
		return fieldErr("password", "longer than 1024 bytes")
	}
	if ip := net.ParseIP(strings.Trim(v.Address, "[]")); ip == nil && strings.ContainsAny(v.Address, "[]:") {
		return fieldErr("address", "not a host name or IP address")
	}
	return nil
}

// LDAPServers returns a page of LDAP servers and how many there are.
func (s *Service) LDAPServers(ctx context.Context, offset, limit int) ([]LDAPServer, int, error) {
	return s.store.ListLDAPServers(ctx, offset, limit)
}

// LDAPServer returns an LDAP server (a *store.RefError if there is none).
func (s *Service) LDAPServer(ctx context.Context, id string) (LDAPServer, error) {
	return s.store.LDAPServer(ctx, id)
}

// CreateLDAPServer validates and stores a new LDAP server. Errors about a field are *FieldError.
func (s *Service) CreateLDAPServer(ctx context.Context, v LDAPServer) (LDAPServer, error) {
	if err := validateLDAPServer(&v); err != nil {
		return LDAPServer{}, err
	}
	return s.store.AddLDAPServer(ctx, v)
}

// UpdateLDAPServer lets fn change an LDAP server, validates the result and stores it.
func (s *Service) UpdateLDAPServer(ctx context.Context, id string, fn func(*LDAPServer) error) (LDAPServer, error) {
	return s.store.UpdateLDAPServer(ctx, id, func(v *LDAPServer) error {
		if err := fn(v); err != nil {
			return err
		}
		return validateLDAPServer(v)
	})
}

// DeleteLDAPServer deletes an LDAP server; ErrInUse while a source uses it.
func (s *Service) DeleteLDAPServer(ctx context.Context, id string) error {
	return s.store.DeleteLDAPServer(ctx, id)
}

// mapping is an LDAPMapping's templates, parsed; nil for an empty one.
type mapping struct {
	jid, name, email, cdrTag *Template
}

// parseMapping parses the templates of m. Errors are *FieldError naming the template.
func parseMapping(m *LDAPMapping) (mapping, error) {
	var out mapping
	for _, f := range []struct {
		field string
		src   string
		dst   **Template
	}{
		{"jidMapping", m.JIDMapping, &out.jid},
		{"nameMapping", m.NameMapping, &out.name},
		{"emailMapping", m.EmailMapping, &out.email},
		{"cdrTagMapping", m.CDRTagMapping, &out.cdrTag},
	} {
		if f.src == "" {
			continue
		}
		t, err := ParseTemplate(f.src)
		if err != nil {
			return mapping{}, &FieldError{Field: f.field, Err: err}
		}
		*f.dst = t
	}
	if out.jid == nil {
		return mapping{}, fieldErr("jidMapping", "required")
	}
	if len(out.jid.Attributes()) == 0 {
		return mapping{}, fieldErr("jidMapping", "uses no attribute, so every user would get the same JID")
	}
	if out.email == nil {
		out.email, _ = ParseTemplate("$mail$") // CMS takes the address from mail
	}
	return out, nil
}

// attributes are the LDAP attributes the mapping reads.
func (m mapping) attributes() []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range []*Template{m.jid, m.name, m.email, m.cdrTag} {
		if t == nil {
			continue
		}
		for _, a := range t.Attributes() {
			if !seen[strings.ToLower(a)] {
				seen[strings.ToLower(a)] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// LDAPMappings returns a page of LDAP mappings and how many there are.
func (s *Service) LDAPMappings(ctx context.Context, offset, limit int) ([]LDAPMapping, int, error) {
	return s.store.ListLDAPMappings(ctx, offset, limit)
}

// LDAPMapping returns an LDAP mapping (a *store.RefError if there is none).
func (s *Service) LDAPMapping(ctx context.Context, id string) (LDAPMapping, error) {
	return s.store.LDAPMapping(ctx, id)
}

// CreateLDAPMapping validates (parses the templates of) and stores a new LDAP mapping.
func (s *Service) CreateLDAPMapping(ctx context.Context, v LDAPMapping) (LDAPMapping, error) {
	if _, err := parseMapping(&v); err != nil {
		return LDAPMapping{}, err
	}
	return s.store.AddLDAPMapping(ctx, v)
}

// UpdateLDAPMapping lets fn change an LDAP mapping, validates the result and stores it.
func (s *Service) UpdateLDAPMapping(ctx context.Context, id string, fn func(*LDAPMapping) error) (LDAPMapping, error) {
	return s.store.UpdateLDAPMapping(ctx, id, func(v *LDAPMapping) error {
		if err := fn(v); err != nil {
			return err
		}
		_, err := parseMapping(v)
		return err
	})
}

// DeleteLDAPMapping deletes an LDAP mapping; ErrInUse while a source uses it.
func (s *Service) DeleteLDAPMapping(ctx context.Context, id string) error {
	return s.store.DeleteLDAPMapping(ctx, id)
}

// validateLDAPSource checks the fields of a source (its references are checked by the store).
func validateLDAPSource(v *LDAPSource) error {
	switch {
	case v.Server == "":
		return fieldErr("server", "required")
	case v.Mapping == "":
		return fieldErr("mapping", "required")
	case v.BaseDN == "":
		return fieldErr("baseDn", "required")
	case len(v.BaseDN) > 1024:
		return fieldErr("baseDn", "longer than 1024 bytes")
	case len(v.Filter) > 4096:
		return fieldErr("filter", "longer than 4096 bytes")
	}
	if _, err := ldap.ParseDN(v.BaseDN); err != nil {
		return fieldErr("baseDn", "not a distinguished name: %v", err)
	}
	if v.Filter != "" {
		if _, err := ldap.CompileFilter(v.Filter); err != nil {
			return fieldErr("filter", "not an LDAP filter: %v", err)
		}
	}
	return nil
}

// LDAPSources returns a page of LDAP sources and how many there are.
func (s *Service) LDAPSources(ctx context.Context, offset, limit int) ([]LDAPSource, int, error) {
	return s.store.ListLDAPSources(ctx, offset, limit)
}

// LDAPSource returns an LDAP source (a *store.RefError if there is none).
func (s *Service) LDAPSource(ctx context.Context, id string) (LDAPSource, error) {
	return s.store.LDAPSource(ctx, id)
}

// CreateLDAPSource validates and stores a new LDAP source; a *store.RefError if its server or
// mapping does not exist.
func (s *Service) CreateLDAPSource(ctx context.Context, v LDAPSource) (LDAPSource, error) {
	if err := validateLDAPSource(&v); err != nil {
		return LDAPSource{}, err
	}
	return s.store.AddLDAPSource(ctx, v)
}

// UpdateLDAPSource lets fn change an LDAP source, validates the result and stores it.
func (s *Service) UpdateLDAPSource(ctx context.Context, id string, fn func(*LDAPSource) error) (LDAPSource, error) {
	return s.store.UpdateLDAPSource(ctx, id, func(v *LDAPSource) error {
		if err := fn(v); err != nil {
			return err
		}
		return validateLDAPSource(v)
	})
}

// DeleteLDAPSource deletes an LDAP source and the users imported through it.
func (s *Service) DeleteLDAPSource(ctx context.Context, id string) error {
	if err := s.store.DeleteLDAPSource(ctx, id); err != nil {
		return err
	}
	s.log.Info("ldap source deleted with its users", "source", id)
	return nil
}

// ldapConn is a connection to an LDAP server that closes when its context ends.
type ldapConn struct {
	*ldap.Conn
	addr  string
	close func()
}

// dialLDAP connects to srv: plain TCP, or TLS from the first byte when it is secure, with the
// server's certificate verified against the configured roots and its address.
func (s *Service) dialLDAP(ctx context.Context, srv LDAPServer) (*ldapConn, error) {
	addr := net.JoinHostPort(strings.Trim(srv.Address, "[]"), strconv.Itoa(srv.PortNumber))
	dctx, cancel := context.WithTimeoutCause(ctx, s.ldapTimeout, fmt.Errorf("no answer from ldap server %s within %v", addr, s.ldapTimeout))
	defer cancel()
	var c net.Conn
	var err error
	if srv.Secure {
		d := tls.Dialer{Config: &tls.Config{
			RootCAs:    s.rootCAs,
			ServerName: strings.Trim(srv.Address, "[]"),
			MinVersion: tls.VersionTLS12,
		}}
		c, err = d.DialContext(dctx, "tcp", addr)
	} else {
		var d net.Dialer
		c, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		if cause := context.Cause(dctx); cause != nil && dctx.Err() != nil && ctx.Err() == nil {
			err = cause
		}
		return nil, fmt.Errorf("connect to ldap server %s: %w", addr, err)
	}
	conn := ldap.NewConn(c, srv.Secure)
	conn.Start()
	conn.SetTimeout(s.ldapTimeout)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return &ldapConn{Conn: conn, addr: addr, close: func() { stop(); conn.Close() }}, nil
}

// ldapCheck checks an LDAP user's password with a bind as the user's DN. A wrong password is
// ErrBadPassword; a server that cannot be reached or fails otherwise is a temporary error.
func (s *Service) ldapCheck(ctx context.Context, u store.User, password string) error {
	src, err := s.store.LDAPSource(ctx, u.LDAPSource)
	if err != nil {
		return fmt.Errorf("users: ldap source of %s: %w", u.JID, err)
	}
	srv, err := s.store.LDAPServer(ctx, src.Server)
	if err != nil {
		return fmt.Errorf("users: ldap server of %s: %w", u.JID, err)
	}
	if password == "" || u.LDAPDN == "" {
		return loginrelay.ErrBadPassword // an empty password would be an anonymous bind
	}
	conn, err := s.dialLDAP(ctx, srv)
	if err != nil {
		return fmt.Errorf("users: check password of %s: %w", u.JID, err)
	}
	defer conn.close()
	err = conn.Bind(u.LDAPDN, password)
	switch {
	case err == nil:
		return nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		return loginrelay.ErrBadPassword
	}
	return fmt.Errorf("users: bind as %s at %s: %w", u.LDAPDN, conn.addr, err)
}

// isLDAPEntryError tells errors about one entry (skip it) from errors about the sync.
func isLDAPEntryError(err error) bool {
	var m *MissingAttributeError
	return errors.As(err, &m) || errors.Is(err, errBadEntryJID)
}
