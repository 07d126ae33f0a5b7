package xmppd

// A bound session's output: its bounded queue, and the flusher goroutine that drains it.

import (
	"sync"

	"confab.dev/confab/internal/stream"
)

// deliver implements endpoint: it queues e for the client.
func (ss *session) deliver(e *stream.Element) { ss.send(e.AppendFrame(nil, stream.NSClient)) }

// send queues a stanza already serialised, and starts a flusher if none runs. A client that
// lets its queue fill up does not read: it is disconnected rather than allowed to hold
// anyone up.
func (ss *session) send(b []byte) { ss.queue(b, true) }

// sendNonza queues an element that is not a stanza (XEP-0198's <a/>, <r/>, <enabled/>...):
// it is not counted, nor kept for a resumption.
func (ss *session) sendNonza(b []byte) { ss.queue(b, false) }

func (ss *session) queue(b []byte, stanza bool) {
	ok, start := ss.out.push(b, stanza)
	if !ok {
		ss.overflow()
		return
	}
	if start {
		ss.startFlusher()
	}
}

// outQueue is a session's outbound queue. It is bounded like a channel of queueLen elements
// and queueBytes bytes, but holds memory only for what is queued: an idle session, the
// common case, holds none (a channel of queueLen would hold 12 KiB). An empty element is a
// keepalive.
//
// A flusher goroutine drains it while it has something: push asks its caller to start one
// when none runs, and the flusher ends when it finds the queue empty. So an idle session
// has no goroutine for its output.
//
// With stream management [XEP-0198] enabled, the stanzas queued are also counted and kept,
// in order, until the client acknowledges them, within the same bounds; while the session
// is detached they are only kept, to be sent when it resumes.
type outQueue struct {
	mu       sync.Mutex
	items    [][]byte
	bytes    int
	flushing bool // a flusher runs (or will, or the queue is drained by hand, in a benchmark)
	closed   bool // the session is ending or its connection failed: nothing more is queued
	flushers sync.WaitGroup

	sm       bool     // stream management is enabled
	detached bool     // no transport: stanzas are kept, nothing is written
	sent     uint32   // stanzas queued since enabled (mod 2^32)
	acked    uint32   // the client's last h
	received uint32   // stanzas handled from the client since enabled (mod 2^32)
	unacked  [][]byte // stanzas queued and not acknowledged, oldest first
	unackedN int      // their bytes
	sinceReq int      // stanzas queued since the last <r/>
	reqOut   bool     // an <r/> awaits its <a/>
}

// push queues b. It reports false when the queue is full, and start when the caller must
// start a flusher. Once the queue is closed, b is dropped.
func (q *outQueue) push(b []byte, stanza bool) (ok, start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return true, false
	}
	if stanza && q.sm {
		if len(q.unacked) >= queueLen || q.unackedN+len(b) > queueBytes ||
			q.detached && q.unackedN+len(b) > detachedBytes {
			return false, false
		}
		q.unacked = append(q.unacked, b)
		q.unackedN += len(b)
		q.sent++
		q.sinceReq++
	}
	if q.detached {
		return true, false // kept in unacked if it is a stanza; a nonza is moot
	}
	if len(q.items) >= queueLen || q.bytes+len(b) > queueBytes {
		return false, false
	}
	q.items = append(q.items, b)
	q.bytes += len(b)
	if stanza && q.sm && q.sinceReq >= ackEvery && !q.reqOut {
		q.items = append(q.items, smRequest)
		q.sinceReq, q.reqOut = 0, true
	}
	return true, q.startLocked()
}

// startLocked reports whether the caller must start a flusher, and counts it.
func (q *outQueue) startLocked() bool {
	if q.flushing || len(q.items) == 0 {
		return false
	}
	q.flushing = true
	q.flushers.Add(1)
	return true
}

// hold makes the caller the starter of the next flusher: until it starts one, what is
// queued waits.
func (q *outQueue) hold() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flushing = true
	q.flushers.Add(1)
}

