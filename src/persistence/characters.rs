//! Characters in the database: create, load, list, delete, and the critical changes a
//! CharacterSession makes (trade settlement, crew hire and dismissal, arrival), each one
//! transaction fenced by the session's owner epoch. Battle settlement is in `battles`.

use std::collections::BTreeMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::markets;
use super::notifications::{self, StoredNotification};
use super::receipts::{self, Receipt};
use super::{Db, DbError};
use crate::domain::character::state::{
    Caravan, CharacterState, CharacterSummary, CrewMember, Item, SKILL_PREFIX,
};
use crate::domain::market::rules::Side;

/// One trade to settle: the character's gold and cargo and the market's quota, together.
#[derive(Debug, Clone)]
pub struct TradeSettlement {
    pub character_id: Uuid,
    pub epoch: i64,
    pub node: String,
    pub good: String,
    pub side: Side,
    pub quantity: i64,
    pub total: i64,
    /// The market's reference price after the trade, kept in the snapshot row.
    pub price_after: i64,
    /// The answer, stored with the trade when the client named a `request_id`.
    pub receipt: Option<Receipt>,
}

fn fenced(id: Uuid) -> DbError {
    DbError::Fenced(format!("character {id}"))
}

/// Counts a critical write refused because a newer claim owns the row
/// (`serai_fenced_writes_total`), and passes the result on.
pub(crate) fn count_fenced<T>(db: &Db, result: Result<T, DbError>) -> Result<T, DbError> {
    if let Err(DbError::Fenced(_)) = &result {
        db.metrics().fenced_writes.increment(1);
    }
    result
}

/// Inserts a new character with its attributes and caravan, refusing past `max_per_user`.
pub async fn create(
    db: &Db,
    c: &CharacterState,
    max_per_user: i64,
    receipt: Option<&Receipt>,
) -> Result<(), DbError> {
    let (c, receipt) = (c.clone(), receipt.cloned());
    db.transact("create_character", move |tx| {
        let (c, receipt) = (c.clone(), receipt.clone());
        Box::pin(async move {
            receipts::store(tx, receipt.as_ref()).await?;
            let n: i64 = tx
                .query_one("SELECT count(*) FROM player_character WHERE user_id = $1", &[&c.user_id])
                .await?
                .get(0);
            if n >= max_per_user {
                return Err(DbError::Rejected(format!("an account may have at most {max_per_user} characters")));
            }
            tx.execute(
                "INSERT INTO player_character (id, user_id, name, faction, background, gold, location, level, xp, \
                 hp, max_hp, skill_points) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    &c.id, &c.user_id, &c.name, &c.faction, &c.background, &c.gold, &c.location, &c.level, &c.xp,
                    &c.hp, &c.max_hp, &c.skill_points,
                ],
            )
            .await?;
            let codes: Vec<&str> = c.attributes.keys().map(String::as_str).collect();
            let values: Vec<i64> = c.attributes.values().copied().collect();
            tx.execute(
                "INSERT INTO character_attribute (character_id, code, value) \
                 SELECT $1, u.code, u.value FROM unnest($2::text[], $3::int8[]) AS u(code, value)",
                &[&c.id, &codes, &values],
            )
            .await?;
            tx.execute(
                "INSERT INTO caravan (character_id, capacity, speed) VALUES ($1, $2, $3)",
                &[&c.id, &c.caravan.capacity, &c.caravan.speed],
            )
            .await?;
            Ok(())
        })
    })
    .await
}

/// The characters of one account, oldest first.
pub async fn list(db: &Db, user_id: Uuid) -> Result<Vec<CharacterSummary>, DbError> {
    let client = db.client().await?;
    let rows = client
        .query(
            "SELECT id, name, faction, background, level, location FROM player_character \
             WHERE user_id = $1 ORDER BY create_time, id",
            &[&user_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| CharacterSummary {
            id: r.get(0),
            name: r.get(1),
            faction: r.get(2),
            background: r.get(3),
            level: r.get(4),
            location: r.get(5),
        })
        .collect())
}

