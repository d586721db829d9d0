//! A battle's pure parts: deterministic turn resolution and rewards ([`rules`]) over the seeded
//! PRNG they draw from ([`rng`]).

pub mod rng;
pub mod rules;
pub mod snapshot;
