//! World events (bosses): their rows, progress, participants and rewards (schema/0013).
//!
//! - The event row is claimed like every entity ([`super::claims`], `EntityTable::WorldEvent`);
//!   its owner writes progress with [`save_progress`]: one UPDATE fenced by the epoch (and by
//!   the row still being open, so nothing is written over an end) and one multi-row `unnest`
//!   upsert of the participants' damage totals, in one transaction.
//! - `state` stores `open` until the event ends; then `defeated`, `expired` or `cancelled`
//!   (final). Scheduled/active are computed from the times ([`crate::domain::world::boss`]).
//! - A reward is one transaction of the character's session ([`grant_reward`]): the reward row
//!   keyed by (event, character) `ON CONFLICT DO NOTHING`, and only if it was new the gold, the
//!   item and the stored notification. A repeated grant changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::notifications::{self, StoredNotification};
use super::{Db, DbError};
use crate::domain::world::boss::{Boss, EventState, Participant};

/// The stored `state` of an event that has not ended.
pub const OPEN: &str = "open";

/// An event as the admin defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDef {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub max_hp: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reward_gold: i64,
    pub reward_item: Option<String>,
}

/// An event row: its definition and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub def: EventDef,
    pub hp: i64,
    /// `None` while open.
    pub ended: Option<EventState>,
}

impl EventRow {
    pub fn boss(&self) -> Boss {
        Boss {
            max_hp: self.def.max_hp,
            hp: self.hp,
            starts_at_ms: self.def.starts_at.timestamp_millis(),
            ends_at_ms: self.def.ends_at.timestamp_millis(),
            ended: self.ended,
        }
    }
}

/// What [`create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    /// The same definition was there already (an idempotent repeat).
    Same,
    /// Another definition holds the id.
    Different,
}

const COLUMNS: &str =
    "id, kind, title, max_hp, starts_at, ends_at, reward_gold, reward_item, hp, state";

fn row(r: &tokio_postgres::Row) -> EventRow {
    let state: String = r.get(9);
    EventRow {
        def: EventDef {
            id: r.get(0),
            kind: r.get(1),
            title: r.get(2),
            max_hp: r.get(3),
            starts_at: r.get(4),
            ends_at: r.get(5),
            reward_gold: r.get(6),
            reward_item: r.get(7),
        },
        hp: r.get(8),
        ended: EventState::parse(&state).filter(|s| s.is_final()),
    }
}

/// Inserts an event (full HP, open) unless its id exists; then says whether that one is the same.
pub async fn create(db: &Db, d: &EventDef) -> Result<Created, DbError> {
    let client = db.client().await?;
    let n = client
        .execute(
            "INSERT INTO world_event (id, kind, title, max_hp, hp, starts_at, ends_at, reward_gold, reward_item, state) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, 'open') ON CONFLICT (id) DO NOTHING",
            &[&d.id, &d.kind, &d.title, &d.max_hp, &d.starts_at, &d.ends_at, &d.reward_gold, &d.reward_item],
        )
        .await?;
    if n == 1 {
        return Ok(Created::New);
    }
    match get(db, &d.id).await? {
        Some(existing) if existing.def == *d => Ok(Created::Same),
        Some(_) => Ok(Created::Different),
        None => Err(DbError::Unavailable(
            "the event vanished while created".into(),
        )),
    }
}

/// One event row.
pub async fn get(db: &Db, id: &str) -> Result<Option<EventRow>, DbError> {
    let client = db.client().await?;
    let sql = format!("SELECT {COLUMNS} FROM world_event WHERE id = $1");
    Ok(client.query_opt(&sql, &[&id]).await?.as_ref().map(row))
}

/// Every event, newest start first (at most `limit`).
pub async fn list(db: &Db, limit: i64) -> Result<Vec<EventRow>, DbError> {
    let client = db.client().await?;
    let sql = format!("SELECT {COLUMNS} FROM world_event ORDER BY starts_at DESC, id LIMIT $1");
    Ok(client
        .query(&sql, &[&limit])
        .await?
        .iter()
        .map(row)
        .collect())
}

