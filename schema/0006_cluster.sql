-- Cluster membership: one heartbeat row per node.

CREATE TABLE IF NOT EXISTS cluster_member (
    node_id        TEXT        PRIMARY KEY,
    peer_addr      TEXT        NOT NULL,
    client_addr    TEXT        NOT NULL,
    incarnation    INT8        NOT NULL DEFAULT 0,
    status         TEXT        NOT NULL,
    last_heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
    view_version   INT8        NOT NULL DEFAULT 0
);
