package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"confab.dev/confab/internal/secret"
)

// ErrInUse is returned when deleting an object that another still refers to (an LDAP server
// or mapping used by a source), or a sync that is running.
var ErrInUse = errors.New("store: in use")

// RefError says that an object named in a request does not exist. It wraps ErrNotFound.
type RefError struct {
	Kind string // "ldapServer", "ldapMapping", "ldapSource"
	ID   string
}

func (e *RefError) Error() string { return fmt.Sprintf("store: %s %q does not exist", e.Kind, e.ID) }

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *RefError) Unwrap() error { return ErrNotFound }

// ldapRowExists returns nil if table has a row with the ID, or a *RefError naming kind.
func (s *Store) ldapRowExists(ctx context.Context, q execer, table, kind, id string) error {
	var n int
	if err := s.queryRow(ctx, q, `SELECT COUNT(*) FROM `+table+` WHERE id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("store: look up %s %q: %w", kind, id, err)
	}
	if n == 0 {
		return &RefError{Kind: kind, ID: id}
	}
	return nil
}

func ldapBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

// LDAPServer is a directory server users are imported from (CMS /ldapServers).
type LDAPServer struct {
	ID         string
	Address    string // host name or IP address
	PortNumber int
	Username   string        // the DN (or name) the Call Bridge binds as; empty for anonymous
	Password   secret.Secret // its password; write-only in the API
	Secure     bool          // LDAPS: TLS from the first byte
}

// AddLDAPServer stores a new server under a new ID and returns it.
func (s *Store) AddLDAPServer(ctx context.Context, v LDAPServer) (LDAPServer, error) {
	v.ID = uuid.NewString()
	_, err := s.exec(ctx, s.db, `INSERT INTO ldap_servers (id, address, port_number, username, password, secure, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, v.ID, v.Address, v.PortNumber, v.Username, v.Password.Reveal(), ldapBool(v.Secure), s.stamp())
	if err != nil {
		return LDAPServer{}, fmt.Errorf("store: add ldap server: %w", err)
	}
	return v, nil
}

const ldapServerColumns = `id, address, port_number, username, password, secure`

func scanLDAPServer(r rowScanner) (LDAPServer, error) {
	var v LDAPServer
	var pw string
	var secure int
	err := r.Scan(&v.ID, &v.Address, &v.PortNumber, &v.Username, &pw, &secure)
	v.Password, v.Secure = secret.New(pw), secure != 0
	return v, err
}

// LDAPServer returns the server with the given ID, or a *RefError.
func (s *Store) LDAPServer(ctx context.Context, id string) (LDAPServer, error) {
	return s.ldapServer(ctx, s.db, id, "")
}

func (s *Store) ldapServer(ctx context.Context, q execer, id, suffix string) (LDAPServer, error) {
	v, err := scanLDAPServer(s.queryRow(ctx, q, `SELECT `+ldapServerColumns+` FROM ldap_servers WHERE id = ?`+suffix, id))
	if errors.Is(err, sql.ErrNoRows) {
		return LDAPServer{}, &RefError{Kind: "ldapServer", ID: id}
	}
	if err != nil {
		return LDAPServer{}, fmt.Errorf("store: read ldap server %q: %w", id, err)
	}
	return v, nil
}

// ListLDAPServers returns a page of servers, oldest first, and how many there are.
func (s *Store) ListLDAPServers(ctx context.Context, offset, limit int) ([]LDAPServer, int, error) {
	return listPage(ctx, s, "ldap_servers", ldapServerColumns, `FROM ldap_servers`, "created_at, id", nil, offset, limit, scanLDAPServer)
}

// UpdateLDAPServer reads a server, lets fn change it and writes it, in one transaction.
func (s *Store) UpdateLDAPServer(ctx context.Context, id string, fn func(*LDAPServer) error) (LDAPServer, error) {
	var out LDAPServer
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		v, err := s.ldapServer(ctx, tx, id, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		v.ID = id
		_, err = s.exec(ctx, tx, `UPDATE ldap_servers SET address = ?, port_number = ?, username = ?, password = ?,
			secure = ? WHERE id = ?`, v.Address, v.PortNumber, v.Username, v.Password.Reveal(), ldapBool(v.Secure), id)
		if err != nil {
			return fmt.Errorf("store: update ldap server %q: %w", id, err)
		}
		out = v
		return nil
	})
	return out, err
}

