-- Idempotency receipts: the answer to a state-changing request, stored in the same
-- transaction as its change, keyed by (user, client request_id). A repeat returns it; the
-- sweep deletes receipts older than the retention (at least 24 hours).

CREATE TABLE IF NOT EXISTS request_receipt (
    user_id     UUID        NOT NULL,
    request_id  TEXT        NOT NULL,
    fingerprint TEXT        NOT NULL,
    answer      TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, request_id)
);

CREATE INDEX IF NOT EXISTS request_receipt_created_at ON request_receipt (created_at);
