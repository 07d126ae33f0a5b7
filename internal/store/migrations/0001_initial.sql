-- The Call Bridge's own XMPP settings: one row, created here so that every later change is an
-- UPDATE of a row that exists (and can be locked). The shared secret is kept as given because
-- the XEP-0114 handshake needs the secret itself, not a hash of it.
CREATE TABLE xmpp_config (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	unique_name TEXT NOT NULL DEFAULT '',
	domain TEXT NOT NULL DEFAULT '',
	server_address_override TEXT NOT NULL DEFAULT '',
	shared_secret TEXT NOT NULL DEFAULT '',
	updated_at TEXT NOT NULL DEFAULT ''
);
INSERT INTO xmpp_config (id) VALUES (1);

-- Accounts of the REST API (HTTP Basic). password_hash is a PHC string (internal/passhash).
CREATE TABLE api_users (
	name TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	created_at TEXT NOT NULL
);
