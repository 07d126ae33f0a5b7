package store

import (
	"context"
	"database/sql"
	"fmt"

	"confab.dev/confab/internal/secret"
)

// XMPPSettings is the Call Bridge's XMPP settings (CMS /system/configuration/xmpp). An empty
// field is unset.
type XMPPSettings struct {
	UniqueName            string        // the component's name, the first label of its JID
	Domain                string        // the XMPP domain
	ServerAddressOverride string        // host[:port] to connect to instead of the SRV lookup
	SharedSecret          secret.Secret // the XEP-0114 handshake secret
}

// XMPPSettings returns the settings; all fields are empty if they were never set.
func (s *Store) XMPPSettings(ctx context.Context) (XMPPSettings, error) {
	return s.xmppSettings(ctx, s.db, "")
}

func (s *Store) xmppSettings(ctx context.Context, q execer, suffix string) (XMPPSettings, error) {
	var c XMPPSettings
	var sec string
	err := s.queryRow(ctx, q, `SELECT unique_name, domain, server_address_override, shared_secret
		FROM xmpp_config WHERE id = 1`+suffix).Scan(&c.UniqueName, &c.Domain, &c.ServerAddressOverride, &sec)
	if err != nil {
		return XMPPSettings{}, fmt.Errorf("store: read xmpp config: %w", err)
	}
	c.SharedSecret = secret.New(sec)
	return c, nil
}

// SetXMPPSettings replaces the settings.
func (s *Store) SetXMPPSettings(ctx context.Context, c XMPPSettings) error {
	return s.setXMPPSettings(ctx, s.db, c)
}

func (s *Store) setXMPPSettings(ctx context.Context, q execer, c XMPPSettings) error {
	_, err := s.exec(ctx, q, `UPDATE xmpp_config SET unique_name = ?, domain = ?, server_address_override = ?,
		shared_secret = ?, updated_at = ? WHERE id = 1`,
		c.UniqueName, c.Domain, c.ServerAddressOverride, c.SharedSecret.Reveal(), s.stamp())
	if err != nil {
		return fmt.Errorf("store: write xmpp config: %w", err)
	}
	return nil
}

// UpdateXMPPSettings reads the settings, lets fn change them, and writes the result, all in
// one transaction, so that two concurrent partial updates (an API PUT that changes only the
// domain, another only the secret) both take effect. If fn returns an error nothing is
// written and that error is returned. It returns the settings as written.
func (s *Store) UpdateXMPPSettings(ctx context.Context, fn func(*XMPPSettings) error) (XMPPSettings, error) {
	var out XMPPSettings
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := s.xmppSettings(ctx, tx, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		if err := s.setXMPPSettings(ctx, tx, c); err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return XMPPSettings{}, err
	}
	return out, nil
}
