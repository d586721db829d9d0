//! `/admin/world/events`: schedule, list and cancel world events (docs/world.md).

use actix_web::web;

pub fn mount(_cfg: &mut web::ServiceConfig) {}
