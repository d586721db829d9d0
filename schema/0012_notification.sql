-- Stored notifications (Nakama's `notification` table): the ones the server marks persistent,
-- kept until the player deletes them (`DELETE /v2/notification`) and listed oldest first by
-- (create_time, id) with `GET /v2/notification`. Ids are chosen by the writer, so a repeated
-- write of one notification (a retried transaction) inserts nothing (`ON CONFLICT (id)`).

CREATE TABLE IF NOT EXISTS notification (
    id          UUID        PRIMARY KEY,
    user_id     UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    subject     TEXT        NOT NULL,
    content     TEXT        NOT NULL DEFAULT '{}',
    code        INT4        NOT NULL,
    sender_id   UUID,
    create_time TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS notification_user_time_idx ON notification (user_id, create_time, id);
