// Package faults holds fault-injection tests: they build the confab binary once per run,
// start the real processes (`confab xmpp`, `confab callbridge`) on loopback with data
// directories of their own, break them — a restarted XMPP server, a Call Bridge killed with
// SIGKILL, a DNS server that stops answering, an SRV target that dies, a kill in the middle
// of a burst of API writes — and check from the outside (the REST API, the XMPP server's
// admin listener, real client logins) that the system comes back as promised.
//
// The tests are skipped with -short. Each is bounded in time; every process it starts is
// killed when it ends. docs/reliability.md lists what they showed.
package faults
