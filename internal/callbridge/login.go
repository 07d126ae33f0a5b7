package callbridge

import (
	"context"
	"time"

	"confab.dev/confab/internal/callbridge/linkstate"
	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/loginrelay"
	"confab.dev/confab/internal/stream"
)

// loginJob is one login relay request and where to answer it; ctx is the link's, which ends
// when the link does.
type loginJob struct {
	ctx context.Context
	r   *loginrelay.Responder
	c   conn
	e   *stream.Element
}

// login hands a request to an idle login worker, starts a new one while there are fewer than
// cfg.LoginWorkers, or waits for one to be free (the link's dispatch waits with it, which is
// the back-pressure: the XMPP server's relay times out what waits too long).
func (b *Bridge) login(ctx context.Context, job loginJob) {
	select {
	case b.loginJobs <- job:
		return
	default:
	}
	b.mu.Lock()
	start := b.loginWorkers < b.cfg.LoginWorkers && !b.closed
	if start {
		b.loginWorkers++
		b.wg.Add(1)
	}
	b.mu.Unlock()
	if start {
		go b.loginWorker(job)
		return
	}
	select {
	case b.loginJobs <- job:
	case <-ctx.Done():
	case <-b.ctx.Done():
	}
}

// loginWorker answers job and then every request it is handed, until the Bridge stops. The
// answer to a wrong password is held until the Responder's failure floor (so that every
// wrong password takes the same time) by a timer, not by the worker.
func (b *Bridge) loginWorker(job loginJob) {
	defer b.wg.Done()
	for {
		if reply, at := job.r.HandleIQTimed(job.ctx, job.e); reply != nil {
			b.sendAt(job.c, reply, at)
		}
		select {
		case job = <-b.loginJobs:
		case <-b.ctx.Done():
			return
		}
	}
}

// responderFor returns the login responder of link connection c: one per registration, in
// the domain the link registered with.
func (b *Bridge) responderFor(c conn) *loginrelay.Responder {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.respConn == c && b.responder != nil {
		return b.responder
	}
	domain := b.Link.Config().Domain
	onLogin := users.LoginLogger(b.log)
	b.responder = &loginrelay.Responder{
		Domain: domain,
		Dir:    b.Users.Directory(domain, b.Meetings),
		Logger: b.log,
		OnLogin: func(jid string, ok bool, reason string) {
			onLogin(jid, ok, reason)
			b.Meetings.LoginResult(jid, ok, reason)
			// Step 12 is the link's use for a login: the request came over the link and is
			// answered. A wrong password is such a use, and says nothing against the link;
			// only an answer that cannot be sent fails the step (see sendAt).
			b.Link.Record(linkstate.Event{Step: linkstate.StepLogin, Target: jid, Start: time.Now(), Outcome: linkstate.OK, Detail: loginDetail(jid, ok, reason)})
		},
		OnSessionEnd:  b.Meetings.SessionEnded,
		OnLoginSource: b.Meetings.LoginFrom,
	}
	b.respConn = c
	return b.responder
}

// sendAt writes reply on c at at (now if it has passed); a pending write is counted in
// Bridge.wg, so Shutdown waits for it (at most the failure floor).
func (b *Bridge) sendAt(c conn, reply []byte, at time.Time) {
	write := func() {
		if err := c.Write(reply); err != nil {
			b.log.Warn("login relay: answer not sent", "err", err)
			b.Link.Record(linkstate.Event{Step: linkstate.StepLogin, Outcome: linkstate.Failed, Cause: "relay-failed",
				Detail: "the answer to a login request could not be sent over the link: " + err.Error(),
				Remedy: "the link to the XMPP server failed while the login was decided; the user logs in again once the link is back (see step 11)"})
		}
	}
	d := time.Until(at)
	if d <= 0 {
		write()
		return
	}
	b.wg.Add(1)
	time.AfterFunc(d, func() {
		defer b.wg.Done()
		write()
	})
}

// loginDetail says how a relayed login was answered, for step 12's event.
func loginDetail(jid string, ok bool, reason string) string {
	who := jid
	if who == "" {
		who = "(no user name)"
	}
	switch {
	case ok:
		return "login request of " + who + " relayed over the link and answered: success"
	case reason == loginrelay.CondNotAuthorized:
		return "login request of " + who + " relayed over the link and answered: refused (not-authorized, a wrong user name or password): the link works"
	}
	return "login request of " + who + " relayed over the link and answered: refused (" + reason + "): the link works"
}
