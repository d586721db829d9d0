//! Battles in the database: the encounter row written when a battle starts (together with the
//! character's `battle_id`), loading a battle and its action log for a replay, and the one
//! settlement transaction at the end. The action log itself is written in batches by the
//! persistence actor (`DirtyRow::ActionLog`, fenced by `battle_encounter.owner_epoch`).

use uuid::Uuid;

use super::characters::{count_fenced, write_crew};
use super::notifications::{self, StoredNotification};
use super::receipts::{self, Receipt};
use super::{Db, DbError};
use crate::domain::character::state::CharacterState;

/// A battle to start: the encounter row, and the character's trip as the battle holds it.
#[derive(Debug, Clone)]
pub struct NewEncounter {
    pub id: Uuid,
    pub character_id: Uuid,
    /// The CharacterSession's claim epoch: the character's row is written only if it holds.
    pub session_epoch: i64,
    /// This node: the encounter is claimed by it from the start (epoch 1).
    pub node_id: String,
    pub from: String,
    pub to: String,
    pub seed: i64,
    /// The battle's setup (fighters, loot table …), kept in the `enemy` column.
    pub setup: serde_json::Value,
    /// The character's `travel` column while the battle lasts.
    pub travel: Option<serde_json::Value>,
}

/// The epoch a new encounter row is claimed with.
pub const FIRST_EPOCH: i64 = 1;

/// Inserts the encounter and sets the character's `battle_id` in one transaction. Refused
/// ([`DbError::Rejected`]) when the character is already in a battle; [`DbError::Fenced`] when
/// the session's claim is stale.
pub async fn create(db: &Db, e: &NewEncounter) -> Result<i64, DbError> {
    let e = e.clone();
    let result = db.transact("create_battle", move |tx| {
        let e = e.clone();
        Box::pin(async move {
            tx.execute(
                "INSERT INTO battle_encounter (id, character_id, from_node, to_node, seed, enemy, state, turn, \
                 owner_node, owner_epoch) VALUES ($1, $2, $3, $4, $5, $6, 'active', 0, $7, $8)",
                &[&e.id, &e.character_id, &e.from, &e.to, &e.seed, &e.setup, &e.node_id, &FIRST_EPOCH],
            )
            .await?;
            let n = tx
                .execute(
                    "UPDATE player_character SET battle_id = $3, travel = $4, update_time = now() \
                     WHERE id = $1 AND owner_epoch = $2 AND battle_id IS NULL",
                    &[&e.character_id, &e.session_epoch, &e.id, &e.travel],
                )
                .await?;
            if n == 0 {
                let row = tx
                    .query_opt(
                        "SELECT battle_id FROM player_character WHERE id = $1 AND owner_epoch = $2",
                        &[&e.character_id, &e.session_epoch],
                    )
                    .await?;
                return Err(match row {
                    Some(_) => DbError::Rejected("the character is already in a battle".into()),
                    None => DbError::Fenced(format!("character {}", e.character_id)),
                });
            }
            Ok(FIRST_EPOCH)
        })
    })
    .await;
    count_fenced(db, result)
}

/// An encounter row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EncounterRow {
    pub id: Uuid,
    pub character_id: Uuid,
    pub seed: i64,
    pub setup: serde_json::Value,
    pub state: String,
    pub turn: i32,
    pub result: Option<serde_json::Value>,
}

/// The encounter row of battle `id`.
pub async fn load(db: &Db, id: Uuid) -> Result<Option<EncounterRow>, DbError> {
    let client = db.client().await?;
    let row = client
        .query_opt(
            "SELECT character_id, seed, enemy, state, turn, result_payload FROM battle_encounter WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(row.map(|r| EncounterRow {
        id,
        character_id: r.get(0),
        seed: r.get(1),
        setup: r.get(2),
        state: r.get(3),
        turn: r.get(4),
        result: r.get(5),
    }))
}

