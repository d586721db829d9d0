-- Accounts: users and the device / custom ids that authenticate them.
-- Rules for every file in schema/: one schema change per statement, every DDL idempotent
-- (IF NOT EXISTS), a statement ends with `;` at the end of a line, no `;` anywhere else.

CREATE TABLE IF NOT EXISTS users (
    id           UUID        PRIMARY KEY,
    username     TEXT        NOT NULL UNIQUE,
    display_name TEXT,
    vars         JSONB       NOT NULL DEFAULT '{}',
    create_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS user_device (
    id      TEXT PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS user_device_user_id_idx ON user_device (user_id);

CREATE TABLE IF NOT EXISTS user_custom (
    id      TEXT PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS user_custom_user_id_idx ON user_custom (user_id);
