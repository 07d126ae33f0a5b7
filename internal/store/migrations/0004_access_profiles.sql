-- Spaces' access methods (CMS /coSpaces/<id>/accessMethods), the profiles that shape meetings
-- (CMS /callLegProfiles, /callProfiles, /system/profiles), and other configuration objects
-- that are sets of named settings (CMS /turnServers).

-- A space's CDR tag and profiles. An empty reference means none.
ALTER TABLE cospaces ADD COLUMN cdr_tag TEXT NOT NULL DEFAULT '';
ALTER TABLE cospaces ADD COLUMN call_leg_profile TEXT NOT NULL DEFAULT '';
ALTER TABLE cospaces ADD COLUMN call_profile TEXT NOT NULL DEFAULT '';

-- Other ways into a space: a URI, a call ID and a passcode of their own, and a call leg profile
-- for those who come in this way. Several may share the space's call ID or URI with different
-- passcodes (a host PIN and a guest PIN); uniqueness is checked by the store in the writing
-- transaction, across spaces and access methods, as for spaces (0003).
CREATE TABLE access_methods (
	id TEXT PRIMARY KEY,
	cospace_id TEXT NOT NULL REFERENCES cospaces (id) ON DELETE CASCADE,
	name TEXT NOT NULL DEFAULT '',
	uri TEXT NOT NULL DEFAULT '',
	call_id TEXT NOT NULL DEFAULT '',
	passcode TEXT NOT NULL DEFAULT '',
	secret TEXT NOT NULL DEFAULT '',
	call_leg_profile TEXT NOT NULL DEFAULT '',
	scope TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX access_methods_order ON access_methods (cospace_id, created_at, id);
CREATE INDEX access_methods_call_id ON access_methods (call_id) WHERE call_id <> '';
CREATE INDEX access_methods_uri ON access_methods (lower(uri)) WHERE uri <> '';

-- Configuration objects made of named settings, each kept as a JSON object of strings: a
-- setting that is absent is unset (CMS profiles inherit unset settings from the level above).
-- kind is the API's singular name: callLegProfile, callProfile, turnServer.
CREATE TABLE config_objects (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	fields TEXT NOT NULL DEFAULT '{}',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX config_objects_order ON config_objects (kind, created_at, id);

-- The system-wide profiles (CMS /system/profiles): one row.
CREATE TABLE system_profiles (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	call_leg_profile TEXT NOT NULL DEFAULT '',
	call_profile TEXT NOT NULL DEFAULT '',
	updated_at TEXT NOT NULL DEFAULT ''
);
INSERT INTO system_profiles (id) VALUES (1);