/// Loads everything about a character, or `None` if there is no such character.
pub async fn load(db: &Db, id: Uuid) -> Result<Option<CharacterState>, DbError> {
    let client = db.client().await?;
    let Some(r) = client
        .query_opt(
            "SELECT p.user_id, p.name, p.faction, p.background, p.gold, p.location, p.level, p.xp, p.hp, \
             p.max_hp, p.skill_points, p.travel, p.battle_id, c.capacity, c.speed \
             FROM player_character p LEFT JOIN caravan c ON c.character_id = p.id WHERE p.id = $1",
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut state = CharacterState {
        id,
        user_id: r.get(0),
        name: r.get(1),
        faction: r.get(2),
        background: r.get(3),
        gold: r.get(4),
        location: r.get(5),
        level: r.get(6),
        xp: r.get(7),
        hp: r.get(8),
        max_hp: r.get(9),
        skill_points: r.get(10),
        travel: r.get::<_, Option<serde_json::Value>>(11).and_then(
            |v| match serde_json::from_value(v) {
                Ok(trip) => Some(trip),
                Err(e) => {
                    tracing::warn!(character = %id, error = %e, "unreadable trip dropped");
                    None
                }
            },
        ),
        battle_id: r.get(12),
        caravan: Caravan {
            capacity: r.get::<_, Option<i64>>(13).unwrap_or(0),
            speed: r.get::<_, Option<i32>>(14).unwrap_or(1),
        },
        attributes: BTreeMap::new(),
        skills: BTreeMap::new(),
        items: Vec::new(),
        crew: Vec::new(),
        cargo: BTreeMap::new(),
    };
    for r in client
        .query(
            "SELECT code, value FROM character_attribute WHERE character_id = $1",
            &[&id],
        )
        .await?
    {
        let code: String = r.get(0);
        match code.strip_prefix(SKILL_PREFIX) {
            Some(skill) => state.skills.insert(skill.to_string(), r.get(1)),
            None => state.attributes.insert(code, r.get(1)),
        };
    }
    for r in client
        .query(
            "SELECT good, quantity FROM caravan_cargo WHERE character_id = $1 AND quantity > 0",
            &[&id],
        )
        .await?
    {
        state.cargo.insert(r.get(0), r.get(1));
    }
    state.crew = client
        .query(
            "SELECT id, archetype, name, hp, max_hp, alive, injured FROM crew_member \
             WHERE character_id = $1 ORDER BY hired_at, id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| CrewMember {
            id: r.get(0),
            archetype: r.get(1),
            name: r.get(2),
            hp: r.get(3),
            max_hp: r.get(4),
            alive: r.get(5),
            injured: r.get(6),
        })
        .collect();
    state.items = client
        .query(
            "SELECT id, template, quantity, equipped FROM character_item WHERE character_id = $1 ORDER BY id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| Item { id: r.get(0), template: r.get(1), quantity: r.get(2), equipped: r.get(3) })
        .collect();
    Ok(Some(state))
}

/// Deletes a character (its child rows cascade), if this session still owns it.
pub async fn delete(
    db: &Db,
    id: Uuid,
    epoch: i64,
    receipt: Option<&Receipt>,
) -> Result<(), DbError> {
    let receipt = receipt.cloned();
    let result = db
        .transact("delete_character", move |tx| {
            let receipt = receipt.clone();
            Box::pin(async move {
                receipts::store(tx, receipt.as_ref()).await?;
                let n = tx
                    .execute(
                        "DELETE FROM player_character WHERE id = $1 AND owner_epoch = $2",
                        &[&id, &epoch],
                    )
                    .await?;
                if n == 0 {
                    return Err(fenced(id));
                }
                Ok(())
            })
        })
        .await;
    count_fenced(db, result)
}

/// Changes gold by `delta` if the session still owns the row and gold stays non-negative.
pub(crate) async fn change_gold(
    tx: &Transaction<'_>,
    id: Uuid,
    epoch: i64,
    delta: i64,
) -> Result<i64, DbError> {
    let row = tx
        .query_opt(
            "UPDATE player_character SET gold = gold + $3, update_time = now() \
             WHERE id = $1 AND owner_epoch = $2 AND gold + $3 >= 0 RETURNING gold",
            &[&id, &epoch, &delta],
        )
        .await?;
    match row {
        Some(r) => Ok(r.get(0)),
        None => Err(guard_or_fence(tx, id, epoch, "not enough gold").await),
    }
}

/// Why a guarded update of a character matched no row: its guard (`refusal`), or a newer
/// claim owns the row.
async fn guard_or_fence(tx: &Transaction<'_>, id: Uuid, epoch: i64, refusal: &str) -> DbError {
    let owned = tx
        .query_opt(
            "SELECT 1 FROM player_character WHERE id = $1 AND owner_epoch = $2",
            &[&id, &epoch],
        )
        .await;
    match owned {
        Ok(Some(_)) => DbError::Rejected(refusal.into()),
        Ok(None) => fenced(id),
        Err(e) => e.into(),
    }
}

/// A committed trade: what the character has afterwards and the market row it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeSettled {
    pub gold: i64,
    /// Units of the good held afterwards.
    pub held: i64,
    pub market: markets::Committed,
}

