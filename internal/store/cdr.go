package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrTooManyCDRReceivers is returned when a receiver would be one more than allowed.
var ErrTooManyCDRReceivers = errors.New("store: too many CDR receivers")

// CDRReceiver is where Call Detail Records are posted (CMS cdrReceiver).
type CDRReceiver struct {
	ID      string // a GUID, chosen by the caller
	URI     string // an http or https URL; "" while not configured
	Legacy  bool   // the receiver of CMS's older single-receiver node
	Created time.Time
	Updated time.Time
}

const cdrReceiverColumns = `id, uri, legacy, created_at, updated_at`

func scanCDRReceiver(row rowScanner) (CDRReceiver, error) {
	var r CDRReceiver
	var legacy int
	var created, updated string
	if err := row.Scan(&r.ID, &r.URI, &legacy, &created, &updated); err != nil {
		return CDRReceiver{}, err
	}
	r.Legacy = legacy != 0
	r.Created, _ = time.Parse(time.RFC3339Nano, created)
	r.Updated, _ = time.Parse(time.RFC3339Nano, updated)
	return r, nil
}

// CreateCDRReceiver adds a receiver (r.ID set), unless there are max already
// (ErrTooManyCDRReceivers).
func (s *Store) CreateCDRReceiver(ctx context.Context, r CDRReceiver, max int) (CDRReceiver, error) {
	if r.ID == "" {
		return CDRReceiver{}, errors.New("store: create CDR receiver: no id")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM cdr_receivers`).Scan(&n); err != nil {
			return fmt.Errorf("store: count CDR receivers: %w", err)
		}
		if n >= max {
			return fmt.Errorf("%d receivers: %w", n, ErrTooManyCDRReceivers)
		}
		now := s.stamp()
		if _, err := s.exec(ctx, tx, `INSERT INTO cdr_receivers (`+cdrReceiverColumns+`) VALUES (?, ?, ?, ?, ?)`,
			r.ID, r.URI, boolInt(r.Legacy), now, now); err != nil {
			return fmt.Errorf("store: create CDR receiver: %w", err)
		}
		var err error
		r, err = s.cdrReceiver(ctx, tx, r.ID)
		return err
	})
	if err != nil {
		return CDRReceiver{}, err
	}
	return r, nil
}

// CDRReceiver returns a receiver, or a *RefError (kind cdrReceiver, matching ErrNotFound).
func (s *Store) CDRReceiver(ctx context.Context, id string) (CDRReceiver, error) {
	return s.cdrReceiver(ctx, s.db, id)
}

func (s *Store) cdrReceiver(ctx context.Context, q execer, id string) (CDRReceiver, error) {
	r, err := scanCDRReceiver(s.queryRow(ctx, q, `SELECT `+cdrReceiverColumns+` FROM cdr_receivers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return CDRReceiver{}, &RefError{Kind: "cdrReceiver", ID: id}
	}
	if err != nil {
		return CDRReceiver{}, fmt.Errorf("store: read CDR receiver: %w", err)
	}
	return r, nil
}

// SetCDRReceiverURI changes a receiver's URI, or returns a *RefError.
func (s *Store) SetCDRReceiverURI(ctx context.Context, id, uri string) (CDRReceiver, error) {
	res, err := s.exec(ctx, s.db, `UPDATE cdr_receivers SET uri = ?, updated_at = ? WHERE id = ?`, uri, s.stamp(), id)
	if err := oneRow(res, err, "update CDR receiver", id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return CDRReceiver{}, &RefError{Kind: "cdrReceiver", ID: id}
		}
		return CDRReceiver{}, err
	}
	return s.CDRReceiver(ctx, id)
}

