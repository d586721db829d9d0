//! The rules of a limited-time sale: stock, per-character limits, its window.