/// Cancels an open event: state `cancelled` and the claim bumped and released, which fences
/// its live owner (its next write fails, it stops; a new activation loads it cancelled). No
/// rewards are paid. `Ok(false)` when the event is missing or already ended.
pub async fn cancel(db: &Db, id: &str) -> Result<bool, DbError> {
    let client = db.client().await?;
    let n = client
        .execute(
            "UPDATE world_event SET state = 'cancelled', owner_node = NULL, owner_epoch = owner_epoch + 1, \
             update_time = now() WHERE id = $1 AND state = 'open'",
            &[&id],
        )
        .await?;
    Ok(n == 1)
}

/// Everything an activation loads: the row, the participants, who was rewarded.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub event: EventRow,
    pub participants: BTreeMap<Uuid, Participant>,
    pub rewarded: BTreeSet<Uuid>,
}

pub async fn load(db: &Db, id: &str) -> Result<Option<Loaded>, DbError> {
    let Some(event) = get(db, id).await? else {
        return Ok(None);
    };
    let client = db.client().await?;
    let participants = client
        .query(
            "SELECT character_id, user_id, damage FROM world_event_participant WHERE event_id = $1",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            let p = Participant {
                user_id: r.get(1),
                damage: r.get(2),
            };
            (r.get(0), p)
        })
        .collect();
    let rewarded = rewarded(db, id).await?;
    Ok(Some(Loaded {
        event,
        participants,
        rewarded,
    }))
}

