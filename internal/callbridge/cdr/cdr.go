// Package cdr sends the Call Bridge's Call Detail Records as CMS does: XML documents of
// <record> elements (callStart, callEnd, callLegStart, callLegUpdate, callLegEnd) posted over
// HTTP or HTTPS to each configured receiver (CMS /system/cdrReceivers).
//
// Records are made from the meeting service's events (it is the service's
// meeting.EventSink) and queued in the store for each receiver, so that none is lost while a
// receiver is down or the Call Bridge restarts; each receiver gets its records once, in the
// order they were made, each acknowledged (a 2xx answer) before the next batch is sent, and a
// batch that was not acknowledged is sent again after a wait that doubles up to RetryMax.
//
// # Numbering
//
// As on CMS, the <records> element carries a session GUID, new each time the Call Bridge
// starts; each record a correlatorIndex (0, 1, 2 … over every record of the session) and a
// recordIndex (1, 2, 3 … over the records of the session for that receiver). A receiver can
// therefore tell a record it was sent twice (the Call Bridge stopped after the receiver's
// answer but before it heard it) by its session and recordIndex. Records queued before a
// restart keep their session and numbers and go before those of the new session. A
// receiver's queue is bounded (MaxQueued): when it overflows the oldest records are dropped
// and the next one sent says how many (numPreceedingRecordsMissing).
//
// # Goroutines
//
// Run owns them all and waits for them: one writer that numbers records and stores them (in
// batches, one transaction each), and one sender per receiver with a URI. Record only appends
// to the writer's memory and never blocks on the store while Run runs; before Run starts and
// after it returns, Record stores the record itself. Flush waits until what was recorded is
// stored.
package cdr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"confab.dev/confab/internal/callbridge/meeting"
	"confab.dev/confab/internal/store"
)

// MaxReceivers is how many receivers may be configured, as on CMS 2.x.
const MaxReceivers = 4

// Defaults applied when an Options field is zero.
const (
	DefaultMaxQueued = 100000
	DefaultBatch     = 100
	DefaultRetryMin  = time.Second
	DefaultRetryMax  = time.Minute
	DefaultTimeout   = 10 * time.Second
)

// ErrTooManyReceivers is returned when a receiver would be one more than MaxReceivers.
var ErrTooManyReceivers = store.ErrTooManyCDRReceivers

// InvalidURIError reports a receiver URI that cannot be used.
type InvalidURIError struct{ Reason string }

func (e *InvalidURIError) Error() string { return "cdr: invalid receiver URI: " + e.Reason }

// Options configure a Service.
type Options struct {
	Store  *store.Store // required
	Logger *slog.Logger // discarded when nil
	Now    func() time.Time
	// RootCAs verify HTTPS receivers (nil: the system's roots); Client, when set, is used
	// instead of a client made with them (tests).
	RootCAs *x509.CertPool
	Client  *http.Client
	// MaxQueued bounds each receiver's queue (DefaultMaxQueued); Batch is the most records
	// one POST carries (DefaultBatch).
	MaxQueued, Batch int
	// RetryMin and RetryMax bound the wait before a failed POST is tried again
	// (DefaultRetryMin, DefaultRetryMax); Timeout bounds a POST (DefaultTimeout).
	RetryMin, RetryMax, Timeout time.Duration
	// OnDelivered, when set, is told of each batch a receiver acknowledged, after it left the
	// queue (tests wait on it).
	OnDelivered func(receiverID string, records int)
}

// Service makes, queues and sends the Call Detail Records of one Call Bridge.
type Service struct {
	st      *store.Store
	log     *slog.Logger
	now     func() time.Time
	client  *http.Client
	o       Options
	session string

	mu         sync.Mutex
	pending    []meeting.Event // recorded, not yet stored
	wake       chan struct{}   // the writer's: pending has events (capacity 1)
	flushes    chan chan error // Flush's requests to the writer
	stopped    chan struct{}   // closed when Run returns
	running    bool
	done       bool // Run has returned: Record stores by itself
	correlator int64
	indexes    map[string]int64 // the last recordIndex given, by receiver
	senders    map[string]*sender
	runCtx     context.Context
	wg         sync.WaitGroup // the senders
}

