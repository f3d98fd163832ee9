-- Credentials for the HTTP API (`Authorization: Bearer kehu_api_…`): integrations such as
-- the bank's app backend or a nightly load. Only the SHA-256 of a token is kept.
CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