/// The characters with a reward row for the event.
pub async fn rewarded(db: &Db, id: &str) -> Result<BTreeSet<Uuid>, DbError> {
    let client = db.client().await?;
    Ok(client
        .query(
            "SELECT character_id FROM world_event_reward WHERE event_id = $1",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Progress to write: HP, the damage totals of the participants that changed, and the end
/// (`state`, the killer) when it ended.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub hp: i64,
    pub participants: Vec<(Uuid, Participant)>,
    pub end: Option<(EventState, Option<Uuid>)>,
}

/// Writes progress under the claim `(node, epoch)` over a row still open; `Fenced` when the
/// row is another claim's or ended (cancelled) meanwhile: nothing was written.
pub async fn save_progress(
    db: &Db,
    id: &str,
    node: &str,
    epoch: i64,
    p: &Progress,
) -> Result<(), DbError> {
    let (id, node, p) = (id.to_string(), node.to_string(), p.clone());
    db.transact("world_event_progress", move |tx| {
        let (id, node, p) = (id.clone(), node.clone(), p.clone());
        Box::pin(async move {
            let state = p.end.map_or(OPEN, |(s, _)| s.as_str());
            let killer = p.end.and_then(|(_, k)| k);
            let n = tx
                .execute(
                    "UPDATE world_event SET hp = $4, state = $5, killed_by = COALESCE($6, killed_by), \
                     update_time = now() WHERE id = $1 AND owner_node = $2 AND owner_epoch = $3 AND state = 'open'",
                    &[&id, &node, &epoch, &p.hp, &state, &killer],
                )
                .await?;
            if n == 0 {
                return Err(DbError::Fenced(format!("world event {id}")));
            }
            if !p.participants.is_empty() {
                let chars: Vec<Uuid> = p.participants.iter().map(|(c, _)| *c).collect();
                let users: Vec<Uuid> = p.participants.iter().map(|(_, q)| q.user_id).collect();
                let dmg: Vec<i64> = p.participants.iter().map(|(_, q)| q.damage).collect();
                tx.execute(
                    "INSERT INTO world_event_participant (event_id, character_id, user_id, damage) \
                     SELECT $1, u.c, u.u, u.d FROM unnest($2::uuid[], $3::uuid[], $4::int8[]) AS u(c, u, d) \
                     ON CONFLICT (event_id, character_id) DO UPDATE SET damage = excluded.damage",
                    &[&id, &chars, &users, &dmg],
                )
                .await?;
            }
            Ok(())
        })
    })
    .await
    .inspect_err(|e| {
        if matches!(e, DbError::Fenced(_)) {
            db.metrics().fenced_writes.increment(1);
        }
    })
}

/// A reward for one participant, applied by its character's session.
#[derive(Debug, Clone)]
pub struct RewardGrant {
    pub event_id: String,
    pub character_id: Uuid,
    /// The session's claim epoch: the gold is written only under it.
    pub session_epoch: i64,
    pub gold: i64,
    /// The new item's id (derived from event and character) and template.
    pub item: Option<(Uuid, String)>,
    pub notification: Option<StoredNotification>,
}

/// One transaction: the reward row; only if it is new, the gold (fenced by the session's
/// epoch), the item and the stored notification. `Ok(true)` when this call paid it,
/// `Ok(false)` when it had been paid before (nothing changed).
pub async fn grant_reward(db: &Db, g: &RewardGrant) -> Result<bool, DbError> {
    let g = g.clone();
    db.transact("world_event_reward", move |tx| {
        let g = g.clone();
        Box::pin(async move {
            let item = g.item.as_ref().map(|(_, t)| t.clone());
            let n = tx
                .execute(
                    "INSERT INTO world_event_reward (event_id, character_id, gold, item) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (event_id, character_id) DO NOTHING",
                    &[&g.event_id, &g.character_id, &g.gold, &item],
                )
                .await?;
            if n == 0 {
                return Ok(false);
            }
            let n = tx
                .execute(
                    "UPDATE player_character SET gold = gold + $3, update_time = now() WHERE id = $1 AND owner_epoch = $2",
                    &[&g.character_id, &g.session_epoch, &g.gold],
                )
                .await?;
            if n == 0 {
                return Err(DbError::Fenced(format!("character {}", g.character_id)));
            }
            if let Some((id, template)) = &g.item {
                tx.execute(
                    "INSERT INTO character_item (id, character_id, template, quantity, equipped) \
                     VALUES ($1, $2, $3, 1, false) ON CONFLICT (id) DO NOTHING",
                    &[id, &g.character_id, template],
                )
                .await?;
            }
            if let Some(n) = &g.notification {
                notifications::insert_in(tx, std::slice::from_ref(n)).await?;
            }
            Ok(true)
        })
    })
    .await
}

/// Events that need their owner although nobody asks for them: open ones past `ends_at`
/// (they must expire) and ended paying ones with a participant not yet rewarded.
pub async fn due(db: &Db, limit: i64) -> Result<Vec<String>, DbError> {
    let client = db.client().await?;
    Ok(client
        .query(
            "SELECT e.id FROM world_event e WHERE (e.state = 'open' AND e.ends_at <= now()) \
             OR (e.state IN ('defeated', 'expired') AND EXISTS (SELECT 1 FROM world_event_participant p \
               WHERE p.event_id = e.id AND NOT EXISTS (SELECT 1 FROM world_event_reward r \
                 WHERE r.event_id = p.event_id AND r.character_id = p.character_id))) \
             ORDER BY e.id LIMIT $1",
            &[&limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Whether the catalog (the database's) has an item template `code`.
pub async fn item_exists(db: &Db, code: &str) -> Result<bool, DbError> {
    let client = db.client().await?;
    Ok(client
        .query_opt("SELECT 1 FROM item_template WHERE code = $1", &[&code])
        .await?
        .is_some())
}

/// Settles the reward of a participant whose character no longer exists: a reward row paying
/// nothing, so that the event is not woken for it again. Idempotent.
pub async fn settle_gone(db: &Db, event_id: &str, character: Uuid) -> Result<(), DbError> {
    let client = db.client().await?;
    client
        .execute(
            "INSERT INTO world_event_reward (event_id, character_id, gold, item) VALUES ($1, $2, 0, NULL) \
             ON CONFLICT (event_id, character_id) DO NOTHING",
            &[&event_id, &character],
        )
        .await?;
    Ok(())
}
