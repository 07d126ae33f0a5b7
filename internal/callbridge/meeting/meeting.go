// Package meeting is the Call Bridge's meetings: spaces (CMS coSpaces) and their members,
// kept in the store; temporary guest accounts for people who join with a call ID and
// passcode; the meeting protocol that browsers speak over XMPP (namespace
// urn:confab:meeting:1, described in docs/protocol.md); and the calls and call legs that
// meetings are in the REST API (/calls, /callLegs).
//
// A Service holds it all. The spaces live in the store and are shared by every Call Bridge
// that uses the database; guests, calls and participants live in the memory of the Call
// Bridge whose component link carried the joins, and are gone when the process ends.
//
// # Concurrency
//
// A Service is safe for concurrent use: Handle and SessionEnded run on the component link's
// read goroutine, the REST API's handlers call the same Service from theirs, and logins ask
// GuestPassword from wherever the login relay answers. The locking is:
//
//   - mu guards every in-memory structure (calls, participants, guests, the
//     outgoing queue). It is held only for short, non-blocking work: never while the store is
//     queried, never while a stanza is written. The throttle has a lock of its own, a leaf
//     taken under mu.
//   - spaceMu orders joins against the deletion of spaces: a join holds it for reading from
//     the moment it reads the space from the store until the participant is in the call;
//     DeleteSpace holds it for writing while it deletes the space and ends its call. Without
//     it, a join could start a call in a space deleted a moment before. Order: spaceMu, then
//     mu.
//   - Stanzas and events (EventSink) that a change produces are appended to a queue under mu,
//     in the order of the changes, and written (recorded) after mu is released by whichever
//     goroutine finds the queue unattended (flush). A slow link therefore delays only the
//     goroutine writing to it, never a reader of /calls, and every participant sees events in
//     the order they happened, as does the EventSink.
package meeting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/throttle"
)

// NS is the namespace of the meeting protocol.
const NS = "urn:confab:meeting:1"

// Sender is where stanzas go: the Call Bridge's component link (*component.Conn satisfies
// it). Write takes one or more complete, serialised elements in jabber:component:accept.
type Sender interface {
	Write(b []byte) error
}

// Defaults applied when an Options field is zero.
const (
	DefaultGuestTTL      = 2 * time.Minute
	DefaultMaxFailures   = 5
	DefaultFailureWindow = time.Minute
	DefaultBlock         = time.Minute
	DefaultMaxBlock      = time.Hour
)

// Options configure a Service.
type Options struct {
	// Store holds the spaces; required.
	Store *store.Store
	// Logger receives joins, leaves, refusals and calls; nil discards.
	Logger *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Addresses returns the XMPP domain and the Call Bridge's component JID (e.g.
	// example.com and cb1.example.com). When nil they are read from the store's XMPP settings
	// on each use, so that a change through the API takes effect at once.
	Addresses func(ctx context.Context) (domain, callBridgeJID string, err error)
	// LinkUp reports whether the Call Bridge's link to its XMPP server is up; while it is
	// not, JoinAsGuest fails with ErrNoCallBridge (the guest could not log in anyway). Nil
	// means always up.
	LinkUp func() bool
	// GuestTTL is how long a guest account waits for its login (DefaultGuestTTL if zero).
	GuestTTL time.Duration
	// RejoinTTL is how long a guest's rejoin credential is good for (DefaultRejoinTTL if
	// zero).
	RejoinTTL time.Duration
	// MaxFailures wrong call IDs or passcodes from one source within FailureWindow block it
	// for Block, doubling with each further block up to MaxBlock (defaults above).
	MaxFailures     int
	FailureWindow   time.Duration
	Block, MaxBlock time.Duration
	// Events receives the events of calls and call legs (the Call Detail Records); nil
	// discards them.
	Events EventSink
}

// Service is the meetings of one Call Bridge. Create it with New.
type Service struct {
	st        *store.Store
	log       *slog.Logger
	now       func() time.Time
	addresses func(ctx context.Context) (string, string, error)
	linkUp    func() bool
	guestTTL  time.Duration
	rejoinTTL time.Duration
	events    EventSink

	keyMu sync.Mutex // guards key; a leaf, held while the store makes the key
	key   []byte     // signs guests' rejoin credentials (rejoin.go)

	spaceMu sync.RWMutex // see the package comment

	mu       sync.Mutex
	calls    map[string]*call        // by space id
	callByID map[string]*call        // by call id
	legs     map[string]*participant // by participant (call leg) id
	guests   map[string]*guest       // by username (localpart)
	throttle *throttle.Throttle      // guesses of call IDs and passcodes, by source
	// callThrottle counts wrong passcodes per call ID, from anyone: looser than the
	// per-source throttle, since anyone who knows a call ID can spend its budget.
	callThrottle *throttle.Throttle
	sources      map[string]string // bare JID → the throttle key of the address it logged in from
	lastSweep    time.Time
	outbox       []outgoing
	flushing     bool
	legEnds      []LegEnd     // told to legObserver by flush, after mu is released
	legObs       func(LegEnd) // see ObserveLegs
}

