-- Compensation: dirty rows that could not be written for a reason of their own (a constraint,
-- bad data) after their retries, set aside so they no longer hold up their node's flushes.
-- One open record per row key: a later failure of the same row replaces the payload (the
-- newest version of a row is the one that matters, as in the flush queue). An operator lists,
-- retries or discards them over the admin API.
--
-- payload is the row as JSON *text*, not JSONB: JSONB refuses "\u0000", which is exactly the
-- kind of bad data that ends up here. row_sub is the second part of the row key (attribute
-- code, battle turn) with any NUL byte spelled out, for the same reason.

CREATE TABLE IF NOT EXISTS compensation (
    id          UUID        NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    node_id     TEXT        NOT NULL,
    row_table   TEXT        NOT NULL,
    row_id      UUID        NOT NULL,
    row_sub     TEXT        NOT NULL DEFAULT '',
    payload     TEXT        NOT NULL,
    error       TEXT        NOT NULL,
    attempts    INT8        NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS compensation_row_key ON compensation (row_table, row_id, row_sub);

CREATE INDEX IF NOT EXISTS compensation_created_at ON compensation (created_at, id);
