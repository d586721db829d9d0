//! The batched flush: one multi-row statement per table (`unnest` arrays), all in one
//! transaction, every row fenced by the owner epoch it was written under.

use std::collections::HashSet;

use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::batch::{ActionLogRow, AttributeDirty, CharacterDirty, DirtyRow, RowKey, Table};
use super::{Db, DbError};

/// What a flush did: rows written, and rows refused because a newer claim owns them.
#[derive(Debug, Default)]
pub struct FlushOutcome {
    pub written: usize,
    pub fenced: Vec<RowKey>,
}

/// Writes `rows` in one transaction. Retrying is the caller's business (the rows are kept).
pub async fn flush(db: &Db, rows: &[&DirtyRow]) -> Result<FlushOutcome, DbError> {
    let mut characters = Vec::new();
    let mut attributes = Vec::new();
    let mut logs = Vec::new();
    for row in rows {
        match row {
            DirtyRow::Character(c) => characters.push(c),
            DirtyRow::Attribute(a) => attributes.push(a),
            DirtyRow::ActionLog(l) => logs.push(l),
        }
    }
    let mut client = db.client().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::Serializable)
        .start()
        .await?;
    let mut written: HashSet<RowKey> = HashSet::with_capacity(rows.len());
    if !characters.is_empty() {
        written.extend(flush_characters(&tx, &characters).await?);
    }
    if !attributes.is_empty() {
        written.extend(flush_attributes(&tx, &attributes).await?);
    }
    if !logs.is_empty() {
        written.extend(flush_action_logs(&tx, &logs).await?);
    }
    tx.commit().await?;
    let fenced: Vec<RowKey> = rows
        .iter()
        .map(|r| r.key())
        .filter(|k| !written.contains(k))
        .collect();
    Ok(FlushOutcome {
        written: written.len(),
        fenced,
    })
}

async fn flush_characters(
    tx: &Transaction<'_>,
    rows: &[&CharacterDirty],
) -> Result<Vec<RowKey>, DbError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let epochs: Vec<i64> = rows.iter().map(|r| r.epoch).collect();
    let locations: Vec<&str> = rows.iter().map(|r| r.location.as_str()).collect();
    let hps: Vec<i32> = rows.iter().map(|r| r.hp).collect();
    let xps: Vec<i64> = rows.iter().map(|r| r.xp).collect();
    let levels: Vec<i32> = rows.iter().map(|r| r.level).collect();
    let points: Vec<i32> = rows.iter().map(|r| r.skill_points).collect();
    let travels: Vec<Option<&serde_json::Value>> = rows.iter().map(|r| r.travel.as_ref()).collect();
    let stmt = tx
        .prepare_cached(
            "UPDATE player_character AS p \
             SET location = u.location, hp = u.hp, xp = u.xp, level = u.level, \
                 skill_points = u.skill_points, travel = u.travel, update_time = now() \
             FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::int4[], $5::int8[], $6::int4[], \
                         $7::int4[], $8::jsonb[]) \
                  AS u(id, epoch, location, hp, xp, level, skill_points, travel) \
             WHERE p.id = u.id AND p.owner_epoch = u.epoch \
             RETURNING p.id",
        )
        .await?;
    let written = tx
        .query(
            &stmt,
            &[
                &ids, &epochs, &locations, &hps, &xps, &levels, &points, &travels,
            ],
        )
        .await?;
    Ok(written
        .iter()
        .map(|r| RowKey {
            table: Table::Character,
            id: r.get(0),
            sub: String::new(),
        })
        .collect())
}

async fn flush_attributes(
    tx: &Transaction<'_>,
    rows: &[&AttributeDirty],
) -> Result<Vec<RowKey>, DbError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.character_id).collect();
    let epochs: Vec<i64> = rows.iter().map(|r| r.epoch).collect();
    let codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    let values: Vec<i64> = rows.iter().map(|r| r.value).collect();
    // The fence is on the parent row: SERIALIZABLE makes the EXISTS read conflict with a
    // concurrent claim, so a stale owner's attribute write cannot slip past a new claim.
    let written = query_cached(
        tx,
        "INSERT INTO character_attribute (character_id, code, value) \
             SELECT u.character_id, u.code, u.value \
             FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::int8[]) AS u(character_id, epoch, code, value) \
             WHERE EXISTS (SELECT 1 FROM player_character p \
                           WHERE p.id = u.character_id AND p.owner_epoch = u.epoch) \
             ON CONFLICT (character_id, code) DO UPDATE SET value = excluded.value \
             RETURNING character_id, code",
            &[&ids, &epochs, &codes, &values],
        )
        .await?;
    Ok(written
        .iter()
        .map(|r| RowKey {
            table: Table::CharacterAttribute,
            id: r.get(0),
            sub: r.get(1),
        })
        .collect())
}

async fn flush_action_logs(
    tx: &Transaction<'_>,
    rows: &[&ActionLogRow],
) -> Result<Vec<RowKey>, DbError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.battle_id).collect();
    let epochs: Vec<i64> = rows.iter().map(|r| r.epoch).collect();
    let turns: Vec<i32> = rows.iter().map(|r| r.turn).collect();
    let payloads: Vec<&[u8]> = rows.iter().map(|r| r.payload.as_slice()).collect();
    let written = query_cached(
        tx,
        "INSERT INTO battle_action_log (battle_id, turn, payload, created_at) \
             SELECT u.battle_id, u.turn, u.payload, now() \
             FROM unnest($1::uuid[], $2::int8[], $3::int4[], $4::bytea[]) AS u(battle_id, epoch, turn, payload) \
             WHERE EXISTS (SELECT 1 FROM battle_encounter b \
                           WHERE b.id = u.battle_id AND b.owner_epoch = u.epoch) \
             ON CONFLICT (battle_id, turn) DO UPDATE SET payload = excluded.payload \
             RETURNING battle_id, turn",
            &[&ids, &epochs, &turns, &payloads],
        )
        .await?;
    Ok(written
        .iter()
        .map(|r| RowKey {
            table: Table::BattleActionLog,
            id: r.get(0),
            sub: r.get::<_, i32>(1).to_string(),
        })
        .collect())
}

/// The baseline the benchmark compares against: one UPDATE statement per row.
pub async fn flush_characters_row_by_row(
    db: &Db,
    rows: &[CharacterDirty],
) -> Result<usize, DbError> {
    let client = db.client().await?;
    let stmt = client
        .prepare(
            "UPDATE player_character SET location = $3, hp = $4, xp = $5, level = $6, \
             skill_points = $7, travel = $8, update_time = now() WHERE id = $1 AND owner_epoch = $2",
        )
        .await?;
    let mut n = 0;
    for r in rows {
        n += client
            .execute(
                &stmt,
                &[
                    &r.id,
                    &r.epoch,
                    &r.location,
                    &r.hp,
                    &r.xp,
                    &r.level,
                    &r.skill_points,
                    &r.travel,
                ],
            )
            .await? as usize;
    }
    Ok(n)
}

/// Runs a statement prepared once per connection: flushes repeat the same few statements, so
/// skipping the parse/plan round trip matters.
async fn query_cached(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, DbError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query(&stmt, params).await?)
}