// pushKeepalive queues a keepalive if nothing is queued or being written; with stream
// management, an <r/> instead if stanzas await their acknowledgement and none was asked
// for.
func (q *outQueue) pushKeepalive() (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.detached || q.flushing || len(q.items) > 0 {
		return false
	}
	if q.sm && len(q.unacked) > 0 && !q.reqOut {
		q.items = append(q.items, smRequest)
		q.sinceReq, q.reqOut = 0, true
	} else {
		q.items = append(q.items, nil)
	}
	return q.startLocked()
}

// take moves everything queued to the end of dst.
func (q *outQueue) take(dst [][]byte) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.takeLocked(dst)
}

func (q *outQueue) takeLocked(dst [][]byte) [][]byte {
	dst = append(dst, q.items...)
	clear(q.items)
	q.items = q.items[:0]
	if cap(q.items) > 16 {
		q.items = nil // a burst's memory is not kept
	}
	q.bytes = 0
	return dst
}

// next is take for the flusher: when there is nothing to write (or the queue is closed or
// detached) it reports false, and the flusher must end.
func (q *outQueue) next(dst [][]byte) ([][]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.detached || len(q.items) == 0 {
		q.flushing = false
		return dst, false
	}
	return q.takeLocked(dst), true
}

// flusherExit records that the flusher ended early (its write failed).
func (q *outQueue) flusherExit() {
	q.mu.Lock()
	q.flushing = false
	q.mu.Unlock()
}

// stop closes the queue without waiting (the connection failed).
func (q *outQueue) stop() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// close closes the queue, waits for the flusher and returns what it left, and the stanzas
// never acknowledged (with stream management).
func (q *outQueue) close() (left, unacked [][]byte) {
	q.stop()
	q.flushers.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	unacked = q.unacked
	q.unacked, q.unackedN = nil, 0
	return q.takeLocked(nil), unacked
}

// startFlusher starts the session's flusher goroutine. It is the one place one starts: its
// caller is whoever the queue told to (push, pushKeepalive or reattach reported start, or
// hold made it the starter), and the queue has counted it in flushers already, so that the
// session's end waits for it. At most one runs at a time.
func (ss *session) startFlusher() { go ss.flushLoop() }

// flushLoop is a flusher: it writes what is queued until the queue is empty.
func (ss *session) flushLoop() {
	defer ss.out.flushers.Done()
	var arr [8][]byte
	for {
		batch, ok := ss.out.next(arr[:0])
		if !ok {
			return
		}
		err := ss.writeBatch(batch)
		clear(batch)
		if err != nil {
			ss.writeFailed(err)
			ss.out.flusherExit()
			return
		}
		ss.lastWrite.touch()
	}
}

// writeBatch writes elements taken from the queue: on TCP in one write, on WebSocket one
// message each. An empty element is a keepalive.
func (ss *session) writeBatch(batch [][]byte) error {
	if len(batch) == 0 {
		return nil
	}
	if _, tcp := ss.t.(*tcpTransport); tcp {
		if len(batch) == 1 && len(batch[0]) > 0 {
			return ss.t.write(batch[0])
		}
		n := 0
		for _, b := range batch {
			n += max(len(b), 1)
		}
		buf := make([]byte, 0, n)
		for _, b := range batch {
			if len(b) == 0 {
				b = keepaliveSpace
			}
			buf = append(buf, b...)
		}
		return ss.t.write(buf)
	}
	for _, b := range batch {
		var err error
		if len(b) == 0 {
			err = ss.t.keepalive()
		} else {
			err = ss.t.write(b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// keepaliveSpace is a whitespace keepalive in a TCP stream [RFC 6120 §4.6.1].
var keepaliveSpace = []byte(" ")

func (ss *session) overflow() {
	if aborted, _, _ := ss.abortReason(); aborted {
		return
	}
	ss.log.Warn("outbound queue full: the client does not read; disconnecting it")
	ss.srv.m.streamErrs.WithLabelValues(stream.PolicyViolation).Inc()
	ss.abort("", "outbound queue full")
	ss.transport().close(true)
}
