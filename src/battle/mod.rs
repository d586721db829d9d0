//! Battles: one [`Battle`] actor per battle id fights a caravan's encounter turn by turn.
//!
//! - [`rules`]: pure, deterministic turn resolution (seeded RNG), validation, the compact turn
//!   log and its replay, and what an ended battle is worth ([`rules::rewards`]).
//! - [`rng`]: the seeded PRNG (SplitMix64) the rules draw from.
//! - [`messages`]: what callers send: [`StartBattle`] (the character's session on an
//!   encounter), [`GetBattle`], [`SubmitTurn`], [`Resume`], [`Passivate`].
//! - [`actor`]: the [`Battle`] actor: encounter row at the start, log rows in batches through
//!   the persistence actor, turn timeouts, settlement through the character's session.
//!
//! Player-facing behaviour (RPCs, notifications, recovery rule) is in docs/battle.md.

pub mod actor;
pub mod messages;

pub use actor::{Battle, BattleDeps};
pub use messages::{
    BattleError, BattleResult, BattleSnapshot, GetBattle, Resume, StartBattle, SubmitTurn,
};
