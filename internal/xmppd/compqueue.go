package xmppd

import (
	"errors"
	"fmt"
	"sync"
)

// senderShare is how many stanzas one client session may have waiting in one component's
// queue: an eighth of it, so that at least eight senders fill it, and one participant in a
// flood cannot starve the others of a meeting.
const senderShare = queueLen / 8

// Why a stanza routed to a component is refused.
var (
	// errSenderShare: the sender has senderShare stanzas waiting for this component already.
	errSenderShare = errors.New("the sender's share of the component's queue is full")
	// errComponentQueueFull: the component's queue of routed stanzas is full (it does not
	// read fast enough).
	errComponentQueueFull = errors.New("the component's queue is full")
	// errComponentGone: the component's stream has ended.
	errComponentGone = errors.New("the component is gone")
)

// compItem is one element queued for a component: from is the client session it was routed
// from (nil for the server's own traffic and for stanzas from other components).
type compItem struct {
	b    []byte
	from *session
	own  bool // the server's own: not counted against the routed lane's bounds
}

// compQueue is a component's outbound queue, drained by the component's writer. It is one
// FIFO (what is queued is written in order) with two kinds of element:
//
//   - the server's own (login relay requests, session-end notices): never refused. They are
//     bounded by the logins in flight and the sessions open, not here; a component that
//     does not read is caught by the write timeout;
//   - stanzas routed from clients and other components: at most queueLen of them and
//     queueBytes in all, at most senderShare from any one client session. Over that the
//     stanza is refused (its sender gets resource-constraint); the link stays up.
type compQueue struct {
	mu          sync.Mutex
	items       []compItem
	routed      int // routed (not own) items queued
	routedBytes int
	closed      bool
	wake        chan struct{} // capacity 1: something was queued
}

func (q *compQueue) init() { q.wake = make(chan struct{}, 1) }

func (q *compQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pushOwn queues the server's own b; false once the queue is closed.
func (q *compQueue) pushOwn(b []byte) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, compItem{b: b, own: true})
	q.mu.Unlock()
	q.signal()
	return true
}

// push queues a routed stanza from a client session (from) or another component (nil).
func (q *compQueue) push(b []byte, from *session) error {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return errComponentGone
	case q.routed >= queueLen || q.routedBytes+len(b) > queueBytes:
		q.mu.Unlock()
		return errComponentQueueFull
	case from != nil && from.compQueued.Load() >= senderShare:
		q.mu.Unlock()
		return errSenderShare
	}
	if from != nil {
		from.compQueued.Add(1)
	}
	q.items = append(q.items, compItem{b: b, from: from})
	q.routed++
	q.routedBytes += len(b)
	q.mu.Unlock()
	q.signal()
	return nil
}

// take moves everything queued to the end of dst. Routed items stay counted against their
// senders' shares until written.
func (q *compQueue) take(dst []compItem) []compItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.items...)
	clear(q.items)
	q.items = q.items[:0]
	if cap(q.items) > 64 {
		q.items = nil // a burst's memory is not kept
	}
	q.routed, q.routedBytes = 0, 0
	return dst
}

// written gives back the senders' shares of items taken and written (or dropped).
func (q *compQueue) written(items []compItem) {
	for _, it := range items {
		if it.from != nil {
			it.from.compQueued.Add(-1)
		}
	}
}

// close refuses what comes next and gives back the shares of what is left.
func (q *compQueue) close() {
	q.mu.Lock()
	q.closed = true
	left := q.items
	q.items, q.routed, q.routedBytes = nil, 0, 0
	q.mu.Unlock()
	q.written(left)
}

// bounds describes the queue's fill, for logs.
func (q *compQueue) bounds() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return fmt.Sprintf("%d routed stanzas (%d bytes) of %d (%d bytes), %d in all", q.routed, q.routedBytes, queueLen, queueBytes, len(q.items))
}
