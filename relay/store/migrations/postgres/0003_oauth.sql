-- OAuth authorization code grants for hosted MCP clients (ChatGPT,
-- Claude.ai, …). A grant is one approval by a user of one client for one
-- resource (an MCP URL); its codes, refresh tokens and access tokens form
-- one family that is revoked together. Codes and refresh tokens are
-- stored as hashes: they are bearer secrets.
CREATE TABLE oauth_grants (
	id          TEXT PRIMARY KEY,
	user_id     TEXT NOT NULL,
	client_id   TEXT NOT NULL,
	client_name TEXT NOT NULL,
	redirect_uri TEXT NOT NULL,
	resource    TEXT NOT NULL,
	scope       TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	revoked_at  BIGINT
);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id);

CREATE TABLE oauth_codes (
	code_hash      TEXT PRIMARY KEY,
	grant_id       TEXT NOT NULL REFERENCES oauth_grants (id),
	code_challenge TEXT NOT NULL,
	created_at     BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL,
	used_at        BIGINT
);

CREATE TABLE oauth_refresh_tokens (
	token_hash TEXT PRIMARY KEY,
	grant_id   TEXT NOT NULL REFERENCES oauth_grants (id),
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT
);
CREATE INDEX oauth_refresh_grant ON oauth_refresh_tokens (grant_id);

-- The access tokens (rows of tokens) issued under a grant.
CREATE TABLE oauth_grant_tokens (
	jti      TEXT PRIMARY KEY REFERENCES tokens (jti),
	grant_id TEXT NOT NULL REFERENCES oauth_grants (id)
);
CREATE INDEX oauth_grant_tokens_grant ON oauth_grant_tokens (grant_id);