/// The logged turns of battle `id`, in turn order.
pub async fn load_log(db: &Db, id: Uuid) -> Result<Vec<(u32, Vec<u8>)>, DbError> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT turn, payload FROM battle_action_log WHERE battle_id = $1 ORDER BY turn",
            &[&id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i32>(0).max(0) as u32, r.get(1)))
        .collect())
}

/// The end of a battle: the encounter's result and the character as the settlement leaves it.
#[derive(Debug, Clone)]
pub struct BattleSettlement {
    pub battle_id: Uuid,
    /// The Battle actor's claim epoch.
    pub battle_epoch: i64,
    pub outcome: String,
    pub turns: i32,
    pub result: serde_json::Value,
    /// The character after the battle (from `character::rules::apply_battle`): its gold and
    /// cargo are not written from here (see the deltas), the columns only battles change are.
    pub character: CharacterState,
    /// The CharacterSession's claim epoch.
    pub session_epoch: i64,
    /// Gold won or lost, applied as a change: never an absolute value from memory, so a
    /// write memory did not see (an unknown commit) is never undone.
    pub gold_delta: i64,
    /// Goods whose quantity changed, with the change (negative: taken by bandits).
    pub cargo: Vec<(String, i64)>,
    /// Items to add.
    pub items: Vec<(Uuid, String)>,
    /// The `battle_ended` notification, stored with the settlement (persistent).
    pub notification: Option<StoredNotification>,
}

/// How a settlement went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleOutcome {
    Committed,
    /// The encounter was settled before: nothing was written.
    AlreadySettled,
    /// The battle's claim is stale (another node took it): nothing was written.
    BattleFenced,
}

/// Settles a battle in ONE transaction: the encounter's state, turn and result; the
/// character's experience, level, gold, hit points, location, trip and `battle_id = NULL`;
/// crew hit points, deaths and injuries; cargo lost; items won. Fenced twice: by the battle's
/// epoch on the encounter and by the session's epoch on the character (that one fails as
/// [`DbError::Fenced`]).
pub async fn settle(db: &Db, s: &BattleSettlement) -> Result<SettleOutcome, DbError> {
    let s = s.clone();
    let result = db.transact("settle_battle", move |tx| {
        let s = s.clone();
        Box::pin(async move {
            let c = &s.character;
            let n = tx
                .execute(
                    "UPDATE battle_encounter SET state = $3, turn = $4, result_payload = $5, ended_at = now() \
                     WHERE id = $1 AND owner_epoch = $2 AND state = 'active'",
                    &[&s.battle_id, &s.battle_epoch, &s.outcome, &s.turns, &s.result],
                )
                .await?;
            if n == 0 {
                let state: Option<String> = tx
                    .query_opt("SELECT state FROM battle_encounter WHERE id = $1", &[&s.battle_id])
                    .await?
                    .map(|r| r.get(0));
                return match state.as_deref() {
                    Some("active") => Ok(SettleOutcome::BattleFenced),
                    Some(_) => Ok(SettleOutcome::AlreadySettled),
                    None => Err(DbError::NotFound(format!("battle {}", s.battle_id))),
                };
            }
            let travel = c
                .travel
                .as_ref()
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| DbError::Rejected(format!("trip does not encode: {e}")))?;
            let n = tx
                .execute(
                    "UPDATE player_character SET xp = $4, level = $5, gold = GREATEST(gold + $6, 0), hp = $7, \
                     max_hp = $8, skill_points = $9, location = $10, travel = $11, battle_id = NULL, \
                     update_time = now() WHERE id = $1 AND owner_epoch = $2 AND battle_id = $3",
                    &[
                        &c.id, &s.session_epoch, &s.battle_id, &c.xp, &c.level, &s.gold_delta, &c.hp, &c.max_hp,
                        &c.skill_points, &c.location, &travel,
                    ],
                )
                .await?;
            if n == 0 {
                return Err(DbError::Fenced(format!("character {}", c.id)));
            }
            write_crew(tx, c.id, &c.crew).await?;
            if let Some(n) = &s.notification {
                notifications::insert_in(tx, std::slice::from_ref(n)).await?;
            }
            if !s.cargo.is_empty() {
                let goods: Vec<&str> = s.cargo.iter().map(|(g, _)| g.as_str()).collect();
                let qty: Vec<i64> = s.cargo.iter().map(|(_, q)| *q).collect();
                tx.execute(
                    "UPDATE caravan_cargo AS k SET quantity = GREATEST(k.quantity + u.delta, 0) \
                     FROM unnest($2::text[], $3::int8[]) AS u(good, delta) \
                     WHERE k.character_id = $1 AND k.good = u.good",
                    &[&c.id, &goods, &qty],
                )
                .await?;
                tx.execute(
                    "DELETE FROM caravan_cargo WHERE character_id = $1 AND quantity <= 0",
                    &[&c.id],
                )
                .await?;
            }
            if !s.items.is_empty() {
                let ids: Vec<Uuid> = s.items.iter().map(|(id, _)| *id).collect();
                let templates: Vec<&str> = s.items.iter().map(|(_, t)| t.as_str()).collect();
                tx.execute(
                    "INSERT INTO character_item (id, character_id, template, quantity, equipped) \
                     SELECT u.id, $1, u.template, 1, false FROM unnest($2::uuid[], $3::text[]) AS u(id, template) \
                     ON CONFLICT (id) DO NOTHING",
                    &[&c.id, &ids, &templates],
                )
                .await?;
            }
            Ok(SettleOutcome::Committed)
        })
    })
    .await;
    if let Ok(SettleOutcome::BattleFenced) = &result {
        db.metrics().fenced_writes.increment(1);
    }
    count_fenced(db, result)
}

