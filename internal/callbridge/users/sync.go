package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"mellium.im/xmpp/jid"

	"confab.dev/confab/internal/store"
)

// Failure reasons of a sync, as CMS names them.
const (
	SyncSourceDoesNotExist = "ldapSourceDoesNotExist"
	SyncClashOccurred      = "clashOccurred"
	SyncLDAPError          = "ldapError"
)

// ldapPageSize is the page size of sync searches (RFC 2696 paged results).
const ldapPageSize = 500

// StartSync queues a sync of one source (or of every source when sourceID is empty) and
// returns its record, state pending. A removeWhenFinished sync's record is deleted when it
// finishes. It returns a *store.RefError if the source does not exist and ErrTooManySyncs if
// the queue is full.
func (s *Service) StartSync(ctx context.Context, sourceID string, removeWhenFinished bool) (LDAPSync, error) {
	v, err := s.store.AddLDAPSync(ctx, sourceID, removeWhenFinished, maxPendingSyncs)
	if errors.Is(err, store.ErrInUse) {
		return LDAPSync{}, fmt.Errorf("%w: %w", ErrTooManySyncs, err)
	}
	if err != nil {
		return LDAPSync{}, err
	}
	select {
	case s.kick <- struct{}{}:
	default: // the worker has been told already
	}
	return v, nil
}

// LDAPSync returns a sync's record (ErrNotFound if there is none).
func (s *Service) LDAPSync(ctx context.Context, id string) (LDAPSync, error) {
	return s.store.LDAPSync(ctx, id)
}

// LDAPSyncs returns a page of sync records, oldest first, and how many there are.
func (s *Service) LDAPSyncs(ctx context.Context, offset, limit int) ([]LDAPSync, int, error) {
	return s.store.ListLDAPSyncs(ctx, offset, limit)
}

// CancelSync cancels a pending sync or forgets a finished one; ErrInUse if it is running.
func (s *Service) CancelSync(ctx context.Context, id string) error {
	return s.store.DeleteLDAPSync(ctx, id)
}

// WaitSync waits until a sync has finished and returns its record. A sync that is removed
// when finished cannot be waited for (ErrNotFound once it is gone).
func (s *Service) WaitSync(ctx context.Context, id string) (LDAPSync, error) {
	for {
		s.mu.Lock()
		finished := s.finished
		s.mu.Unlock()
		v, err := s.store.LDAPSync(ctx, id)
		if err != nil {
			return LDAPSync{}, err
		}
		if v.State == store.SyncComplete || v.State == store.SyncFailed {
			return v, nil
		}
		select {
		case <-finished:
		case <-ctx.Done():
			return v, context.Cause(ctx)
		}
	}
}

func (s *Service) notifyFinished() {
	s.mu.Lock()
	close(s.finished)
	s.finished = make(chan struct{})
	s.mu.Unlock()
}

// syncWorker runs queued syncs one at a time until Close.
func (s *Service) syncWorker() {
	defer s.wg.Done()
	// A sync still in progress at start-up was cut short when the process ended.
	if n, err := s.store.FailInterruptedLDAPSyncs(s.ctx, "the Call Bridge stopped during the sync"); err != nil {
		s.log.Error("ldap sync: mark interrupted syncs failed", "err", err)
	} else if n > 0 {
		s.log.Warn("ldap sync: syncs interrupted by a restart marked failed", "count", n)
	}
	for {
		for s.ctx.Err() == nil {
			v, ok, err := s.store.ClaimLDAPSync(s.ctx)
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Error("ldap sync: read the queue", "err", err)
				}
				break
			}
			if !ok {
				break
			}
			s.runSync(v)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		}
	}
}

