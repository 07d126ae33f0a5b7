package users

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/xdg-go/scram"
	"github.com/xdg-go/stringprep"
	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/passhash"
	"confab.dev/confab/internal/secret"
)

// maxPasswordBytes is the longest password accepted: the login relay refuses longer PLAIN
// passwords, so a longer one could never be used.
const maxPasswordBytes = 255

// credentials are what a local user's password is stored as.
type credentials struct {
	sha1, sha256 string // encodeSCRAM of the SCRAM-SHA-1 and SCRAM-SHA-256 keys
	hash         string // Argon2id PHC string of the SASLprep-ed password, for PLAIN
}

// preparePassword applies SASLprep [RFC 4013], as a SCRAM client does and as a PLAIN server
// should, so that the hash and the SCRAM keys are of the same string.
func preparePassword(pw string) (string, error) {
	if len(pw) > maxPasswordBytes {
		return "", fieldErr("password", "longer than %d bytes", maxPasswordBytes)
	}
	p, err := stringprep.SASLprep.Prepare(pw)
	if err != nil {
		return "", fieldErr("password", "contains characters a password may not (SASLprep)")
	}
	if p == "" {
		return "", fieldErr("password", "empty")
	}
	return p, nil
}

func (s *Service) newCredentials(password secret.Secret) (credentials, error) {
	pw, err := preparePassword(password.Reveal())
	if err != nil {
		return credentials{}, err
	}
	var c credentials
	for _, m := range []struct {
		hash scram.HashGeneratorFcn
		dst  *string
	}{{scram.SHA1, &c.sha1}, {scram.SHA256, &c.sha256}} {
		k, err := deriveSCRAM(m.hash, pw, randomSalt(), s.iters)
		if err != nil {
			return credentials{}, err
		}
		*m.dst = encodeSCRAM(k)
	}
	if c.hash, err = passhash.Hash(pw); err != nil {
		return credentials{}, err
	}
	return c, nil
}

func randomSalt() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on supported platforms
	return b
}

// deriveSCRAM computes the stored keys of password (SASLprep-ed by the scram client).
func deriveSCRAM(hash scram.HashGeneratorFcn, password string, salt []byte, iters int) (scram.StoredCredentials, error) {
	c, err := hash.NewClient("", password, "")
	if err != nil {
		return scram.StoredCredentials{}, fieldErr("password", "contains characters a password may not (SASLprep)")
	}
	k, err := c.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iters})
	if err != nil {
		return scram.StoredCredentials{}, fmt.Errorf("users: derive scram keys: %w", err)
	}
	return k, nil
}

var b64 = base64.RawStdEncoding.Strict()

// encodeSCRAM writes stored keys as "iterations$salt$storedKey$serverKey" (unpadded base64).
func encodeSCRAM(c scram.StoredCredentials) string {
	return strconv.Itoa(c.Iters) + "$" + b64.EncodeToString([]byte(c.Salt)) + "$" +
		b64.EncodeToString(c.StoredKey) + "$" + b64.EncodeToString(c.ServerKey)
}

var errBadSCRAM = errors.New("users: malformed stored scram keys")

func decodeSCRAM(s string) (scram.StoredCredentials, error) {
	f := strings.Split(s, "$")
	if len(f) != 4 {
		return scram.StoredCredentials{}, errBadSCRAM
	}
	iters, err := strconv.Atoi(f[0])
	if err != nil || iters < 1 {
		return scram.StoredCredentials{}, errBadSCRAM
	}
	var parts [3][]byte
	for i := range parts {
		if parts[i], err = b64.DecodeString(f[i+1]); err != nil || len(parts[i]) == 0 {
			return scram.StoredCredentials{}, errBadSCRAM
		}
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(parts[0]), Iters: iters},
		StoredKey:  parts[1],
		ServerKey:  parts[2],
	}, nil
}

// Username errors.
var (
	errForeignDomain = errors.New("the domain is not this server's XMPP domain")
	errBadLocalpart  = errors.New("not a valid JID localpart")
)

// localpart returns the normalised localpart (PRECIS UsernameCaseMapped [RFC 8265], as JIDs
// use it [RFC 7622]) of a username given as "alice" or "alice@domain". domain is the XMPP
// domain, already lower-case; "" accepts any domain.
func localpart(username, domain string) (string, error) {
	if username == "" || len(username) > 1023+1+1023 {
		return "", errBadLocalpart
	}
	if strings.Contains(username, "@") {
		j, err := jid.Parse(username)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			return "", errBadLocalpart
		}
		if domain != "" && !strings.EqualFold(j.Domainpart(), domain) {
			return "", errForeignDomain
		}
		return j.Localpart(), nil
	}
	if domain == "" {
		domain = "domain.invalid"
	}
	j, err := jid.New(username, domain, "")
	if err != nil || j.Localpart() == "" {
		return "", errBadLocalpart
	}
	return j.Localpart(), nil
}

// localJID is the bare JID of a new local user named username in domain.
func localJID(username, domain string) (string, error) {
	if domain == "" && !strings.Contains(username, "@") {
		return "", errors.New("the XMPP domain is not set: set it first, or give the username as user@domain")
	}
	local, err := localpart(username, domain)
	if err != nil {
		return "", err
	}
	if isGuestName(local) {
		return "", errors.New("names of the form guest<digits> are reserved for guest accounts")
	}
	if domain == "" {
		_, d, _ := strings.Cut(username, "@")
		j, err := jid.New("", d, "")
		if err != nil {
			return "", errBadLocalpart
		}
		domain = j.Domainpart()
	}
	return local + "@" + domain, nil
}

// isGuestName reports whether local is a temporary guest account's: "guest" and digits.
func isGuestName(local string) bool {
	digits, ok := strings.CutPrefix(local, "guest")
	return ok && digits != "" && strings.Trim(digits, "0123456789") == ""
}

// isPrintable reports whether s is valid UTF-8 without control characters.
func isPrintable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}
