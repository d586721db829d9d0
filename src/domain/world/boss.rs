//! The rules of a world boss: damage, HP, state over time, rewards.
