//! `/admin/world/sales`: schedule and list limited-time sales (docs/world.md).
//!
//! - `POST /admin/world/sales` `{id, node, good, stock, price, per_character_limit, starts_at,
//!   ends_at}` (RFC 3339 times): 201 with the sale; the same id with the same body again is
//!   200 (idempotent), with another body 409 (code 6). Bad input is 400 (code 3) naming the
//!   field, and changes nothing: node and good must exist in the catalog this node serves.
//! - `GET /admin/world/sales`: every sale with `sold`, `stock_left` and its `state`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use super::http::AdminState;
use crate::domain::world::sale::validate;
use crate::persistence::world_sales::{self, Created};
use crate::protocol::world::sale::{decode_sale, SaleView};

pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/world/sales")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    );
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn error(status: StatusCode, code: i32, field: Option<&str>, message: String) -> HttpResponse {
    HttpResponse::build(status).json(json!({"code": code, "field": field, "message": message}))
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    tracing::warn!(error = %e, "admin sale request failed");
    let message = format!("database unavailable: {e}");
    error(StatusCode::SERVICE_UNAVAILABLE, 14, None, message)
}

async fn create(state: web::Data<AdminState>, body: web::Bytes) -> HttpResponse {
    let bad = |(field, m): (&str, String)| error(StatusCode::BAD_REQUEST, 3, Some(field), m);
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(("body", format!("invalid JSON: {e}"))),
    };
    let spec = match decode_sale(&value) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    if let Err(e) = validate(&spec, &state.catalog.current().get()) {
        return bad(e);
    }
    match world_sales::create(&state.db, &spec).await {
        Ok(Created::Inserted(row)) => {
            HttpResponse::Created().json(SaleView::new(&row.spec, row.sold, now_ms()))
        }
        Ok(Created::Same(row)) => {
            HttpResponse::Ok().json(SaleView::new(&row.spec, row.sold, now_ms()))
        }
        Ok(Created::Different(_)) => error(
            StatusCode::CONFLICT,
            6,
            Some("id"),
            format!("a different sale `{}` exists", spec.id),
        ),
        Err(e) => unavailable(e),
    }
}

async fn list(state: web::Data<AdminState>) -> HttpResponse {
    match world_sales::list(&state.db).await {
        Ok(rows) => {
            let now = now_ms();
            let sales: Vec<SaleView> = rows
                .iter()
                .map(|r| SaleView::new(&r.spec, r.sold, now))
                .collect();
            HttpResponse::Ok().json(json!({ "sales": sales }))
        }
        Err(e) => unavailable(e),
    }
}
