// Package passhash hashes passwords with Argon2id [RFC 9106] and encodes the result in the
// PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// where salt and hash are unpadded standard base64. Verify reads the parameters from the
// string, so hashes made with older parameters keep verifying after the defaults change.
// The defaults are OWASP's moderate recommendation: 19 MiB of memory, two passes, one lane.
package passhash

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// The parameters of new hashes.
const (
	Memory  = 19 * 1024 // KiB
	Time    = 2
	Threads = 1
	saltLen = 16
	keyLen  = 32
)

// Bounds on the parameters Verify accepts, so that a tampered or hostile string cannot make a
// single verification take gigabytes of memory or minutes of CPU.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	minKeyLen  = 16
	maxKeyLen  = 64
	minSaltLen = 8
	maxSaltLen = 64
)

// Errors that Verify returns for strings it cannot use. A wrong password is not an error.
var (
	ErrUnknownAlgorithm = errors.New("passhash: unknown algorithm")
	ErrMalformed        = errors.New("passhash: malformed hash string")
)

// b64 is the PHC encoding: standard alphabet, no padding; Strict rejects non-canonical
// trailing bits so each hash has exactly one spelling.
var b64 = base64.RawStdEncoding.Strict()

// Hash returns the PHC string of password under a fresh random salt.
func Hash(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passhash: salt: %w", err)
	}
	return encode(password, salt, Memory, Time, Threads, keyLen), nil
}

func encode(password string, salt []byte, m, t uint32, p uint8, n uint32) string {
	key := argon2.IDKey([]byte(password), salt, t, m, p, n)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches the PHC string encoded. The comparison of the
// derived keys is constant-time. It returns an error (ErrUnknownAlgorithm, ErrMalformed) only
// when encoded cannot be used; a wrong password is (false, nil).
func Verify(encoded, password string) (bool, error) {
	ph, err := parse(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), ph.salt, ph.t, ph.m, ph.p, uint32(len(ph.key)))
	return subtle.ConstantTimeCompare(key, ph.key) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters other than the current ones,
// so that a caller holding the password (just verified) can store a fresh hash.
func NeedsRehash(encoded string) bool {
	ph, err := parse(encoded)
	return err != nil || ph.m != Memory || ph.t != Time || ph.p != Threads ||
		len(ph.salt) != saltLen || len(ph.key) != keyLen
}

type phc struct {
	m, t      uint32
	p         uint8
	salt, key []byte
}

func parse(encoded string) (phc, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	f := strings.Split(encoded, "$")
	if len(f) < 2 || f[0] != "" {
		return phc{}, fmt.Errorf("%w: no $id prefix", ErrMalformed)
	}
	if f[1] != "argon2id" {
		return phc{}, fmt.Errorf("%w %q", ErrUnknownAlgorithm, f[1])
	}
	if len(f) != 6 {
		return phc{}, fmt.Errorf("%w: want 6 $-separated fields, got %d", ErrMalformed, len(f))
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, fmt.Errorf("%w: unsupported version %q", ErrMalformed, f[2])
	}
	var ph phc
	var seen [3]bool
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return phc{}, fmt.Errorf("%w: want m, t and p parameters", ErrMalformed)
	}
	for _, kv := range params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return phc{}, fmt.Errorf("%w: parameter %q", ErrMalformed, kv)
		}
		// Decimal without sign or leading zeros, as the PHC format requires.
		if v == "" || (len(v) > 1 && v[0] == '0') || strings.ContainsAny(v, "+-") {
			return phc{}, fmt.Errorf("%w: parameter %q", ErrMalformed, kv)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return phc{}, fmt.Errorf("%w: parameter %q", ErrMalformed, kv)
		}
		switch {
		case k == "m" && !seen[0] && n >= 8 && n <= maxMemory:
			ph.m, seen[0] = uint32(n), true
		case k == "t" && !seen[1] && n >= 1 && n <= maxTime:
			ph.t, seen[1] = uint32(n), true
		case k == "p" && !seen[2] && n >= 1 && n <= maxThreads:
			ph.p, seen[2] = uint8(n), true
		default:
			return phc{}, fmt.Errorf("%w: parameter %q unknown, repeated or out of range", ErrMalformed, kv)
		}
	}
	if ph.m < 8*uint32(ph.p) {
		return phc{}, fmt.Errorf("%w: memory below 8 KiB per lane", ErrMalformed)
	}
	var err error
	if ph.salt, err = b64.DecodeString(f[4]); err != nil || len(ph.salt) < minSaltLen || len(ph.salt) > maxSaltLen {
		return phc{}, fmt.Errorf("%w: salt", ErrMalformed)
	}
	if ph.key, err = b64.DecodeString(f[5]); err != nil || len(ph.key) < minKeyLen || len(ph.key) > maxKeyLen {
		return phc{}, fmt.Errorf("%w: hash", ErrMalformed)
	}
	return ph, nil
}