// sender is the goroutine posting one receiver's queue.
type sender struct {
	id     string
	uri    string // guarded by Service.mu
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: records or a new URI
	// lastError and lastSuccess are what the API shows; guarded by Service.mu.
	lastError   string
	lastSuccess time.Time
}

// New returns a Service over the store; nothing is sent until Run.
func New(o Options) *Service {
	s := &Service{st: o.Store, log: o.Logger, now: o.Now, client: o.Client, o: o, session: uuid.NewString(),
		wake: make(chan struct{}, 1), flushes: make(chan chan error), stopped: make(chan struct{}), indexes: map[string]int64{}, senders: map[string]*sender{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.o.MaxQueued <= 0 {
		s.o.MaxQueued = DefaultMaxQueued
	}
	if s.o.Batch <= 0 {
		s.o.Batch = DefaultBatch
	}
	if s.o.RetryMin <= 0 {
		s.o.RetryMin = DefaultRetryMin
	}
	if s.o.RetryMax < s.o.RetryMin {
		s.o.RetryMax = max(DefaultRetryMax, s.o.RetryMin)
	}
	if s.o.Timeout <= 0 {
		s.o.Timeout = DefaultTimeout
	}
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
		s.client = &http.Client{Transport: tr, Timeout: s.o.Timeout}
	}
	return s
}

// Session is the GUID of this Service's session, the <records> element's session.
func (s *Service) Session() string { return s.session }

// Record queues the records of a meeting event (it is a meeting.EventSink). It does not wait
// for the store while Run runs; before Run starts and after it returns, it stores them itself.
func (s *Service) Record(e meeting.Event) {
	s.mu.Lock()
	if s.running && !s.done {
		s.pending = append(s.pending, e)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return
	}
	s.mu.Unlock()
	if err := s.store(context.Background(), []meeting.Event{e}); err != nil {
		s.log.Error("cdr: a record could not be queued", "type", e.Type, "err", err)
	}
}

// Run stores records and sends them to the receivers until ctx ends; then it stores what is
// left in memory, waits for its goroutines and returns nil. It may be called once.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.done {
		s.mu.Unlock()
		return errors.New("cdr: Run called twice")
	}
	s.running, s.runCtx = true, ctx
	s.mu.Unlock()
	if err := s.reconcile(ctx); err != nil {
		s.log.Error("cdr: read receivers", "err", err)
	}
	s.log.Info("cdr: started", "session", s.session)
	// The writer's store operations are not cut short by ctx: a record recorded before Run
	// ends must reach the store (select may pick a write after ctx has ended).
	wctx := context.WithoutCancel(ctx)
	for {
		select {
		case <-s.wake:
			s.writePending(wctx)
		case done := <-s.flushes:
			done <- s.writePending(wctx)
		case <-ctx.Done():
			s.mu.Lock()
			s.done = true
			for _, sd := range s.senders {
				sd.cancel()
			}
			s.mu.Unlock()
			s.writePending(wctx)
			s.wg.Wait()
			close(s.stopped)
			return nil
		}
	}
}

// writePending stores the events recorded so far and wakes the senders.
func (s *Service) writePending(ctx context.Context) error {
	s.mu.Lock()
	evs := s.pending
	s.pending = nil
	s.mu.Unlock()
	if len(evs) == 0 {
		return nil
	}
	err := s.store(ctx, evs)
	if err != nil {
		// The store is the queue: without it the records cannot be kept.
		s.log.Error("cdr: records could not be queued; they are lost", "records", len(evs), "err", err)
	}
	return err
}

