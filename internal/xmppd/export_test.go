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
