//! The rules of a limited-time sale: stock, per-character limits, its window.
//!
//! A [`SaleBook`] is what the sale's owner holds in memory: the sale, the units sold (a lower
//! bound of the database's `sold`, raised by every row a purchase or a read brings back), the
//! units each character bought, and the open reservations. A reservation counts against the
//! stock and the buyer's limit until it is settled or expires, so concurrent buyers can never
//! be promised more than is left. The database guards both again in the purchase transaction
//! (`sold + q <= stock`, `quantity <= limit`): a stale book (a second owner during a failover)
//! can only make a purchase be refused there, never oversell.

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::catalog::Catalog;
use crate::domain::character::rules;
use crate::domain::character::state::CharacterState;

/// Largest quantity one purchase may ask for.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// A scheduled sale, as the operator wrote it. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleSpec {
    pub id: String,
    pub node: String,
    pub good: String,
    pub stock: i64,
    pub price: i64,
    pub per_character_limit: i64,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
}

/// Why a sale refused a reservation. Every one is an answer that changed nothing, except
/// `Unavailable` (the sale could not be reached or loaded: not run, retry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum SaleError {
    #[error("no such sale")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("the sale has not started yet")]
    NotStarted,
    #[error("the sale has ended")]
    Ended,
    #[error("the sale is at {0}; the caravan must be there to buy")]
    WrongNode(String),
    #[error("only {0} left")]
    SoldOut(i64),
    #[error("over the limit of {limit} per character: {left} more allowed")]
    OverLimit { limit: i64, left: i64 },
    #[error("the sale is unavailable, try again")]
    Unavailable,
}

/// Checks a sale an operator schedules; the error names the field.
pub fn validate(spec: &SaleSpec, catalog: &Catalog) -> Result<(), (&'static str, String)> {
    let id_ok =
        !spec.id.is_empty() && spec.id.len() <= 128 && !spec.id.chars().any(char::is_control);
    if !id_ok {
        return Err((
            "id",
            "id must be 1-128 bytes without control characters".into(),
        ));
    }
    if catalog.node(&spec.node).is_none() {
        return Err(("node", format!("unknown trade node `{}`", spec.node)));
    }
    if catalog.good(&spec.good).is_none() {
        return Err(("good", format!("unknown good `{}`", spec.good)));
    }
    if spec.stock < 1 {
        return Err(("stock", "stock must be at least 1".into()));
    }
    if spec.price < 0 {
        return Err(("price", "price must not be negative".into()));
    }
    if spec.per_character_limit < 1 {
        return Err((
            "per_character_limit",
            "per_character_limit must be at least 1".into(),
        ));
    }
    if spec.starts_at_ms >= spec.ends_at_ms {
        return Err(("ends_at", "ends_at must be after starts_at".into()));
    }
    Ok(())
}

/// What a character must have to buy: free (not travelling, not fighting), gold for the
/// total and room in the caravan for the goods. Checked by the session before it reserves and
/// again by the database (gold); the caravan is the session's alone.
pub fn precheck_purchase(
    state: &CharacterState,
    catalog: &Catalog,
    good: &str,
    quantity: i64,
    total: i64,
) -> Result<(), rules::RuleError> {
    let refuse = |m: String| Err(rules::RuleError::NotAllowed(m));
    if state.travel.is_some() {
        return refuse("the caravan is travelling; buy when it arrives".into());
    }
    if state.battle_id.is_some() {
        return refuse("the character is in a battle".into());
    }
    if total > state.gold {
        return refuse(format!(
            "not enough gold: {total} needed, you have {}",
            state.gold
        ));
    }
    let weight = catalog.good(good).map_or(0, |g| g.weight.max(0) as i64);
    let extra = weight.saturating_mul(quantity);
    let room = rules::capacity(state, catalog).saturating_sub(rules::cargo_weight(state, catalog));
    if extra > room {
        return refuse(format!(
            "not enough cargo space: needs {extra}, {room} free"
        ));
    }
    Ok(())
}

/// A granted reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub character: Uuid,
    pub quantity: i64,
}

