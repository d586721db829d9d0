//! `buy_sale` and `/admin/world/sales`.
