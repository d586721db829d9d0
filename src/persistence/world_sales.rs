//! Limited-time sales: their rows, stock and per-character purchases.