// DeleteCDRReceiver removes a receiver and the records waiting for it, or returns a
// *RefError.
func (s *Store) DeleteCDRReceiver(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.cdrReceiver(ctx, tx, id); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM cdr_queue WHERE receiver_id = ?`, id); err != nil {
			return fmt.Errorf("store: delete CDR queue: %w", err)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM cdr_receivers WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: delete CDR receiver: %w", err)
		}
		return nil
	})
}

// ListCDRReceivers returns the receivers in the order they were made, paged (limit 0: all),
// and how many there are.
func (s *Store) ListCDRReceivers(ctx context.Context, offset, limit int) ([]CDRReceiver, int, error) {
	return listPage(ctx, s, "CDR receivers", cdrReceiverColumns, `FROM cdr_receivers`, "created_at, id", nil, offset, limit, scanCDRReceiver)
}

// LegacyCDRReceiver returns the receiver of the single-receiver node, or ErrNotFound.
func (s *Store) LegacyCDRReceiver(ctx context.Context) (CDRReceiver, error) {
	r, err := scanCDRReceiver(s.queryRow(ctx, s.db, `SELECT `+cdrReceiverColumns+` FROM cdr_receivers WHERE legacy <> 0`))
	if errors.Is(err, sql.ErrNoRows) {
		return CDRReceiver{}, fmt.Errorf("legacy CDR receiver: %w", ErrNotFound)
	}
	if err != nil {
		return CDRReceiver{}, fmt.Errorf("store: read legacy CDR receiver: %w", err)
	}
	return r, nil
}

// CDRRecord is a Call Detail Record waiting for its receiver to acknowledge it.
type CDRRecord struct {
	Seq             int64 // the order of sending, assigned by EnqueueCDRs
	ReceiverID      string
	Session         string
	RecordIndex     int64
	CorrelatorIndex int64
	Missing         int64 // records dropped just before this one
	Type            string
	Time            string // RFC 3339
	Body            string // the <record> element's content
}

const cdrRecordColumns = `seq, receiver_id, session, record_index, correlator_index, missing, type, time, body`

func scanCDRRecord(row rowScanner) (CDRRecord, error) {
	var r CDRRecord
	err := row.Scan(&r.Seq, &r.ReceiverID, &r.Session, &r.RecordIndex, &r.CorrelatorIndex, &r.Missing, &r.Type, &r.Time, &r.Body)
	return r, err
}

// EnqueueCDRs appends records to their receivers' queues, in one transaction, in the order
// given; records for a receiver that no longer exists are left out. A queue that grows past
// maxQueued loses its oldest records, and the oldest one kept counts them in Missing.
func (s *Store) EnqueueCDRs(ctx context.Context, recs []CDRRecord, maxQueued int) error {
	if len(recs) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var seq int64
		if err := s.queryRow(ctx, tx, `SELECT COALESCE(MAX(seq), 0) FROM cdr_queue`).Scan(&seq); err != nil {
			return fmt.Errorf("store: read CDR queue: %w", err)
		}
		touched := map[string]bool{}
		for _, r := range recs {
			seq++
			res, err := s.exec(ctx, tx, `INSERT INTO cdr_queue (`+cdrRecordColumns+`)
				SELECT ?, id, ?, ?, ?, ?, ?, ?, ? FROM cdr_receivers WHERE id = ?`,
				seq, r.Session, r.RecordIndex, r.CorrelatorIndex, r.Missing, r.Type, r.Time, r.Body, r.ReceiverID)
			if err != nil {
				return fmt.Errorf("store: queue CDR: %w", err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				touched[r.ReceiverID] = true
			}
		}
		for id := range touched {
			if err := s.trimCDRQueue(ctx, tx, id, maxQueued); err != nil {
				return err
			}
		}
		return nil
	})
}

// trimCDRQueue drops a receiver's oldest records beyond max, counting them in the Missing of
// the oldest record kept.
func (s *Store) trimCDRQueue(ctx context.Context, tx *sql.Tx, receiverID string, max int) error {
	var n int
	if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM cdr_queue WHERE receiver_id = ?`, receiverID).Scan(&n); err != nil {
		return fmt.Errorf("store: count CDR queue: %w", err)
	}
	if max <= 0 || n <= max {
		return nil
	}
	drop := n - max
	var lastSeq, dropped int64
	err := s.queryRow(ctx, tx, `SELECT MAX(seq), SUM(missing) + COUNT(*) FROM (SELECT seq, missing FROM cdr_queue
		WHERE receiver_id = ? ORDER BY seq LIMIT ?) AS oldest`, receiverID, drop).Scan(&lastSeq, &dropped)
	if err != nil {
		return fmt.Errorf("store: trim CDR queue: %w", err)
	}
	if _, err := s.exec(ctx, tx, `DELETE FROM cdr_queue WHERE receiver_id = ? AND seq <= ?`, receiverID, lastSeq); err != nil {
		return fmt.Errorf("store: trim CDR queue: %w", err)
	}
	_, err = s.exec(ctx, tx, `UPDATE cdr_queue SET missing = missing + ? WHERE seq =
		(SELECT MIN(seq) FROM cdr_queue WHERE receiver_id = ?)`, dropped, receiverID)
	if err != nil {
		return fmt.Errorf("store: trim CDR queue: %w", err)
	}
	return nil
}

// PendingCDRs returns up to limit of the oldest records waiting for a receiver, in order.
func (s *Store) PendingCDRs(ctx context.Context, receiverID string, limit int) ([]CDRRecord, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+cdrRecordColumns+` FROM cdr_queue WHERE receiver_id = ?
		ORDER BY seq LIMIT ?`, receiverID, limit)
	return collect(rows, err, "CDR queue", scanCDRRecord)
}

// AckCDRs removes a receiver's records up to and including seq: they were delivered.
func (s *Store) AckCDRs(ctx context.Context, receiverID string, seq int64) error {
	if _, err := s.exec(ctx, s.db, `DELETE FROM cdr_queue WHERE receiver_id = ? AND seq <= ?`, receiverID, seq); err != nil {
		return fmt.Errorf("store: acknowledge CDRs: %w", err)
	}
	return nil
}

// CountPendingCDRs returns how many records wait for a receiver.
func (s *Store) CountPendingCDRs(ctx context.Context, receiverID string) (int, error) {
	var n int
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM cdr_queue WHERE receiver_id = ?`, receiverID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count CDR queue: %w", err)
	}
	return n, nil
}
