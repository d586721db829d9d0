//! Membership heartbeat SQL: one row per node in `cluster_member`, renewed by the node's heartbeat.

use super::{Db, DbError};

/// A member as recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub node_id: String,
    pub peer_addr: String,
    pub client_addr: String,
    pub incarnation: i64,
    pub status: String,
    /// Milliseconds since the row's last heartbeat, by the database's clock (one clock for
    /// every node, so node clock skew does not matter).
    pub silent_ms: i64,
    /// The catalog version the node served at its last heartbeat.
    pub catalog_version: i64,
}

/// Status of a member that is serving.
pub const ALIVE: &str = "alive";
/// Status of a member that left on purpose (drain).
pub const LEFT: &str = "left";
/// Status of a member that is handing its entities off: out of every view (no new keys), but
/// its lease still holds what it has not released yet.
pub const DRAINING: &str = "draining";

/// Writes this node's heartbeat (insert or refresh). A row of a newer incarnation of the same
/// node id is never overwritten by an older process.
pub async fn heartbeat(db: &Db, row: &MemberRow, view_version: i64) -> Result<bool, DbError> {
    let client = db.client().await?;
    let n = client
        .execute(
            "INSERT INTO cluster_member (node_id, peer_addr, client_addr, incarnation, status, last_heartbeat, view_version, catalog_version) \
             VALUES ($1, $2, $3, $4, $5, now(), $6, $7) \
             ON CONFLICT (node_id) DO UPDATE SET peer_addr = excluded.peer_addr, client_addr = excluded.client_addr, \
               incarnation = excluded.incarnation, status = excluded.status, last_heartbeat = now(), \
               view_version = excluded.view_version, catalog_version = excluded.catalog_version \
             WHERE cluster_member.incarnation <= excluded.incarnation",
            &[&row.node_id, &row.peer_addr, &row.client_addr, &row.incarnation, &row.status, &view_version, &row.catalog_version],
        )
        .await?;
    Ok(n == 1)
}

/// Every member row, with how long each has been silent.
pub async fn members(db: &Db) -> Result<Vec<MemberRow>, DbError> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT node_id, peer_addr, client_addr, incarnation, status, \
                    (EXTRACT(EPOCH FROM (now() - last_heartbeat)) * 1000)::INT8, catalog_version \
             FROM cluster_member ORDER BY node_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| MemberRow {
            node_id: r.get(0),
            peer_addr: r.get(1),
            client_addr: r.get(2),
            incarnation: r.get(3),
            status: r.get(4),
            silent_ms: r.get(5),
            catalog_version: r.get(6),
        })
        .collect())
}

/// The incarnation recorded for `node_id`, if any.
pub async fn incarnation(db: &Db, node_id: &str) -> Result<Option<i64>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "SELECT incarnation FROM cluster_member WHERE node_id = $1",
            &[&node_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Marks this node as gone (end of a drain), if the row is still this incarnation's.
pub async fn leave(db: &Db, node_id: &str, incarnation: i64) -> Result<(), DbError> {
    let client = db.client().await?;
    client
        .execute(
            "UPDATE cluster_member SET status = $3 WHERE node_id = $1 AND incarnation = $2",
            &[&node_id, &incarnation, &LEFT],
        )
        .await?;
    Ok(())
}