// outgoing is a stanza waiting to be written to to, or (ev not nil) an event waiting to be
// recorded.
type outgoing struct {
	to Sender
	b  []byte
	ev *Event
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{
		st:        o.Store,
		log:       o.Logger,
		now:       o.Now,
		addresses: o.Addresses,
		linkUp:    o.LinkUp,
		guestTTL:  o.GuestTTL,
		rejoinTTL: o.RejoinTTL,
		events:    o.Events,
		calls:     map[string]*call{},
		callByID:  map[string]*call{},
		legs:      map[string]*participant{},
		guests:    map[string]*guest{},
		sources:   map[string]string{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.addresses == nil {
		s.addresses = s.storeAddresses
	}
	if s.guestTTL <= 0 {
		s.guestTTL = DefaultGuestTTL
	}
	if s.rejoinTTL <= 0 {
		s.rejoinTTL = DefaultRejoinTTL
	}
	s.throttle = throttle.New(
		throttle.Config{MaxFailures: o.MaxFailures, Window: o.FailureWindow, Block: o.Block, MaxBlock: o.MaxBlock},
		throttle.Config{MaxFailures: DefaultMaxFailures, Window: DefaultFailureWindow, Block: DefaultBlock, MaxBlock: DefaultMaxBlock},
		s.now)
	s.callThrottle = throttle.New(throttle.Config{},
		throttle.Config{MaxFailures: 20, Window: 5 * time.Minute, Block: 30 * time.Second, MaxBlock: 10 * time.Minute}, s.now)
	return s
}

// errNotConfigured is returned by storeAddresses while the XMPP settings are incomplete.
var errNotConfigured = errors.New("meeting: the XMPP domain or the Call Bridge's unique name is not set")

// storeAddresses reads the domain and component JID from the store's XMPP settings.
func (s *Service) storeAddresses(ctx context.Context) (string, string, error) {
	c, err := s.st.XMPPSettings(ctx)
	if err != nil {
		return "", "", err
	}
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(c.Domain), "."))
	name := strings.ToLower(strings.TrimSpace(c.UniqueName))
	if domain == "" || name == "" {
		return "", "", errNotConfigured
	}
	return domain, name + "." + domain, nil
}

// SpaceJID returns the XMPP address of a space, <id>@<callBridgeJid>.
func (s *Service) SpaceJID(ctx context.Context, spaceID string) (string, error) {
	_, cb, err := s.addresses(ctx)
	if err != nil {
		return "", fmt.Errorf("meeting: space address: %w", err)
	}
	return spaceID + "@" + cb, nil
}

// queue appends a stanza for to; the caller holds mu and calls flush after releasing it.
func (s *Service) queue(to Sender, b []byte) {
	if to == nil || len(b) == 0 {
		return
	}
	s.outbox = append(s.outbox, outgoing{to: to, b: b})
}

// record queues an event; the caller holds mu and calls flush after releasing it.
func (s *Service) record(e Event) {
	if s.events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	s.outbox = append(s.outbox, outgoing{ev: &e})
}

// flush writes the queued stanzas, unless another goroutine is already doing so (it will
// write these too). Consecutive stanzas for the same Sender go out in one Write. It must be
// called without mu held.
func (s *Service) flush() {
	for {
		s.mu.Lock()
		if s.flushing || len(s.outbox) == 0 && len(s.legEnds) == 0 {
			s.mu.Unlock()
			return
		}
		s.flushing = true
		batch, ends, obs := s.outbox, s.legEnds, s.legObs
		s.outbox, s.legEnds = nil, nil
		s.mu.Unlock()

		for i := 0; i < len(batch); {
			if ev := batch[i].ev; ev != nil {
				s.events.Record(*ev)
				i++
				continue
			}
			j, b := i+1, batch[i].b
			for j < len(batch) && batch[j].ev == nil && batch[j].to == batch[i].to {
				b = append(b, batch[j].b...)
				j++
			}
			if err := batch[i].to.Write(b); err != nil {
				s.log.Warn("meeting: write to the XMPP server failed", "err", err)
			}
			i = j
		}
		for _, e := range ends {
			if obs != nil {
				obs(e)
			}
		}

		s.mu.Lock()
		s.flushing = false
		s.mu.Unlock()
	}
}
