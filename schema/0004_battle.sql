-- Battles: one encounter row written at the start, the action log in batches, the result at the end.

CREATE TABLE IF NOT EXISTS battle_encounter (
    id             UUID        PRIMARY KEY,
    character_id   UUID        NOT NULL,
    from_node      TEXT        NULL,
    to_node        TEXT        NULL,
    seed           INT8        NOT NULL,
    enemy          JSONB       NOT NULL DEFAULT '{}',
    state          TEXT        NOT NULL,
    turn           INT4        NOT NULL DEFAULT 0,
    result_payload JSONB       NULL,
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    ended_at       TIMESTAMPTZ NULL,
    owner_node     TEXT        NULL,
    owner_epoch    INT8        NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS battle_encounter_character_id_idx ON battle_encounter (character_id);

CREATE TABLE IF NOT EXISTS battle_action_log (
    battle_id  UUID        NOT NULL,
    turn       INT4        NOT NULL,
    payload    BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (battle_id, turn)
);