// DeleteLDAPServer removes a server: a *RefError if there is none, ErrInUse if a source uses it.
func (s *Store) DeleteLDAPServer(ctx context.Context, id string) error {
	return s.ldapDelete(ctx, "ldap_servers", "ldapServer", id, `SELECT COUNT(*) FROM ldap_sources WHERE server_id = ?`)
}

// LDAPMapping holds the templates that turn a directory entry into a user (CMS /ldapMappings).
type LDAPMapping struct {
	ID            string
	JIDMapping    string // e.g. $uid$@example.com
	NameMapping   string // e.g. $cn$
	EmailMapping  string // e.g. $mail$
	CDRTagMapping string
}

const ldapMappingColumns = `id, jid_mapping, name_mapping, email_mapping, cdr_tag_mapping`

func scanLDAPMapping(r rowScanner) (LDAPMapping, error) {
	var v LDAPMapping
	err := r.Scan(&v.ID, &v.JIDMapping, &v.NameMapping, &v.EmailMapping, &v.CDRTagMapping)
	return v, err
}

// AddLDAPMapping stores a new mapping under a new ID and returns it.
func (s *Store) AddLDAPMapping(ctx context.Context, v LDAPMapping) (LDAPMapping, error) {
	v.ID = uuid.NewString()
	_, err := s.exec(ctx, s.db, `INSERT INTO ldap_mappings (id, jid_mapping, name_mapping, email_mapping, cdr_tag_mapping, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, v.ID, v.JIDMapping, v.NameMapping, v.EmailMapping, v.CDRTagMapping, s.stamp())
	if err != nil {
		return LDAPMapping{}, fmt.Errorf("store: add ldap mapping: %w", err)
	}
	return v, nil
}

// LDAPMapping returns the mapping with the given ID, or a *RefError.
func (s *Store) LDAPMapping(ctx context.Context, id string) (LDAPMapping, error) {
	return s.ldapMapping(ctx, s.db, id, "")
}

func (s *Store) ldapMapping(ctx context.Context, q execer, id, suffix string) (LDAPMapping, error) {
	v, err := scanLDAPMapping(s.queryRow(ctx, q, `SELECT `+ldapMappingColumns+` FROM ldap_mappings WHERE id = ?`+suffix, id))
	if errors.Is(err, sql.ErrNoRows) {
		return LDAPMapping{}, &RefError{Kind: "ldapMapping", ID: id}
	}
	if err != nil {
		return LDAPMapping{}, fmt.Errorf("store: read ldap mapping %q: %w", id, err)
	}
	return v, nil
}

// ListLDAPMappings returns a page of mappings, oldest first, and how many there are.
func (s *Store) ListLDAPMappings(ctx context.Context, offset, limit int) ([]LDAPMapping, int, error) {
	return listPage(ctx, s, "ldap_mappings", ldapMappingColumns, `FROM ldap_mappings`, "created_at, id", nil, offset, limit, scanLDAPMapping)
}

// UpdateLDAPMapping reads a mapping, lets fn change it and writes it, in one transaction.
func (s *Store) UpdateLDAPMapping(ctx context.Context, id string, fn func(*LDAPMapping) error) (LDAPMapping, error) {
	var out LDAPMapping
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		v, err := s.ldapMapping(ctx, tx, id, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		v.ID = id
		_, err = s.exec(ctx, tx, `UPDATE ldap_mappings SET jid_mapping = ?, name_mapping = ?, email_mapping = ?,
			cdr_tag_mapping = ? WHERE id = ?`, v.JIDMapping, v.NameMapping, v.EmailMapping, v.CDRTagMapping, id)
		if err != nil {
			return fmt.Errorf("store: update ldap mapping %q: %w", id, err)
		}
		out = v
		return nil
	})
	return out, err
}

// DeleteLDAPMapping removes a mapping: a *RefError if there is none, ErrInUse if a source
// uses it.
func (s *Store) DeleteLDAPMapping(ctx context.Context, id string) error {
	return s.ldapDelete(ctx, "ldap_mappings", "ldapMapping", id, `SELECT COUNT(*) FROM ldap_sources WHERE mapping_id = ?`)
}

// LDAPSource is the part of a directory to import, with the server to read it from and the
// mapping to apply (CMS /ldapSources).
type LDAPSource struct {
	ID      string
	Server  string // an LDAPServer ID
	Mapping string // an LDAPMapping ID
	BaseDN  string
	Filter  string // an LDAP filter; empty means every entry
}

const ldapSourceColumns = `id, server_id, mapping_id, base_dn, filter`

func scanLDAPSource(r rowScanner) (LDAPSource, error) {
	var v LDAPSource
	err := r.Scan(&v.ID, &v.Server, &v.Mapping, &v.BaseDN, &v.Filter)
	return v, err
}

// AddLDAPSource stores a new source under a new ID and returns it; a *RefError if its server
// or mapping does not exist.
func (s *Store) AddLDAPSource(ctx context.Context, v LDAPSource) (LDAPSource, error) {
	v.ID = uuid.NewString()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.ldapSourceRefs(ctx, tx, v); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO ldap_sources (id, server_id, mapping_id, base_dn, filter, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, v.ID, v.Server, v.Mapping, v.BaseDN, v.Filter, s.stamp())
		if err != nil {
			return fmt.Errorf("store: add ldap source: %w", err)
		}
		return nil
	})
	if err != nil {
		return LDAPSource{}, err
	}
	return v, nil
}

func (s *Store) ldapSourceRefs(ctx context.Context, q execer, v LDAPSource) error {
	if err := s.ldapRowExists(ctx, q, "ldap_servers", "ldapServer", v.Server); err != nil {
		return err
	}
	return s.ldapRowExists(ctx, q, "ldap_mappings", "ldapMapping", v.Mapping)
}

// LDAPSource returns the source with the given ID, or a *RefError.
func (s *Store) LDAPSource(ctx context.Context, id string) (LDAPSource, error) {
	return s.ldapSource(ctx, s.db, id, "")
}

func (s *Store) ldapSource(ctx context.Context, q execer, id, suffix string) (LDAPSource, error) {
	v, err := scanLDAPSource(s.queryRow(ctx, q, `SELECT `+ldapSourceColumns+` FROM ldap_sources WHERE id = ?`+suffix, id))
	if errors.Is(err, sql.ErrNoRows) {
		return LDAPSource{}, &RefError{Kind: "ldapSource", ID: id}
	}
	if err != nil {
		return LDAPSource{}, fmt.Errorf("store: read ldap source %q: %w", id, err)
	}
	return v, nil
}

// ListLDAPSources returns a page of sources, oldest first, and how many there are.
func (s *Store) ListLDAPSources(ctx context.Context, offset, limit int) ([]LDAPSource, int, error) {
	return listPage(ctx, s, "ldap_sources", ldapSourceColumns, `FROM ldap_sources`, "created_at, id", nil, offset, limit, scanLDAPSource)
}

// UpdateLDAPSource reads a source, lets fn change it and writes it, in one transaction; a
// *RefError if the server or mapping it then names does not exist.
func (s *Store) UpdateLDAPSource(ctx context.Context, id string, fn func(*LDAPSource) error) (LDAPSource, error) {
	var out LDAPSource
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		v, err := s.ldapSource(ctx, tx, id, s.d.forUpdate)
		if err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		v.ID = id
		if err := s.ldapSourceRefs(ctx, tx, v); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `UPDATE ldap_sources SET server_id = ?, mapping_id = ?, base_dn = ?, filter = ?
			WHERE id = ?`, v.Server, v.Mapping, v.BaseDN, v.Filter, id)
		if err != nil {
			return fmt.Errorf("store: update ldap source %q: %w", id, err)
		}
		out = v
		return nil
	})
	return out, err
}

// DeleteLDAPSource removes a source and the users imported through it; a *RefError if there
// is none.
func (s *Store) DeleteLDAPSource(ctx context.Context, id string) error {
	return s.ldapDelete(ctx, "ldap_sources", "ldapSource", id, "")
}

// ldapDelete deletes a row, refusing with ErrInUse when the count query (if any) finds
// references to it.
func (s *Store) ldapDelete(ctx context.Context, table, kind, id, refs string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.ldapRowExists(ctx, tx, table, kind, id); err != nil {
			return err
		}
		if refs != "" {
			var n int
			if err := s.queryRow(ctx, tx, refs, id).Scan(&n); err != nil {
				return fmt.Errorf("store: delete %s %q: %w", kind, id, err)
			}
			if n > 0 {
				return fmt.Errorf("%s %q is used by %d ldap source(s): %w", kind, id, n, ErrInUse)
			}
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM `+table+` WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: delete %s %q: %w", kind, id, err)
		}
		return nil
	})
}

// States of an LDAP sync, as CMS names them.
const (
	SyncPending    = "pending"
	SyncInProgress = "inProgress"
	SyncComplete   = "complete"
	SyncFailed     = "failed"
)

// LDAPSync is one run of the import (CMS /ldapSyncs).
type LDAPSync struct {
	ID                 string
	Source             string // the LDAPSource synced; empty for all of them
	State              string // SyncPending, SyncInProgress, SyncComplete, SyncFailed
	RemoveWhenFinished bool

	// Why a failed sync failed: CMS's failureReason (ldapSourceDoesNotExist, clashOccurred,
	// ldapError), the JID that clashed, and what happened in words.
	FailureReason, ClashingUserJID, Detail string

	NumUsersImported   int // entries mapped to users so far
	NumSourcesComplete int
	UsersCreated       int
	UsersUpdated       int
	UsersDeleted       int
	EntriesSkipped     int // entries that could not be mapped to a valid JID
	Created, Started   time.Time
	Finished           time.Time
}

const ldapSyncColumns = `id, source_id, state, remove_when_finished, failure_reason, clashing_user_jid, detail,
	num_users_imported, num_sources_complete, users_created, users_updated, users_deleted, entries_skipped,
	created_at, started_at, finished_at`

func scanLDAPSync(r rowScanner) (LDAPSync, error) {
	var v LDAPSync
	var remove int
	var created, started, finished string
	err := r.Scan(&v.ID, &v.Source, &v.State, &remove, &v.FailureReason, &v.ClashingUserJID, &v.Detail,
		&v.NumUsersImported, &v.NumSourcesComplete, &v.UsersCreated, &v.UsersUpdated, &v.UsersDeleted,
		&v.EntriesSkipped, &created, &started, &finished)
	v.RemoveWhenFinished = remove != 0
	v.Created, v.Started, v.Finished = parseUserStamp(created), parseUserStamp(started), parseUserStamp(finished)
	return v, err
}

// AddLDAPSync queues a sync (state pending) and returns it. A sync of one source needs the
// source to exist (*RefError). If maxPending > 0 and that many syncs are already waiting, it
// returns ErrInUse.
func (s *Store) AddLDAPSync(ctx context.Context, sourceID string, removeWhenFinished bool, maxPending int) (LDAPSync, error) {
	v := LDAPSync{ID: uuid.NewString(), Source: sourceID, State: SyncPending, RemoveWhenFinished: removeWhenFinished}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if sourceID != "" {
			if err := s.ldapRowExists(ctx, tx, "ldap_sources", "ldapSource", sourceID); err != nil {
				return err
			}
		}
		if maxPending > 0 {
			var n int
			if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM ldap_syncs WHERE state = ?`, SyncPending).Scan(&n); err != nil {
				return fmt.Errorf("store: count pending ldap syncs: %w", err)
			}
			if n >= maxPending {
				return fmt.Errorf("%d ldap syncs are already waiting: %w", n, ErrInUse)
			}
		}
		now := s.stamp()
		v.Created = parseUserStamp(now)
		_, err := s.exec(ctx, tx, `INSERT INTO ldap_syncs (id, source_id, state, remove_when_finished, created_at)
			VALUES (?, ?, ?, ?, ?)`, v.ID, v.Source, v.State, ldapBool(removeWhenFinished), now)
		if err != nil {
			return fmt.Errorf("store: add ldap sync: %w", err)
		}
		return nil
	})
	if err != nil {
		return LDAPSync{}, err
	}
	return v, nil
}

