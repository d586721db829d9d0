//! The pure rules of server-wide events: bosses ([`boss`]) and limited-time sales ([`sale`]).

pub mod boss;
pub mod sale;
