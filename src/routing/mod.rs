//! Where a message for an entity goes: key → owner node → the local registry, which activates
//! the entity's actor on demand.
//!
//! Today every owner is this node ([`placement::Placement::single`]); the cluster work swaps in
//! the consistent-hash ring without touching callers of [`Router::send`].

pub mod channel;
mod entity;
pub mod forward;
pub mod handover;
pub mod membership;
pub mod peer;
pub mod placement;
pub mod published;
mod registry;
pub mod ring;
mod router;

pub use entity::{Entity, Passivate, Remote, RouteKey};
pub use registry::Registry;
pub use router::{NotRun, Router, DEFAULT_REQUEST_BUDGET, VERDICT_GRACE};
