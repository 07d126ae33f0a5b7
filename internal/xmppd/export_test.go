package xmppd

// DetachedSessions counts the sessions waiting, detached, to be resumed [XEP-0198].
func DetachedSessions(s *Server) int {
	s.smMu.Lock()
	sessions := make([]*session, 0, len(s.smIDs))
	for _, ss := range s.smIDs {
		sessions = append(sessions, ss)
	}
	s.smMu.Unlock()
	n := 0
	for _, ss := range sessions {
		ss.mu.Lock()
		if ss.state == stateDetached {
			n++
		}
		ss.mu.Unlock()
	}
	return n
}

// EndSessions tells the component componentJID, through the login relay, that n sessions
// ended (full JIDs prefix0 ... prefix<n-1>), all at once, as when n sessions end together.
func EndSessions(s *Server, componentJID, prefix string, n int) bool {
	c := s.router.component(componentJID)
	if c == nil {
		return false
	}
	for i := range n {
		s.relay.SessionEnded(c, prefix+itoa(i), "closed")
	}
	return true
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for ; i > 0; i /= 10 {
		n--
		b[n] = byte('0' + i%10)
	}
	return string(b[n:])
}
