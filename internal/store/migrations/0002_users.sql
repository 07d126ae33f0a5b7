-- Users (CMS /users) and the LDAP configuration they are imported through (CMS /ldapServers,
-- /ldapMappings, /ldapSources, /ldapSyncs). Booleans are INTEGER 0/1 and timestamps RFC 3339
-- text, as in 0001, so that the same statements serve SQLite and PostgreSQL.

-- An LDAP server's bind account password is kept as given: the Call Bridge must present it to
-- the server. It is write-only in the API.
CREATE TABLE ldap_servers (
	id TEXT PRIMARY KEY,
	address TEXT NOT NULL,
	port_number INTEGER NOT NULL,
	username TEXT NOT NULL DEFAULT '',
	password TEXT NOT NULL DEFAULT '',
	secure INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL
);

-- Templates such as $uid$@example.com (see internal/users).
CREATE TABLE ldap_mappings (
	id TEXT PRIMARY KEY,
	jid_mapping TEXT NOT NULL DEFAULT '',
	name_mapping TEXT NOT NULL DEFAULT '',
	email_mapping TEXT NOT NULL DEFAULT '',
	cdr_tag_mapping TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL
);

-- A source ties a server and a mapping to the part of the directory to import. A server or a
-- mapping that a source uses cannot be deleted.
CREATE TABLE ldap_sources (
	id TEXT PRIMARY KEY,
	server_id TEXT NOT NULL REFERENCES ldap_servers (id),
	mapping_id TEXT NOT NULL REFERENCES ldap_mappings (id),
	base_dn TEXT NOT NULL,
	filter TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL
);

-- Local users carry their credentials (SCRAM salted keys, an Argon2id PHC string; never the
-- password); LDAP users carry their source and DN, and their password is checked by a bind.
-- Deleting a source deletes the users imported through it.
CREATE TABLE users (
	id TEXT PRIMARY KEY,
	jid TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL CHECK (kind IN ('local', 'ldap')),
	name TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	cdr_tag TEXT NOT NULL DEFAULT '',
	scram_sha1 TEXT NOT NULL DEFAULT '',
	scram_sha256 TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL DEFAULT '',
	ldap_source_id TEXT REFERENCES ldap_sources (id) ON DELETE CASCADE,
	ldap_dn TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	CHECK ((kind = 'ldap') = (ldap_source_id IS NOT NULL))
);
CREATE INDEX users_ldap_source ON users (ldap_source_id);

-- Sync runs: queued (pending), running (inProgress), finished (complete, failed). source_id is
-- '' for a sync of every source; it is not a foreign key so that the record of a sync outlives
-- its source.
CREATE TABLE ldap_syncs (
	id TEXT PRIMARY KEY,
	source_id TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL CHECK (state IN ('pending', 'inProgress', 'complete', 'failed')),
	remove_when_finished INTEGER NOT NULL DEFAULT 0,
	failure_reason TEXT NOT NULL DEFAULT '',
	clashing_user_jid TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	num_users_imported INTEGER NOT NULL DEFAULT 0,
	num_sources_complete INTEGER NOT NULL DEFAULT 0,
	users_created INTEGER NOT NULL DEFAULT 0,
	users_updated INTEGER NOT NULL DEFAULT 0,
	users_deleted INTEGER NOT NULL DEFAULT 0,
	entries_skipped INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	started_at TEXT NOT NULL DEFAULT '',
	finished_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ldap_syncs_state ON ldap_syncs (state, created_at);
