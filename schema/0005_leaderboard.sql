-- Leaderboards and tournaments (Nakama semantics). expiry_time is unix seconds, 0 = never.

CREATE TABLE IF NOT EXISTS leaderboard (
    id             TEXT        PRIMARY KEY,
    sort_order     INT4        NOT NULL DEFAULT 1,
    operator       INT4        NOT NULL DEFAULT 0,
    authoritative  BOOL        NOT NULL DEFAULT false,
    reset_schedule TEXT        NULL,
    metadata       JSONB       NOT NULL DEFAULT '{}',
    enable_ranks   BOOL        NOT NULL DEFAULT true,
    category       INT4        NOT NULL DEFAULT 0,
    title          TEXT        NOT NULL DEFAULT '',
    description    TEXT        NOT NULL DEFAULT '',
    duration       INT4        NOT NULL DEFAULT 0,
    start_time     TIMESTAMPTZ NOT NULL DEFAULT now(),
    end_time       TIMESTAMPTZ NULL,
    max_size       INT4        NOT NULL DEFAULT 100000000,
    max_num_score  INT4        NOT NULL DEFAULT 1000000,
    join_required  BOOL        NOT NULL DEFAULT false,
    is_tournament  BOOL        NOT NULL DEFAULT false,
    size           INT4        NOT NULL DEFAULT 0,
    create_time    TIMESTAMPTZ NOT NULL DEFAULT now(),
    owner_node     TEXT        NULL,
    owner_epoch    INT8        NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS leaderboard_record (
    leaderboard_id TEXT        NOT NULL,
    expiry_time    INT8        NOT NULL DEFAULT 0,
    owner_id       UUID        NOT NULL,
    username       TEXT        NULL,
    score          INT8        NOT NULL DEFAULT 0,
    subscore       INT8        NOT NULL DEFAULT 0,
    num_score      INT4        NOT NULL DEFAULT 1,
    max_num_score  INT4        NOT NULL DEFAULT 1000000,
    metadata       JSONB       NOT NULL DEFAULT '{}',
    create_time    TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (leaderboard_id, expiry_time, owner_id)
);

CREATE INDEX IF NOT EXISTS leaderboard_record_rank_idx
    ON leaderboard_record (leaderboard_id, expiry_time, score, subscore, owner_id);

-- A player's records across boards (listing and deletion of an account's records).
CREATE INDEX IF NOT EXISTS leaderboard_record_owner_idx ON leaderboard_record (owner_id);
