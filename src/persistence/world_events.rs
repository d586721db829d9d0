//! World events (bosses): their rows, progress, participants and rewards.
