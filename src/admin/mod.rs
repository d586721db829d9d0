//! The admin side of a node: its own HTTP listener (health, readiness, metrics, operator
//! endpoints behind the admin token) and the node's Prometheus metrics.

pub mod catalog;
pub mod compensation;
pub mod http;
pub mod leaderboards;
pub mod world_events;
pub mod world_sales;
