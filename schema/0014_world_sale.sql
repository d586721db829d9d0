-- Limited-time sales (docs/world.md#limited-time-sales): `stock` units of `good` sold at trade
-- node `node` for `price` gold each between starts_at and ends_at, at most per_character_limit
-- units per character. One owning actor per sale (claim columns as every entity row); the
-- purchase transaction guards `sold <= stock` and the per-character limit itself, so even
-- two owners at once cannot oversell.

CREATE TABLE IF NOT EXISTS world_sale (
    id                  TEXT        PRIMARY KEY,
    node                TEXT        NOT NULL,
    good                TEXT        NOT NULL,
    stock               INT8        NOT NULL,
    sold                INT8        NOT NULL DEFAULT 0,
    price               INT8        NOT NULL,
    per_character_limit INT8        NOT NULL,
    starts_at           TIMESTAMPTZ NOT NULL,
    ends_at             TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    owner_node          TEXT        NULL,
    owner_epoch         INT8        NOT NULL DEFAULT 0,
    CONSTRAINT world_sale_sold_check CHECK (sold >= 0 AND sold <= stock)
);

CREATE TABLE IF NOT EXISTS world_sale_purchase (
    sale_id      TEXT NOT NULL REFERENCES world_sale (id) ON DELETE CASCADE,
    character_id UUID NOT NULL,
    quantity     INT8 NOT NULL,
    PRIMARY KEY (sale_id, character_id)
);
