-- What lets people carry on across a restart of the Call Bridge.

-- Keys the Call Bridge keeps: HMAC keys such as the one that signs guests' rejoin
-- credentials. A key made on first use is shared by every Call Bridge on the database, and
-- survives their restarts. value is base64 (standard encoding).
CREATE TABLE secrets (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL,
	created_at TEXT NOT NULL
);

-- Signed-in web admin sessions. id_hash is the hex SHA-256 of the session identifier the
-- browser holds in its cookie: the identifier itself is never stored, so a copy of the
-- database signs nobody in. created and seen are Unix seconds, for the absolute and idle
-- expiries.
CREATE TABLE admin_sessions (
	id_hash TEXT PRIMARY KEY,
	user_name TEXT NOT NULL,
	csrf TEXT NOT NULL,
	created BIGINT NOT NULL,
	seen BIGINT NOT NULL
);
CREATE INDEX admin_sessions_seen ON admin_sessions (seen);
