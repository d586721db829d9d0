-- The static catalog: the world every node loads into memory. Keyed by lowercase codes.
-- catalog_meta holds one row (id = 1) whose version is bumped whenever the catalog changes.

CREATE TABLE IF NOT EXISTS catalog_meta (
    id         INT4        PRIMARY KEY,
    version    INT8        NOT NULL,
    updated_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE IF NOT EXISTS trade_node (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    region      TEXT NOT NULL,
    faction     TEXT NULL,
    owner_node  TEXT NULL,
    owner_epoch INT8 NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS faction (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    home_node   TEXT NOT NULL REFERENCES trade_node (code)
);

CREATE TABLE IF NOT EXISTS background_archetype (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    starting_gold INT8 NOT NULL,
    strength      INT4 NOT NULL,
    cunning       INT4 NOT NULL,
    charisma      INT4 NOT NULL,
    endurance     INT4 NOT NULL
);

CREATE TABLE IF NOT EXISTS skill_tree (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS skill_definition (
    code        TEXT PRIMARY KEY,
    tree        TEXT NOT NULL REFERENCES skill_tree (code),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    tier        INT4 NOT NULL,
    requires    TEXT NULL,
    cost        INT4 NOT NULL,
    kind        TEXT NOT NULL,
    power       INT4 NOT NULL DEFAULT 0,
    cooldown    INT4 NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS item_template (
    code    TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    rarity  TEXT NOT NULL,
    value   INT8 NOT NULL,
    attack  INT4 NOT NULL DEFAULT 0,
    defense INT4 NOT NULL DEFAULT 0,
    weight  INT4 NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS crew_archetype (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    hire_cost   INT8 NOT NULL,
    upkeep      INT8 NOT NULL,
    hp          INT4 NOT NULL,
    attack      INT4 NOT NULL,
    defense     INT4 NOT NULL,
    capacity    INT8 NOT NULL DEFAULT 0,
    speed       INT4 NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS trade_good (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    category   TEXT NOT NULL,
    base_price INT8 NOT NULL,
    weight     INT4 NOT NULL
);

CREATE TABLE IF NOT EXISTS trade_route (
    from_node TEXT NOT NULL REFERENCES trade_node (code),
    to_node   TEXT NOT NULL REFERENCES trade_node (code),
    distance  INT4 NOT NULL,
    danger    INT4 NOT NULL CHECK (danger BETWEEN 0 AND 100),
    PRIMARY KEY (from_node, to_node)
);

CREATE TABLE IF NOT EXISTS trade_node_stock (
    node            TEXT NOT NULL REFERENCES trade_node (code),
    good            TEXT NOT NULL REFERENCES trade_good (code),
    base_price      INT8 NOT NULL,
    base_quota      INT8 NOT NULL,
    restock_per_min INT8 NOT NULL,
    PRIMARY KEY (node, good)
);
