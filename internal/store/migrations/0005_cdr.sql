-- Call Detail Records (CMS /system/cdrReceivers): where they go, and those waiting to go.

-- A receiver is an http(s) URL. legacy marks the one of CMS's older single-receiver nodes
-- (/system/cdrReceiver, /system/configuration/cdr).
CREATE TABLE cdr_receivers (
	id TEXT PRIMARY KEY,
	uri TEXT NOT NULL DEFAULT '',
	legacy INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);

-- The records each receiver has yet to acknowledge, in the order they are to be sent (seq,
-- assigned by the one writer, the Call Bridge's CDR service). A record is the <record>
-- element's content; session, record_index and correlator_index are CMS's numbering, kept so
-- that a record sent again after a restart is recognisably the same. missing counts records
-- dropped just before this one because the receiver's queue was full (CMS's
-- numPreceedingRecordsMissing).
CREATE TABLE cdr_queue (
	seq BIGINT PRIMARY KEY,
	receiver_id TEXT NOT NULL REFERENCES cdr_receivers (id) ON DELETE CASCADE,
	session TEXT NOT NULL,
	record_index BIGINT NOT NULL,
	correlator_index BIGINT NOT NULL,
	missing BIGINT NOT NULL DEFAULT 0,
	type TEXT NOT NULL,
	time TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX cdr_queue_receiver ON cdr_queue (receiver_id, seq);