/// Closes an encounter whose character no longer exists (nothing left to settle), if the
/// battle's claim holds.
pub async fn close_orphan(
    db: &Db,
    id: Uuid,
    epoch: i64,
    outcome: &str,
    turns: i32,
) -> Result<bool, DbError> {
    let client = db.client().await?;
    let result = serde_json::json!({"outcome": outcome, "turns": turns, "abandoned": true});
    let n = client
        .execute(
            "UPDATE battle_encounter SET state = $3, turn = $4, result_payload = $5, ended_at = now() \
             WHERE id = $1 AND owner_epoch = $2 AND state = 'active'",
            &[&id, &epoch, &outcome, &turns, &result],
        )
        .await?;
    Ok(n == 1)
}

/// Writes one resolved turn and the answer to its keyed request in one transaction, fenced by
/// the battle's epoch: the turn's repeat (same `request_id`) then finds its answer on any node.
/// The turn's row is also queued as a dirty row; both writes are the same upsert.
pub async fn log_turn(
    db: &Db,
    (battle_id, epoch, turn): (Uuid, i64, i32),
    payload: &[u8],
    receipt: &Receipt,
) -> Result<(), DbError> {
    let (payload, receipt) = (payload.to_vec(), receipt.clone());
    let result = db
        .transact_guarded("log_battle_turn", move |tx| {
            let (payload, receipt) = (payload.clone(), receipt.clone());
            Box::pin(async move {
                let n = tx
                    .execute(
                        "INSERT INTO battle_action_log (battle_id, turn, payload, created_at) \
                         SELECT $1, $3, $4, now() WHERE EXISTS (SELECT 1 FROM battle_encounter b \
                           WHERE b.id = $1 AND b.owner_epoch = $2) \
                         ON CONFLICT (battle_id, turn) DO UPDATE SET payload = excluded.payload",
                        &[&battle_id, &epoch, &turn, &payload],
                    )
                    .await?;
                if n == 0 {
                    return Err(DbError::Fenced(format!("battle {battle_id}")));
                }
                receipts::store(tx, Some(&receipt)).await
            })
        })
        .await;
    count_fenced(db, result)
}
