package passhash

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"confab.dev/confab/internal/testenv"
)

func TestRoundTrip(t *testing.T) {
	for _, pw := range []string{"correct horse battery staple", "", "päßwörd ✓", strings.Repeat("x", 1000)} {
		enc, err := Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Errorf("Hash(%.10q) = %q, want the argon2id PHC prefix with the default parameters", pw, enc)
		}
		ok, err := Verify(enc, pw)
		if err != nil || !ok {
			t.Errorf("Verify(Hash(%.10q)) = %v, %v; want true, nil", pw, ok, err)
		}
		ok, err = Verify(enc, pw+"x")
		if err != nil || ok {
			t.Errorf("Verify with a wrong password = %v, %v; want false, nil", ok, err)
		}
		if NeedsRehash(enc) {
			t.Errorf("NeedsRehash(%q) = true for a fresh hash", enc)
		}
	}
}

func TestSaltsDiffer(t *testing.T) {
	a, _ := Hash("same")
	b, _ := Hash("same")
	if a == b {
		t.Errorf("two hashes of one password are equal (%q): the salt is not random", a)
	}
}

// The reference implementation's output (argon2 CLI: echo -n password | argon2 somesalt -id
// -t 2 -m 10 -p 1 -e) pins the encoding and the parameter reading.
const reference = "$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHQ$7FfsnA6vUe7qLpL/3Kqc3uR48ZJyFbUVt7jWZlf0Htk"

func TestKnownAnswer(t *testing.T) {
	if got := encode("password", []byte("somesalt"), 1024, 2, 1, 32); got != reference {
		t.Errorf("encode = %q, want %q", got, reference)
	}
	ok, err := Verify(reference, "password")
	if err != nil || !ok {
		t.Errorf("Verify(reference, password) = %v, %v; want true, nil", ok, err)
	}
	if !NeedsRehash(reference) {
		t.Errorf("NeedsRehash(reference) = false, want true (m=1024 is below the default)")
	}
}

func TestTampered(t *testing.T) {
	// Each of these changes one part of a valid string; none may verify.
	tests := []struct {
		name, enc string
	}{
		{"hash byte", strings.Replace(reference, "$7Ffs", "$7Gfs", 1)},
		{"salt", strings.Replace(reference, "c29tZXNhbHQ", "c29tZXNhbHR", 1)},
		{"memory", strings.Replace(reference, "m=1024", "m=1025", 1)},
		{"passes", strings.Replace(reference, "t=2", "t=3", 1)},
		{"lanes", strings.Replace(reference, "p=1", "p=2", 1)},
		{"truncated hash", reference[:len(reference)-4]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.enc == reference {
				t.Fatal("the test did not change the string")
			}
			ok, err := Verify(tt.enc, "password")
			if ok {
				t.Errorf("Verify(%q) = true, want false", tt.enc)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("Verify(%q) error = %v, want nil or ErrMalformed", tt.enc, err)
			}
		})
	}
}

func TestUnusableStrings(t *testing.T) {
	tests := []struct {
		name, enc string
		want      error
	}{
		{"argon2i", strings.Replace(reference, "argon2id", "argon2i", 1), ErrUnknownAlgorithm},
		{"bcrypt", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", ErrUnknownAlgorithm},
		{"empty", "", ErrMalformed},
		{"plain text", "password", ErrMalformed},
		{"no fields", "$argon2id", ErrMalformed},
		{"version 16", strings.Replace(reference, "v=19", "v=16", 1), ErrMalformed},
		{"missing p", strings.Replace(reference, ",p=1", "", 1), ErrMalformed},
		{"repeated m", strings.Replace(reference, "t=2", "m=2", 1), ErrMalformed},
		{"unknown parameter", strings.Replace(reference, "p=1", "x=1", 1), ErrMalformed},
		{"leading zero", strings.Replace(reference, "t=2", "t=02", 1), ErrMalformed},
		{"zero passes", strings.Replace(reference, "t=2", "t=0", 1), ErrMalformed},
		{"huge memory", strings.Replace(reference, "m=1024", "m=4194304", 1), ErrMalformed},
		{"bad base64", strings.Replace(reference, "c29tZXNhbHQ", "c29t*XNhbHQ", 1), ErrMalformed},
		{"short salt", strings.Replace(reference, "c29tZXNhbHQ", "c29t", 1), ErrMalformed},
		{"extra field", reference + "$x", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := Verify(tt.enc, "password")
			if ok || !errors.Is(err, tt.want) {
				t.Errorf("Verify(%q) = %v, %v; want false, %v", tt.enc, ok, err, tt.want)
			}
			if !NeedsRehash(tt.enc) {
				t.Errorf("NeedsRehash(%q) = false for an unusable string", tt.enc)
			}
		})
	}
}

// TestReferenceCLI checks interoperability both ways with the reference implementation's
// command-line tool (Debian package argon2).
func TestReferenceCLI(t *testing.T) {
	bin := testenv.LookPath(t, "argon2")
	for _, pw := range []string{"s3cret", "with space and ünïcode"} {
		cmd := exec.Command(bin, "someothersalt", "-id", "-t", "2", "-k", "19456", "-p", "1", "-e")
		cmd.Stdin = strings.NewReader(pw)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("argon2: %v", err)
		}
		enc := strings.TrimSpace(string(out))
		ok, err := Verify(enc, pw)
		if err != nil || !ok {
			t.Errorf("Verify(%q, %q) = %v, %v; want true, nil", enc, pw, ok, err)
		}
		if got := encode(pw, []byte("someothersalt"), 19456, 2, 1, 32); got != enc {
			t.Errorf("encode = %q, reference tool says %q", got, enc)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(reference)
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Fuzz(func(t *testing.T, s string) {
		ph, err := parse(s)
		if err != nil {
			return
		}
		if ph.m > maxMemory || ph.t > maxTime || ph.p > maxThreads || ph.m < 8*uint32(ph.p) {
			t.Errorf("parse(%q) accepted out-of-bounds parameters %+v", s, ph)
		}
		if len(ph.key) < minKeyLen || len(ph.salt) < minSaltLen {
			t.Errorf("parse(%q) accepted a short salt or hash", s)
		}
	})
}
