-- World events (bosses): one row per event, claimed like every entity (owner_node + owner_epoch,
-- every write fenced by the epoch); the damage of each participant; one reward row per
-- (event, character), inserted in the character's reward transaction so it is never paid twice.

CREATE TABLE IF NOT EXISTS world_event (
    id           TEXT        PRIMARY KEY,
    kind         TEXT        NOT NULL,
    title        TEXT        NOT NULL,
    max_hp       INT8        NOT NULL,
    hp           INT8        NOT NULL,
    starts_at    TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ NOT NULL,
    reward_gold  INT8        NOT NULL DEFAULT 0,
    reward_item  TEXT        NULL,
    state        TEXT        NOT NULL,
    killed_by    UUID        NULL,
    create_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    owner_node   TEXT        NULL,
    owner_epoch  INT8        NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS world_event_state_idx ON world_event (state);

CREATE TABLE IF NOT EXISTS world_event_participant (
    event_id     TEXT NOT NULL REFERENCES world_event (id) ON DELETE CASCADE,
    character_id UUID NOT NULL,
    user_id      UUID NOT NULL,
    damage       INT8 NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, character_id)
);

CREATE TABLE IF NOT EXISTS world_event_reward (
    event_id     TEXT        NOT NULL,
    character_id UUID        NOT NULL,
    gold         INT8        NOT NULL,
    item         TEXT        NULL,
    rewarded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, character_id)
);
