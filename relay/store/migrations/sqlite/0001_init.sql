-- The relay's durable state. Times are unix milliseconds (UTC) in both
-- dialects, so one code path reads them; 0 or NULL means "not set".
CREATE TABLE users (
	id          TEXT PRIMARY KEY,
	created_at  BIGINT NOT NULL,
	disabled_at BIGINT
);

CREATE TABLE tokens (
	jti        TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('bridge', 'client')),
	dev        TEXT NOT NULL,
	scopes     TEXT NOT NULL,
	aud        TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	last_used  BIGINT,
	revoked_at BIGINT
);
CREATE INDEX tokens_dev ON tokens (dev);

-- One row per revocation, in order: a relay polls it by id to learn of
-- revocations made by another process.
CREATE TABLE revocations (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	jti        TEXT NOT NULL UNIQUE REFERENCES tokens (jti),
	revoked_at BIGINT NOT NULL
);

CREATE TABLE oauth_clients (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	redirect_uris TEXT NOT NULL,
	created_at    BIGINT NOT NULL
);

CREATE TABLE device_codes (
	device_hash TEXT PRIMARY KEY,
	user_code   TEXT NOT NULL UNIQUE,
	client_id   TEXT NOT NULL REFERENCES oauth_clients (id),
	state       TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'redeemed')),
	user_id     TEXT REFERENCES users (id),
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL
);

CREATE TABLE audit_events (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      BIGINT NOT NULL,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail  TEXT NOT NULL
);
