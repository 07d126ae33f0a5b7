// Package roster keeps the XMPP server's rosters and presence subscriptions [RFC 6121 §2,
// §3]: per account, its contacts with their name, groups and subscription state. The XMPP
// server holds no other user data. Store is the seam: SQLite in the server's data directory
// now (OpenSQLite), a shared store when XMPP servers cluster; Memory for tests.
package roster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
)

// Subscription states of an item [RFC 6121 §2.1.2.5].
const (
	None = "none"
	To   = "to"   // the owner sees the contact's presence
	From = "from" // the contact sees the owner's presence
	Both = "both"
)

// Item is one contact in an owner's roster.
type Item struct {
	// JID is the contact's bare JID.
	JID string
	// Name and Groups are what the owner's client set.
	Name   string
	Groups []string
	// Subscription is None, To, From or Both.
	Subscription string
	// Ask: the owner asked to see the contact's presence and awaits an answer (pending out).
	Ask bool
	// PendingIn: the contact asked to see the owner's presence; the owner has not answered.
	PendingIn bool
	// Listed: the owner's client put the contact in its roster (a roster set, or an outbound
	// subscription); an item that only holds a pending inbound request is not listed.
	Listed bool
}

// HasTo reports whether the owner sees the contact's presence.
func (it Item) HasTo() bool { return it.Subscription == To || it.Subscription == Both }

// HasFrom reports whether the contact sees the owner's presence.
func (it Item) HasFrom() bool { return it.Subscription == From || it.Subscription == Both }

// With returns the subscription state with to and from set as given.
func With(to, from bool) string {
	switch {
	case to && from:
		return Both
	case to:
		return To
	case from:
		return From
	}
	return None
}

// ErrNotFound is returned by Item for a contact not in the roster.
var ErrNotFound = errors.New("roster: no such item")

// Store keeps rosters. Its methods are safe for concurrent use.
type Store interface {
	// Items returns an owner's items, ordered by JID.
	Items(ctx context.Context, owner string) ([]Item, error)
	// Item returns one item, or ErrNotFound.
	Item(ctx context.Context, owner, contact string) (Item, error)
	// Put creates or replaces an item.
	Put(ctx context.Context, owner string, it Item) error
	// Delete removes an item; removing one that is not there is not an error.
	Delete(ctx context.Context, owner, contact string) error
	// Close releases the store.
	Close() error
}

// Memory is a Store in memory, for tests and for a server without a data directory.
type Memory struct {
	mu sync.Mutex
	m  map[string]map[string]Item
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{m: make(map[string]map[string]Item)} }

// Items implements Store.
func (s *Memory) Items(_ context.Context, owner string) ([]Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Item
	for _, it := range s.m[owner] {
		it.Groups = slices.Clone(it.Groups)
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b Item) int { return strings.Compare(a.JID, b.JID) })
	return out, nil
}

// Item implements Store.
func (s *Memory) Item(_ context.Context, owner, contact string) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.m[owner][contact]
	if !ok {
		return Item{}, ErrNotFound
	}
	it.Groups = slices.Clone(it.Groups)
	return it, nil
}

// Put implements Store.
func (s *Memory) Put(_ context.Context, owner string, it Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[owner] == nil {
		s.m[owner] = make(map[string]Item)
	}
	it.Groups = slices.Clone(it.Groups)
	s.m[owner][it.JID] = it
	return nil
}

// Delete implements Store.
func (s *Memory) Delete(_ context.Context, owner, contact string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m[owner], contact)
	return nil
}

// Close implements Store.
func (s *Memory) Close() error { return nil }
