-- Accounts as Nakama keeps them: profile fields a player sets with PUT /v2/account, an email
-- address with its password hash (email authentication and linking), and the token ids
-- revoked by a logout or used up by a refresh, kept until the token would have expired.
-- Rules as in 0001: one change per statement, every DDL idempotent.

ALTER TABLE users ADD COLUMN IF NOT EXISTS avatar_url TEXT;

ALTER TABLE users ADD COLUMN IF NOT EXISTS lang_tag TEXT NOT NULL DEFAULT 'en';

ALTER TABLE users ADD COLUMN IF NOT EXISTS location TEXT;

ALTER TABLE users ADD COLUMN IF NOT EXISTS timezone TEXT;

-- Stored lower-cased, as Nakama does, so the unique index is case-insensitive in effect.
ALTER TABLE users ADD COLUMN IF NOT EXISTS email TEXT;

-- A PHC string (argon2id); NULL when the account has no email way in.
ALTER TABLE users ADD COLUMN IF NOT EXISTS password TEXT;

CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (email);

-- `revoked_at` is the database clock at the revoking statement: nodes catch up on revocations
-- they missed by reading the rows revoked since a watermark of that same clock.
CREATE TABLE IF NOT EXISTS revoked_token (
    tid        TEXT        PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS revoked_token_revoked_at_idx ON revoked_token (revoked_at);

CREATE INDEX IF NOT EXISTS revoked_token_expires_at_idx ON revoked_token (expires_at);
