package turnd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the TURN REST API scheme is HMAC-SHA1, as coturn implements it
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"confab.dev/confab/internal/secret"
)

// Credentials are a TURN username and password, as a WebRTC client takes them (an
// RTCIceServer's username and credential).
type Credentials struct {
	// Username is "<expiry unix time>:<user id>".
	Username string
	// Password is base64(HMAC-SHA1(shared secret, Username)).
	Password secret.Secret
	// Expires is when the server stops accepting them (second precision).
	Expires time.Time
}

// Errors of IssueCredentials.
var (
	// ErrNoSecret means no shared secret is configured, so no time-limited credentials can be
	// issued or checked.
	ErrNoSecret = errors.New("turnd: no shared secret")
	// ErrBadUserID means the user id is empty, too long, not UTF-8 or holds control
	// characters.
	ErrBadUserID = errors.New("turnd: bad user id")
)

// maxUserID bounds a user id, well within STUN's 513-byte USERNAME.
const maxUserID = 256

// IssueCredentials returns time-limited credentials for userID that are accepted until
// expires, in the scheme coturn implements with use-auth-secret and static-auth-secret (the
// "TURN REST API", draft-uberti-behave-turn-rest): the username is "<expiry>:<userID>", the
// password base64(HMAC-SHA1(sharedSecret, username)). Whoever holds the secret — this
// server, coturn, the Call Bridge — issues and checks them without talking to the others.
// The user id is what quotas and the allocation list go by.
func IssueCredentials(sharedSecret secret.Secret, userID string, expires time.Time) (Credentials, error) {
	if sharedSecret.IsZero() {
		return Credentials{}, ErrNoSecret
	}
	if err := checkUserID(userID); err != nil {
		return Credentials{}, err
	}
	expires = expires.Truncate(time.Second)
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + userID
	return Credentials{
		Username: username,
		Password: secret.New(restPassword(sharedSecret, username)),
		Expires:  expires,
	}, nil
}

// EnsureSecret returns the shared secret kept in file (its content, trimmed), making one
// (256 random bits, as text) and writing it there owner-only when the file does not exist
// or is empty. A server embedded beside a Call Bridge uses it when the operator set no
// secret: only the server and the Call Bridge, which issues the credentials, need it.
func EnsureSecret(file string) (secret.Secret, error) {
	if b, err := os.ReadFile(file); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return secret.New(s), nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return secret.Secret{}, fmt.Errorf("turn shared secret: %w", err)
	}
	s := rand.Text() + rand.Text()
	if err := os.WriteFile(file, []byte(s+"\n"), 0o600); err != nil {
		return secret.Secret{}, fmt.Errorf("turn shared secret: %w", err)
	}
	return secret.New(s), nil
}

func checkUserID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrBadUserID)
	case len(id) > maxUserID:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadUserID, maxUserID)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: not UTF-8", ErrBadUserID)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: control character", ErrBadUserID)
	}
	return nil
}

// restPassword is the password of a time-limited username.
func restPassword(sharedSecret secret.Secret, username string) string {
	mac := hmac.New(sha1.New, []byte(sharedSecret.Reveal()))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// parseRESTUsername splits a time-limited username, "<expiry>:<user id>" or a bare
// "<expiry>" (whose user id is then the username itself).
func parseRESTUsername(username string) (expires time.Time, userID string, ok bool) {
	ts, id, found := strings.Cut(username, ":")
	if ts == "" || len(ts) > 19 || strings.Trim(ts, "0123456789") != "" {
		return time.Time{}, "", false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	if !found || id == "" {
		id = username
	}
	return time.Unix(sec, 0), id, true
}
