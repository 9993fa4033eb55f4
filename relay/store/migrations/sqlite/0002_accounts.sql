-- Accounts for the relay's web page: a password per user, one-time
-- sign-in links, server-side sessions, and a name for each token.
-- Secrets (link codes, session ids) are stored as SHA-256 hashes only.
ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';

ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';

CREATE TABLE sign_in_links (
	hash       TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id),
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT
);

CREATE TABLE web_sessions (
	hash       TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id),
	csrf       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
