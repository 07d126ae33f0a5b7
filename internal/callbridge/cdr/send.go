package cdr

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"confab.dev/confab/internal/store"
	"confab.dev/confab/internal/stream"
)

// send posts a receiver's queue, oldest first, until ctx ends: a batch of records of one
// session at a time, acknowledged (removed from the queue) when the receiver answers 2xx, sent
// again after a wait otherwise.
func (s *Service) send(ctx context.Context, sd *sender) {
	wait := s.o.RetryMin
	for ctx.Err() == nil {
		recs, err := s.st.PendingCDRs(ctx, sd.id, s.o.Batch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("cdr: read queue", "receiver", sd.id, "err", err)
			}
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		if len(recs) == 0 {
			select {
			case <-sd.wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		// One session per document: the records of an earlier run go first, on their own.
		n := 1
		for n < len(recs) && recs[n].Session == recs[0].Session {
			n++
		}
		recs = recs[:n]
		s.mu.Lock()
		uri := sd.uri
		s.mu.Unlock()
		err = s.post(ctx, uri, recs)
		s.mu.Lock()
		if err != nil {
			sd.lastError = err.Error()
		} else {
			sd.lastError, sd.lastSuccess = "", s.now()
		}
		s.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("cdr: records not delivered; will retry", "receiver", sd.id, "uri", redact(uri),
				"records", len(recs), "retryIn", wait, "err", err)
			if !sleep(ctx, wait) {
				return
			}
			wait = min(2*wait, s.o.RetryMax)
			continue
		}
		wait = s.o.RetryMin
		if err := s.st.AckCDRs(context.WithoutCancel(ctx), sd.id, recs[len(recs)-1].Seq); err != nil {
			s.log.Error("cdr: acknowledge records", "receiver", sd.id, "err", err)
		} else if s.o.OnDelivered != nil {
			s.o.OnDelivered(sd.id, len(recs))
		}
		s.log.Debug("cdr: records delivered", "receiver", sd.id, "records", len(recs),
			"from", recs[0].RecordIndex, "to", recs[len(recs)-1].RecordIndex)
	}
}

// sleep waits d; false when ctx ended first. New records do not cut the wait short: a
// receiver that is down is not tried at the rate records are made.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// post sends one document of records to uri.
func (s *Service) post(ctx context.Context, uri string, recs []store.CDRRecord) error {
	body := document(recs)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// document is the XML CMS posts: <records session=…> with a <record> per record.
func document(recs []store.CDRRecord) []byte {
	x := stream.Builder{B: make([]byte, 0, 512*len(recs))}
	x.Raw([]byte(`<?xml version="1.0"?>`))
	x.Open("records", "session", recs[0].Session)
	for _, r := range recs {
		missing := ""
		if r.Missing > 0 {
			missing = strconv.FormatInt(r.Missing, 10)
		}
		x.Open("record", "type", r.Type, "time", r.Time, "recordIndex", strconv.FormatInt(r.RecordIndex, 10),
			"correlatorIndex", strconv.FormatInt(r.CorrelatorIndex, 10), "numPreceedingRecordsMissing", missing)
		x.Raw([]byte(r.Body))
		x.End("record")
	}
	x.End("records")
	return x.B
}