// runSync runs one claimed sync and records its outcome.
func (s *Service) runSync(v LDAPSync) {
	ctx := s.ctx
	start := time.Now()
	log := s.log.With("sync", v.ID)
	log.Info("ldap sync started", "source", v.Source)
	// The outcome is saved even when the Service is closing.
	save := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := s.store.SaveLDAPSync(sctx, v); err != nil {
			log.Error("ldap sync: save progress", "err", err)
		}
	}
	fail := func(err error) {
		v.State, v.Detail = store.SyncFailed, err.Error()
		var clash *store.ClashError
		var ref *store.RefError
		switch {
		case errors.As(err, &clash):
			v.FailureReason, v.ClashingUserJID = SyncClashOccurred, clash.JID
		case errors.As(err, &ref) && ref.Kind == "ldapSource":
			v.FailureReason = SyncSourceDoesNotExist
		default:
			v.FailureReason = SyncLDAPError
		}
		if ctx.Err() != nil {
			v.Detail = "the Call Bridge stopped during the sync"
		}
		log.Error("ldap sync failed", "source", v.Source, "failureReason", v.FailureReason,
			"clashingUserJid", v.ClashingUserJID, "err", err, "duration", time.Since(start))
	}
	defer s.notifyFinished()

	var sources []LDAPSource
	if v.Source != "" {
		src, err := s.store.LDAPSource(ctx, v.Source)
		if err != nil {
			fail(err)
			save()
			return
		}
		sources = []LDAPSource{src}
	} else {
		all, _, err := s.store.ListLDAPSources(ctx, 0, 0)
		if err != nil {
			fail(err)
			save()
			return
		}
		sources = all
	}
	for _, src := range sources {
		if err := s.syncSource(ctx, src, &v); err != nil {
			fail(fmt.Errorf("ldap source %s: %w", src.ID, err))
			save()
			return
		}
		v.NumSourcesComplete++
		save()
	}
	v.State = store.SyncComplete
	save()
	log.Info("ldap sync complete", "source", v.Source, "sources", v.NumSourcesComplete,
		"imported", v.NumUsersImported, "created", v.UsersCreated, "updated", v.UsersUpdated,
		"deleted", v.UsersDeleted, "skipped", v.EntriesSkipped, "duration", time.Since(start))
	if err := s.store.PruneLDAPSyncs(ctx, s.keepSyncs); err != nil {
		log.Error("ldap sync: prune old records", "err", err)
	}
}

// syncSource imports one source: bind with the server's account, search, map, apply.
func (s *Service) syncSource(ctx context.Context, src LDAPSource, v *LDAPSync) error {
	m, err := s.store.LDAPMapping(ctx, src.Mapping)
	if err != nil {
		return err
	}
	tm, err := parseMapping(&m)
	if err != nil {
		return fmt.Errorf("ldap mapping %s: %w", m.ID, err)
	}
	srv, err := s.store.LDAPServer(ctx, src.Server)
	if err != nil {
		return err
	}
	conn, err := s.dialLDAP(ctx, srv)
	if err != nil {
		return err
	}
	defer conn.close()
	if srv.Username != "" {
		if err := conn.Bind(srv.Username, srv.Password.Reveal()); err != nil {
			return fmt.Errorf("bind as %s at %s: %w", srv.Username, conn.addr, err)
		}
	}
	filter := src.Filter
	if filter == "" {
		filter = "(objectClass=*)"
	}
	req := ldap.NewSearchRequest(src.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		filter, tm.attributes(), nil)
	res, err := conn.SearchWithPaging(req, ldapPageSize)
	if err != nil {
		return fmt.Errorf("search %s for %s at %s: %w", src.BaseDN, filter, conn.addr, err)
	}
	entries := make([]store.LDAPEntry, 0, len(res.Entries))
	for _, e := range res.Entries {
		me, err := tm.apply(e)
		if err != nil {
			if !isLDAPEntryError(err) {
				return err
			}
			v.EntriesSkipped++
			s.log.Warn("ldap sync: entry skipped", "sync", v.ID, "dn", e.DN, "reason", err)
			continue
		}
		entries = append(entries, me)
	}
	counts, err := s.store.ApplyLDAPSync(ctx, src.ID, entries)
	if err != nil {
		return err
	}
	v.NumUsersImported += len(entries)
	v.UsersCreated += counts.Created
	v.UsersUpdated += counts.Updated
	v.UsersDeleted += counts.Deleted
	return nil
}

var errBadEntryJID = errors.New("the jidMapping does not make a valid JID of the entry")

// apply maps an entry to a user: the JID must come out valid (it is normalised as JIDs are);
// the other fields are left empty when they use an attribute the entry lacks or come out as
// something that cannot be shown.
func (m mapping) apply(e *ldap.Entry) (store.LDAPEntry, error) {
	get := func(attr string) (string, bool) {
		vs := e.GetEqualFoldAttributeValues(attr)
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	}
	raw, err := m.jid.Expand(get)
	if err != nil {
		return store.LDAPEntry{}, err
	}
	j, err := jid.Parse(raw)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return store.LDAPEntry{}, fmt.Errorf("%w: %q", errBadEntryJID, raw)
	}
	out := store.LDAPEntry{DN: e.DN, JID: strings.ToLower(j.Localpart() + "@" + j.Domainpart())}
	field := func(t *Template, check func(string) error) string {
		if t == nil {
			return ""
		}
		v, err := t.Expand(get)
		if err != nil || check(v) != nil {
			return ""
		}
		return v
	}
	out.Name = field(m.name, func(v string) error { return validText("name", v) })
	out.Email = field(m.email, validEmail)
	out.CDRTag = field(m.cdrTag, func(v string) error { return validText("cdrTag", v) })
	return out, nil
}
