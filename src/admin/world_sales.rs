//! `/admin/world/sales`: schedule and list limited-time sales (docs/world.md).

use actix_web::web;

pub fn mount(_cfg: &mut web::ServiceConfig) {}