/// Settles a trade in one transaction: gold, cargo and the market's quota.
pub async fn settle_trade(db: &Db, t: &TradeSettlement) -> Result<TradeSettled, DbError> {
    let t = t.clone();
    let result = db.transact_guarded("settle_trade", move |tx| {
        let t = t.clone();
        Box::pin(async move {
            let (gold_delta, cargo_delta, quota_delta) = match t.side {
                Side::Buy => (-t.total, t.quantity, -t.quantity),
                Side::Sell => (t.total, -t.quantity, t.quantity),
            };
            let cargo_sql = if cargo_delta >= 0 {
                "INSERT INTO caravan_cargo (character_id, good, quantity) VALUES ($1, $2, $3) \
                 ON CONFLICT (character_id, good) DO UPDATE SET quantity = caravan_cargo.quantity + excluded.quantity \
                 RETURNING quantity"
            } else {
                "UPDATE caravan_cargo SET quantity = quantity + $3 \
                 WHERE character_id = $1 AND good = $2 AND quantity + $3 >= 0 RETURNING quantity"
            };
            // The four statements do not depend on each other's results: sent together
            // (tokio-postgres pipelines concurrent queries on one connection), they cost one
            // round trip, so the receipt adds none. Any error rolls the whole transaction back;
            // a duplicate receipt is read first (it aborts the transaction, so the others'
            // follow-up queries fail for that reason).
            let cargo_params: [&(dyn ToSql + Sync); 3] = [&t.character_id, &t.good, &cargo_delta];
            let market_params: [&(dyn ToSql + Sync); 4] = [&t.node, &t.good, &quota_delta, &t.price_after];
            // The market's row is hot (every trader of the node): it is locked last, so it is
            // held for as short a time as possible.
            let (stored, gold, held, market) = futures_util::join!(
                receipts::store(tx, t.receipt.as_ref()),
                change_gold(tx, t.character_id, t.epoch, gold_delta),
                tx.query_opt(cargo_sql, &cargo_params),
                tx.query_opt(markets::TRADE_SQL, &market_params),
            );
            stored?;
            let gold = gold?;
            let held: i64 = match held? {
                Some(r) => r.get(0),
                None => return Err(DbError::Rejected(format!("the caravan does not hold {} {}", t.quantity, t.good))),
            };
            let Some(market) = market? else {
                return Err(DbError::Rejected(format!("the market at {} has no {} left", t.node, t.good)));
            };
            if held == 0 {
                tx.execute("DELETE FROM caravan_cargo WHERE character_id = $1 AND good = $2", &[&t.character_id, &t.good])
                    .await?;
            }
            Ok(TradeSettled { gold, held, market: markets::committed(&market, 0) })
        })
    })
    .await;
    count_fenced(db, result)
}

/// Hires a crew member: pays `cost` and inserts the member. Returns the gold left.
pub async fn hire(
    db: &Db,
    character_id: Uuid,
    epoch: i64,
    member: &CrewMember,
    cost: i64,
    receipt: Option<&Receipt>,
) -> Result<i64, DbError> {
    let (m, receipt) = (member.clone(), receipt.cloned());
    let result = db.transact_guarded("hire_crew", move |tx| {
        let (m, receipt) = (m.clone(), receipt.clone());
        Box::pin(async move {
            receipts::store(tx, receipt.as_ref()).await?;
            let gold = change_gold(tx, character_id, epoch, -cost).await?;
            tx.execute(
                "INSERT INTO crew_member (id, character_id, archetype, name, hp, max_hp, alive, injured, hired_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())",
                &[&m.id, &character_id, &m.archetype, &m.name, &m.hp, &m.max_hp, &m.alive, &m.injured],
            )
            .await?;
            Ok(gold)
        })
    })
    .await;
    count_fenced(db, result)
}

/// Dismisses a crew member.
pub async fn dismiss(
    db: &Db,
    character_id: Uuid,
    epoch: i64,
    crew_id: Uuid,
    receipt: Option<&Receipt>,
) -> Result<(), DbError> {
    let receipt = receipt.cloned();
    let result = db
        .transact("dismiss_crew", move |tx| {
            let receipt = receipt.clone();
            Box::pin(async move {
                change_gold(tx, character_id, epoch, 0).await?; // the fence
                receipts::store(tx, receipt.as_ref()).await?;
                let n = tx
                    .execute(
                        "DELETE FROM crew_member WHERE id = $1 AND character_id = $2",
                        &[&crew_id, &character_id],
                    )
                    .await?;
                if n == 0 {
                    return Err(DbError::NotFound(format!("crew member {crew_id}")));
                }
                Ok(())
            })
        })
        .await;
    count_fenced(db, result)
}

