package launch

import "net/http"

// webAdmin returns the web admin's handler, mounted at /admin/ on the API listener.
func (cb *CallBridge) webAdmin() http.Handler {
	return http.NotFoundHandler()
}
