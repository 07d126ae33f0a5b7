-- Spaces (CMS coSpaces) and their members (CMS coSpaceUsers).
--
-- call_id and uri are unique when set; the empty string means unset and may repeat. URIs are
-- compared without regard to case. A URI must also not equal another space's secondary URI;
-- that rule spans two columns, so the store checks it in the writing transaction (SQLite
-- serialises writers) rather than with an index.
--
-- The passcode and the secret are kept as given: a guest's passcode is compared with the
-- stored one (in constant time), and the secret goes into join links.
CREATE TABLE cospaces (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT '',
	uri TEXT NOT NULL DEFAULT '',
	secondary_uri TEXT NOT NULL DEFAULT '',
	call_id TEXT NOT NULL DEFAULT '',
	passcode TEXT NOT NULL DEFAULT '',
	secret TEXT NOT NULL DEFAULT '',
	owner_jid TEXT NOT NULL DEFAULT '',
	non_member_access INTEGER NOT NULL DEFAULT 0,
	default_layout TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX cospaces_call_id ON cospaces (call_id) WHERE call_id <> '';
CREATE UNIQUE INDEX cospaces_uri ON cospaces (lower(uri)) WHERE uri <> '';
CREATE INDEX cospaces_secondary_uri ON cospaces (lower(secondary_uri)) WHERE secondary_uri <> '';
CREATE INDEX cospaces_owner ON cospaces (owner_jid);
CREATE INDEX cospaces_order ON cospaces (lower(name), id);

-- Members of a space, by bare JID (lower case). Users live in their own tables (local or
-- imported from LDAP); a membership names the JID so that it survives a re-import.
CREATE TABLE cospace_members (
	id TEXT PRIMARY KEY,
	cospace_id TEXT NOT NULL REFERENCES cospaces (id) ON DELETE CASCADE,
	user_jid TEXT NOT NULL,
	role TEXT NOT NULL DEFAULT 'member',
	created_at TEXT NOT NULL,
	UNIQUE (cospace_id, user_jid)
);
CREATE INDEX cospace_members_jid ON cospace_members (user_jid);