/// Learns (or ranks up) a skill: spends its points and writes its rank, fenced, in one
/// transaction (acknowledged only once committed: points are paid for).
pub async fn learn_skill(
    db: &Db,
    character_id: Uuid,
    epoch: i64,
    (skill, rank, cost): (&str, i64, i32),
    receipt: Option<&Receipt>,
) -> Result<i32, DbError> {
    let (code, receipt) = (format!("{SKILL_PREFIX}{skill}"), receipt.cloned());
    let result = db
        .transact_guarded("learn_skill", move |tx| {
            let (code, receipt) = (code.clone(), receipt.clone());
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        "UPDATE player_character SET skill_points = skill_points - $3, update_time = now() \
                         WHERE id = $1 AND owner_epoch = $2 AND skill_points >= $3 RETURNING skill_points",
                        &[&character_id, &epoch, &cost],
                    )
                    .await?;
                let Some(points) = row.map(|r| r.get::<_, i32>(0)) else {
                    return Err(guard_or_fence(tx, character_id, epoch, "not enough skill points").await);
                };
                tx.execute(
                    "INSERT INTO character_attribute (character_id, code, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (character_id, code) DO UPDATE SET value = excluded.value",
                    &[&character_id, &code, &rank],
                )
                .await?;
                receipts::store(tx, receipt.as_ref()).await?;
                Ok(points)
            })
        })
        .await;
    count_fenced(db, result)
}

/// The caravan leaves: its trip is written, fenced, before the departure is acknowledged.
pub async fn depart(
    db: &Db,
    character_id: Uuid,
    epoch: i64,
    trip: &serde_json::Value,
    receipt: Option<&Receipt>,
) -> Result<(), DbError> {
    let (trip, receipt) = (trip.clone(), receipt.cloned());
    let result = db
        .transact_guarded("depart", move |tx| {
            let (trip, receipt) = (trip.clone(), receipt.clone());
            Box::pin(async move {
                let n = tx
                    .execute(
                        "UPDATE player_character SET travel = $3, update_time = now() \
                         WHERE id = $1 AND owner_epoch = $2 AND battle_id IS NULL",
                        &[&character_id, &epoch, &trip],
                    )
                    .await?;
                if n == 0 {
                    return Err(fenced(character_id));
                }
                receipts::store(tx, receipt.as_ref()).await?;
                Ok(())
            })
        })
        .await;
    count_fenced(db, result)
}

/// A caravan reaches the end of its trip: location, trip cleared, hit points and crew as
/// [`crate::domain::character::rules::arrive`] left them.
pub async fn arrive(
    db: &Db,
    c: &CharacterState,
    epoch: i64,
    notices: &[StoredNotification],
) -> Result<(), DbError> {
    let c = c.clone();
    let notices = notices.to_vec();
    let result = db.transact("arrive", move |tx| {
        let c = c.clone();
        let notices = notices.clone();
        Box::pin(async move {
            let n = tx
                .execute(
                    "UPDATE player_character SET location = $3, travel = NULL, hp = $4, update_time = now() \
                     WHERE id = $1 AND owner_epoch = $2",
                    &[&c.id, &epoch, &c.location, &c.hp],
                )
                .await?;
            if n == 0 {
                return Err(fenced(c.id));
            }
            // The arrival notice commits with the arrival, or neither does.
            notifications::insert_in(tx, &notices).await?;
            write_crew(tx, c.id, &c.crew).await
        })
    })
    .await;
    count_fenced(db, result)
}

/// Writes the hp, life and injury of every crew member listed.
pub(crate) async fn write_crew(
    tx: &Transaction<'_>,
    character_id: Uuid,
    crew: &[CrewMember],
) -> Result<(), DbError> {
    if crew.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = crew.iter().map(|m| m.id).collect();
    let hps: Vec<i32> = crew.iter().map(|m| m.hp).collect();
    let alive: Vec<bool> = crew.iter().map(|m| m.alive).collect();
    let injured: Vec<bool> = crew.iter().map(|m| m.injured).collect();
    tx.execute(
        "UPDATE crew_member AS c SET hp = u.hp, alive = u.alive, injured = u.injured \
         FROM unnest($2::uuid[], $3::int4[], $4::bool[], $5::bool[]) AS u(id, hp, alive, injured) \
         WHERE c.id = u.id AND c.character_id = $1",
        &[&character_id, &ids, &hps, &alive, &injured],
    )
    .await?;
    Ok(())
}
