-- Player state: characters and everything they own. Child rows go with their character.

CREATE TABLE IF NOT EXISTS player_character (
    id           UUID        PRIMARY KEY,
    user_id      UUID        NOT NULL,
    name         TEXT        NOT NULL,
    faction      TEXT        NOT NULL,
    background   TEXT        NOT NULL,
    gold         INT8        NOT NULL,
    location     TEXT        NOT NULL,
    level        INT4        NOT NULL DEFAULT 1,
    xp           INT8        NOT NULL DEFAULT 0,
    hp           INT4        NOT NULL,
    max_hp       INT4        NOT NULL,
    skill_points INT4        NOT NULL DEFAULT 0,
    travel       JSONB       NULL,
    battle_id    UUID        NULL,
    create_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time  TIMESTAMPTZ NOT NULL DEFAULT now(),
    owner_node   TEXT        NULL,
    owner_epoch  INT8        NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS player_character_user_id_idx ON player_character (user_id);

CREATE TABLE IF NOT EXISTS character_attribute (
    character_id UUID NOT NULL REFERENCES player_character (id) ON DELETE CASCADE,
    code         TEXT NOT NULL,
    value        INT8 NOT NULL DEFAULT 0,
    PRIMARY KEY (character_id, code)
);

CREATE TABLE IF NOT EXISTS character_item (
    id           UUID NOT NULL PRIMARY KEY,
    character_id UUID NOT NULL REFERENCES player_character (id) ON DELETE CASCADE,
    template     TEXT NOT NULL,
    quantity     INT8 NOT NULL DEFAULT 1,
    equipped     BOOL NOT NULL DEFAULT false
);

CREATE INDEX IF NOT EXISTS character_item_character_id_idx ON character_item (character_id);

CREATE TABLE IF NOT EXISTS crew_member (
    id           UUID        NOT NULL PRIMARY KEY,
    character_id UUID        NOT NULL REFERENCES player_character (id) ON DELETE CASCADE,
    archetype    TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    hp           INT4        NOT NULL,
    max_hp       INT4        NOT NULL,
    alive        BOOL        NOT NULL DEFAULT true,
    injured      BOOL        NOT NULL DEFAULT false,
    hired_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS crew_member_character_id_idx ON crew_member (character_id);

CREATE TABLE IF NOT EXISTS caravan (
    character_id UUID        NOT NULL PRIMARY KEY REFERENCES player_character (id) ON DELETE CASCADE,
    capacity     INT8        NOT NULL,
    speed        INT4        NOT NULL,
    update_time  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS caravan_cargo (
    character_id UUID NOT NULL REFERENCES player_character (id) ON DELETE CASCADE,
    good         TEXT NOT NULL,
    quantity     INT8 NOT NULL,
    PRIMARY KEY (character_id, good)
);

-- The live market state per (trade node, good), written by the node's Market actor.
CREATE TABLE IF NOT EXISTS market_price_snapshot (
    node       TEXT        NOT NULL,
    good       TEXT        NOT NULL,
    price      INT8        NOT NULL,
    quota      INT8        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (node, good)
);
