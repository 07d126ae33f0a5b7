package xmppd

import (
	"confab.dev/confab/internal/xmppd/callbridges"
	"confab.dev/confab/internal/xmppd/roster"
)

// Stores are what an XMPP server keeps on disk: the registry of the Call Bridges allowed to
// register (Config.Registry), which `confab xmpp callbridge` edits and the server watches
// (callbridges.Registry.Watch, then Server.RegistryChanged), and the users' rosters and
// presence subscriptions [RFC 6121] (Config.Roster), the only user data the server keeps.
type Stores struct {
	Registry *callbridges.Registry
	Roster   *roster.SQLite
}

// OpenStores opens the registry at registryFile and the roster database at rosterFile,
// each created owner-only when it does not exist. The caller closes Roster after the
// Server's Shutdown (the registry holds no open file).
func OpenStores(registryFile, rosterFile string) (*Stores, error) {
	reg, err := callbridges.Open(registryFile)
	if err != nil {
		return nil, err
	}
	ros, err := roster.OpenSQLite(rosterFile)
	if err != nil {
		return nil, err
	}
	return &Stores{Registry: reg, Roster: ros}, nil
}