// Flush returns once the records of the events recorded so far are in the store (or it
// failed): a restart cannot lose them after that.
func (s *Service) Flush(ctx context.Context) error {
	s.mu.Lock()
	running := s.running && !s.done
	s.mu.Unlock()
	if !running {
		return s.writePending(ctx)
	}
	done := make(chan error, 1)
	select {
	case s.flushes <- done:
	case <-s.stopped:
		return s.writePending(ctx)
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// store numbers events and stores them for every receiver with a URI, in one transaction.
func (s *Service) store(ctx context.Context, evs []meeting.Event) error {
	recvs, _, err := s.st.ListCDRReceivers(ctx, 0, 0)
	if err != nil {
		return err
	}
	s.mu.Lock()
	var recs []store.CDRRecord
	for _, e := range evs {
		body, err := recordBody(e)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		ci := s.correlator
		s.correlator++
		for _, r := range recvs {
			if r.URI == "" {
				continue
			}
			s.indexes[r.ID]++
			recs = append(recs, store.CDRRecord{ReceiverID: r.ID, Session: s.session, RecordIndex: s.indexes[r.ID],
				CorrelatorIndex: ci, Type: string(e.Type), Time: e.Time.UTC().Format(time.RFC3339), Body: body})
		}
	}
	s.mu.Unlock()
	if err := s.st.EnqueueCDRs(ctx, recs, s.o.MaxQueued); err != nil {
		return err
	}
	s.mu.Lock()
	for _, sd := range s.senders {
		signal(sd.wake)
	}
	s.mu.Unlock()
	return nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// reconcile starts a sender for each receiver with a URI and stops the others.
func (s *Service) reconcile(ctx context.Context) error {
	recvs, _, err := s.st.ListCDRReceivers(ctx, 0, 0)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.done {
		return nil
	}
	want := map[string]string{}
	for _, r := range recvs {
		if r.URI != "" {
			want[r.ID] = r.URI
		}
	}
	for id, sd := range s.senders {
		if _, ok := want[id]; !ok {
			sd.cancel()
			delete(s.senders, id)
		}
	}
	for id, uri := range want {
		if sd, ok := s.senders[id]; ok {
			if sd.uri != uri {
				sd.uri = uri
				signal(sd.wake)
			}
			continue
		}
		sctx, cancel := context.WithCancel(s.runCtx)
		sd := &sender{id: id, uri: uri, cancel: cancel, wake: make(chan struct{}, 1)}
		s.senders[id] = sd
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.send(sctx, sd)
		}()
	}
	return nil
}

// ValidURI accepts a receiver URI: an absolute http or https URL with a host.
func ValidURI(uri string) error {
	if len(uri) > 2000 {
		return &InvalidURIError{"longer than 2000 characters"}
	}
	u, err := url.Parse(uri)
	if err != nil {
		return &InvalidURIError{err.Error()}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return &InvalidURIError{"want an http or https URL"}
	}
	if u.Host == "" || u.Hostname() == "" {
		return &InvalidURIError{"no host"}
	}
	if u.Fragment != "" || strings.ContainsAny(uri, " \t\r\n") {
		return &InvalidURIError{"fragment or white space"}
	}
	return nil
}

// Receiver is a receiver with what the Call Bridge knows of its deliveries.
type Receiver struct {
	store.CDRReceiver
	Queued      int       // records waiting for it
	LastError   string    // why the latest attempt failed, "" after a success
	LastSuccess time.Time // when it last acknowledged records
}

func (s *Service) withStatus(ctx context.Context, r store.CDRReceiver) (Receiver, error) {
	n, err := s.st.CountPendingCDRs(ctx, r.ID)
	if err != nil {
		return Receiver{}, err
	}
	out := Receiver{CDRReceiver: r, Queued: n}
	s.mu.Lock()
	if sd, ok := s.senders[r.ID]; ok {
		out.LastError, out.LastSuccess = sd.lastError, sd.lastSuccess
	}
	s.mu.Unlock()
	return out, nil
}

// Receivers lists the receivers, paged (limit 0: all), and how many there are.
func (s *Service) Receivers(ctx context.Context, offset, limit int) ([]Receiver, int, error) {
	rs, total, err := s.st.ListCDRReceivers(ctx, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Receiver, 0, len(rs))
	for _, r := range rs {
		v, err := s.withStatus(ctx, r)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, v)
	}
	return out, total, nil
}

// Receiver returns a receiver, or a *store.RefError.
func (s *Service) Receiver(ctx context.Context, id string) (Receiver, error) {
	r, err := s.st.CDRReceiver(ctx, id)
	if err != nil {
		return Receiver{}, err
	}
	return s.withStatus(ctx, r)
}

// CreateReceiver adds a receiver (its URI may be empty: configured later). Errors:
// *InvalidURIError, ErrTooManyReceivers, a store failure.
func (s *Service) CreateReceiver(ctx context.Context, uri string) (store.CDRReceiver, error) {
	return s.create(ctx, uri, false)
}

func (s *Service) create(ctx context.Context, uri string, legacy bool) (store.CDRReceiver, error) {
	if uri != "" {
		if err := ValidURI(uri); err != nil {
			return store.CDRReceiver{}, err
		}
	}
	r, err := s.st.CreateCDRReceiver(ctx, store.CDRReceiver{ID: uuid.NewString(), URI: uri, Legacy: legacy}, MaxReceivers)
	if err != nil {
		return store.CDRReceiver{}, fmt.Errorf("cdr: create receiver: %w", err)
	}
	s.log.Info("cdr: receiver added", "id", r.ID, "uri", redact(uri))
	return r, s.reconcile(ctx)
}

// SetReceiverURI changes a receiver's URI; an empty one keeps the receiver but sends it
// nothing. Records already queued for it go to the new URI. Errors: *InvalidURIError, a
// *store.RefError.
func (s *Service) SetReceiverURI(ctx context.Context, id, uri string) (store.CDRReceiver, error) {
	if uri != "" {
		if err := ValidURI(uri); err != nil {
			return store.CDRReceiver{}, err
		}
	}
	r, err := s.st.SetCDRReceiverURI(ctx, id, uri)
	if err != nil {
		return store.CDRReceiver{}, fmt.Errorf("cdr: change receiver: %w", err)
	}
	s.log.Info("cdr: receiver changed", "id", id, "uri", redact(uri))
	return r, s.reconcile(ctx)
}

// DeleteReceiver removes a receiver and the records waiting for it, or returns a
// *store.RefError.
func (s *Service) DeleteReceiver(ctx context.Context, id string) error {
	if err := s.st.DeleteCDRReceiver(ctx, id); err != nil {
		return fmt.Errorf("cdr: delete receiver: %w", err)
	}
	s.mu.Lock()
	delete(s.indexes, id)
	s.mu.Unlock()
	s.log.Info("cdr: receiver deleted", "id", id)
	return s.reconcile(ctx)
}

// LegacyReceiver returns the receiver of CMS's single-receiver node, or store.ErrNotFound.
func (s *Service) LegacyReceiver(ctx context.Context) (store.CDRReceiver, error) {
	return s.st.LegacyCDRReceiver(ctx)
}

// SetLegacyReceiver sets the URI of the single-receiver node's receiver, creating it; an
// empty URI removes it (as CMS removes its GUID).
func (s *Service) SetLegacyReceiver(ctx context.Context, uri string) error {
	r, err := s.st.LegacyCDRReceiver(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound) && uri == "":
		return nil
	case errors.Is(err, store.ErrNotFound):
		_, err = s.create(ctx, uri, true)
		return err
	case err != nil:
		return err
	case uri == "":
		return s.DeleteReceiver(ctx, r.ID)
	}
	_, err = s.SetReceiverURI(ctx, r.ID, uri)
	return err
}

// redact leaves a URI's query (receivers often carry a token there, as CMM's do) and
// password out of the log.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable)"
	}
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}
