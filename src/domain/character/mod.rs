//! A character: its plain state, the rules that decide every change to it, and travel.

pub mod rules;
pub mod state;
pub mod travel;
