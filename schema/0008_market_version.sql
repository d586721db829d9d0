-- The market's stock has one truth, the row: every write of `quota` (a trade in its own
-- transaction, the market's recovery) bumps `version` and returns the row, so the market actor
-- adopts the newest committed value it hears of and its memory differs from the row only by
-- its open reservations. Old rows start at version 0.

ALTER TABLE market_price_snapshot ADD COLUMN IF NOT EXISTS version INT8 NOT NULL DEFAULT 0;