// LDAPSync returns the sync with the given ID, or ErrNotFound.
func (s *Store) LDAPSync(ctx context.Context, id string) (LDAPSync, error) {
	v, err := scanLDAPSync(s.queryRow(ctx, s.db, `SELECT `+ldapSyncColumns+` FROM ldap_syncs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return LDAPSync{}, fmt.Errorf("ldap sync %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return LDAPSync{}, fmt.Errorf("store: read ldap sync %q: %w", id, err)
	}
	return v, nil
}

// ListLDAPSyncs returns a page of syncs, oldest first, and how many there are.
func (s *Store) ListLDAPSyncs(ctx context.Context, offset, limit int) ([]LDAPSync, int, error) {
	return listPage(ctx, s, "ldap_syncs", ldapSyncColumns, `FROM ldap_syncs`, "created_at, id", nil, offset, limit, scanLDAPSync)
}

// ClaimLDAPSync moves the oldest pending sync to inProgress and returns it; ok is false when
// none is waiting. Two processes sharing the database never claim the same sync.
func (s *Store) ClaimLDAPSync(ctx context.Context) (v LDAPSync, ok bool, err error) {
	for {
		var id string
		err := s.queryRow(ctx, s.db, `SELECT id FROM ldap_syncs WHERE state = ? ORDER BY created_at, id LIMIT 1`, SyncPending).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return LDAPSync{}, false, nil
		}
		if err != nil {
			return LDAPSync{}, false, fmt.Errorf("store: find pending ldap sync: %w", err)
		}
		res, err := s.exec(ctx, s.db, `UPDATE ldap_syncs SET state = ?, started_at = ? WHERE id = ? AND state = ?`,
			SyncInProgress, s.stamp(), id, SyncPending)
		if err != nil {
			return LDAPSync{}, false, fmt.Errorf("store: claim ldap sync %q: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return LDAPSync{}, false, fmt.Errorf("store: claim ldap sync %q: %w", id, err)
		} else if n == 0 {
			continue // claimed (or cancelled) by someone else meanwhile
		}
		// Claimed: read it back even if ctx ends now, so that the caller owns it and records
		// its outcome (a claimed sync nobody holds would stay in progress).
		v, err := s.LDAPSync(context.WithoutCancel(ctx), id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return v, err == nil, err
	}
}

// SaveLDAPSync writes a sync's progress, state and outcome; a finished sync gets its finish
// time. A sync that is finished and RemoveWhenFinished is deleted instead.
func (s *Store) SaveLDAPSync(ctx context.Context, v LDAPSync) error {
	finished := ""
	if v.State == SyncComplete || v.State == SyncFailed {
		if v.RemoveWhenFinished {
			_, err := s.exec(ctx, s.db, `DELETE FROM ldap_syncs WHERE id = ?`, v.ID)
			if err != nil {
				return fmt.Errorf("store: remove finished ldap sync %q: %w", v.ID, err)
			}
			return nil
		}
		finished = s.stamp()
	}
	res, err := s.exec(ctx, s.db, `UPDATE ldap_syncs SET state = ?, failure_reason = ?, clashing_user_jid = ?, detail = ?,
		num_users_imported = ?, num_sources_complete = ?, users_created = ?, users_updated = ?, users_deleted = ?,
		entries_skipped = ?, finished_at = ? WHERE id = ?`,
		v.State, v.FailureReason, v.ClashingUserJID, v.Detail, v.NumUsersImported, v.NumSourcesComplete,
		v.UsersCreated, v.UsersUpdated, v.UsersDeleted, v.EntriesSkipped, finished, v.ID)
	return oneRow(res, err, "save ldap sync", v.ID)
}

// DeleteLDAPSync cancels a pending sync or forgets a finished one: ErrNotFound if there is
// none, ErrInUse if it is running.
func (s *Store) DeleteLDAPSync(ctx context.Context, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM ldap_syncs WHERE id = ? AND state <> ?`, id, SyncInProgress)
	if err != nil {
		return fmt.Errorf("store: delete ldap sync %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: delete ldap sync %q: %w", id, err)
	} else if n > 0 {
		return nil
	}
	if _, err := s.LDAPSync(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("ldap sync %q is running: %w", id, ErrInUse)
}

// FailInterruptedLDAPSyncs marks every sync still inProgress as failed with the given detail:
// at start-up, those are syncs whose process ended mid-run. It returns how many it marked.
func (s *Store) FailInterruptedLDAPSyncs(ctx context.Context, detail string) (int, error) {
	res, err := s.exec(ctx, s.db, `UPDATE ldap_syncs SET state = ?, failure_reason = ?, detail = ?, finished_at = ?
		WHERE state = ?`, SyncFailed, "ldapError", detail, s.stamp(), SyncInProgress)
	if err != nil {
		return 0, fmt.Errorf("store: fail interrupted ldap syncs: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// PruneLDAPSyncs deletes the oldest finished syncs beyond the newest keep.
func (s *Store) PruneLDAPSyncs(ctx context.Context, keep int) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM ldap_syncs WHERE state IN (?, ?) AND id NOT IN (
		SELECT id FROM ldap_syncs WHERE state IN (?, ?) ORDER BY finished_at DESC, id DESC LIMIT ?)`,
		SyncComplete, SyncFailed, SyncComplete, SyncFailed, max(keep, 0))
	if err != nil {
		return fmt.Errorf("store: prune ldap syncs: %w", err)
	}
	return nil
}
