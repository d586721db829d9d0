-- Each member reports the catalog version it serves with its heartbeat, so the cluster view
-- shows whether every node has picked up a reload. Rows of older nodes read 0.

ALTER TABLE cluster_member ADD COLUMN IF NOT EXISTS catalog_version INT8 NOT NULL DEFAULT 0;
