package callbridge

import (
	"context"
	"crypto/rand"
	"math/big"
	"strconv"

	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// EnsureDemoSpace returns the first space that matches "demo" (its name, URI or call ID),
// creating the demo space when there is none: "Demo space", URI "demo", open to anyone with
// its call ID and its six-digit passcode (Passcode.Reveal). `confab up` offers it on its
// first run, so that there is a meeting to join at once.
func (b *Bridge) EnsureDemoSpace(ctx context.Context) (store.CoSpace, error) {
	spaces, _, err := b.Meetings.ListSpaces(ctx, store.CoSpaceFilter{Text: "demo", Limit: 1})
	if err != nil {
		return store.CoSpace{}, err
	}
	if len(spaces) > 0 {
		return spaces[0], nil
	}
	return b.Meetings.CreateSpace(ctx, store.CoSpace{
		Name:            "Demo space",
		URI:             "demo",
		CallID:          randomDigits(9),
		Passcode:        secret.New(randomDigits(6)),
		NonMemberAccess: true,
	})
}

// randomDigits returns n random decimal digits, the first not zero (a call ID or a
// passcode that is typed).
func randomDigits(n int) string {
	s := ""
	for len(s) < n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		if s == "" && d.Int64() == 0 {
			continue // no leading zero
		}
		s += strconv.FormatInt(d.Int64(), 10)
	}
	return s
}
