//! Admin HTTP (to be filled in).
