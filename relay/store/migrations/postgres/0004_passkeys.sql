-- Passkeys (WebAuthn) for the relay's web page: the main way in, with
-- the password as the fallback.
--
-- webauthn_handle is the user handle the passkeys carry: random, never
-- the user id (authenticators may show or leak it). NULL until the
-- user's first passkey; unique where set.
ALTER TABLE users ADD COLUMN webauthn_handle TEXT;
CREATE UNIQUE INDEX users_webauthn_handle ON users (webauthn_handle);

-- One row per passkey. id is the credential id, base64url; credential
-- is the library's credential record (public key, sign counter, flags)
-- as JSON.
CREATE TABLE passkeys (
	id           TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL REFERENCES users (id),
	name         TEXT NOT NULL,
	credential   TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- A WebAuthn ceremony in progress (its challenge and options), bound to
-- a short-lived browser cookie whose hash is the key; taken (deleted)
-- by the ceremony's finish, so it is used at most once.
CREATE TABLE webauthn_ceremonies (
	hash       TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	link_hash  TEXT NOT NULL,
	data       TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