/// What became of a reserved purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Committed; with the sale's `sold` and the buyer's bought units it left, when known.
    Committed(Option<Committed>),
    /// The database refused it (the book was stale): the units are free, the book reads again.
    Refused,
    /// It never reached the database: the units are free.
    NotRun,
}

/// The rows a committed purchase left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Committed {
    pub sold: i64,
    pub bought: i64,
}

/// The owner's view of one sale.
#[derive(Debug, Clone)]
pub struct SaleBook {
    pub spec: SaleSpec,
    /// Units sold as far as the book knows (never above the database's).
    pub sold: i64,
    bought: HashMap<Uuid, i64>,
    open: HashMap<u64, Hold>,
    reserved: i64,
}

impl SaleBook {
    /// The book of a sale loaded with its `sold` and every character's bought units.
    pub fn new(spec: SaleSpec, sold: i64, bought: HashMap<Uuid, i64>) -> SaleBook {
        SaleBook {
            spec,
            sold,
            bought,
            open: HashMap::new(),
            reserved: 0,
        }
    }

    /// Units neither sold nor reserved.
    pub fn available(&self) -> i64 {
        (self.spec.stock - self.sold - self.reserved).max(0)
    }

    /// Units not sold (what a buyer is told is left).
    pub fn stock_left(&self) -> i64 {
        (self.spec.stock - self.sold).max(0)
    }

    pub fn reserved(&self) -> i64 {
        self.reserved
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Units `character` bought (as far as the book knows) and holds reserved.
    pub fn taken_by(&self, character: Uuid) -> i64 {
        let held: i64 = self
            .open
            .values()
            .filter(|h| h.character == character)
            .map(|h| h.quantity)
            .sum();
        self.bought.get(&character).copied().unwrap_or(0) + held
    }

    /// Reserves `quantity` for `character`, standing at `at_node`, at `now_ms`, under `id`.
    pub fn reserve(
        &mut self,
        id: u64,
        character: Uuid,
        at_node: &str,
        quantity: i64,
        now_ms: i64,
    ) -> Result<Hold, SaleError> {
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(SaleError::Invalid(format!(
                "quantity must be 1 to {MAX_QUANTITY}"
            )));
        }
        if now_ms < self.spec.starts_at_ms {
            return Err(SaleError::NotStarted);
        }
        if now_ms >= self.spec.ends_at_ms {
            return Err(SaleError::Ended);
        }
        if at_node != self.spec.node {
            return Err(SaleError::WrongNode(self.spec.node.clone()));
        }
        let limit = self.spec.per_character_limit;
        let left = (limit - self.taken_by(character)).max(0);
        if quantity > left {
            return Err(SaleError::OverLimit { limit, left });
        }
        if quantity > self.available() {
            return Err(SaleError::SoldOut(self.available()));
        }
        let hold = Hold {
            character,
            quantity,
        };
        self.open.insert(id, hold);
        self.reserved += quantity;
        Ok(hold)
    }

    /// Ends reservation `id` (if still open) with `outcome`; a commit of a reservation the
    /// book no longer holds (expired, or an earlier owner's) still teaches it the rows.
    /// Returns whether the book should read the rows again.
    pub fn settle(&mut self, id: u64, character: Uuid, outcome: Outcome) -> bool {
        self.release(id);
        match outcome {
            Outcome::Committed(Some(c)) => {
                self.adopt(character, c);
                false
            }
            Outcome::Committed(None) | Outcome::Refused => true,
            Outcome::NotRun => false,
        }
    }

    /// Frees reservation `id` (its settle never came); returns it if it was open.
    pub fn release(&mut self, id: u64) -> Option<Hold> {
        let hold = self.open.remove(&id)?;
        self.reserved -= hold.quantity;
        Some(hold)
    }

    /// Takes rows read from (or returned by) the database. Both only grow there, so the
    /// larger value is the newer: a purchase committed but not yet settled is then counted
    /// twice (as sold and as reserved) until its settle, which errs on refusing.
    pub fn adopt(&mut self, character: Uuid, rows: Committed) {
        self.sold = self.sold.max(rows.sold.min(self.spec.stock));
        let bought = self.bought.entry(character).or_insert(0);
        *bought = (*bought).max(rows.bought);
    }
}

#[cfg(test)]
mod tests;
