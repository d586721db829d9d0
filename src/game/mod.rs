//! Wires the game into a node: which entity kinds the router activates, which RPCs the
//! gateway serves, the client routes, and how entity actors are stopped at shutdown.

mod rpcs;
mod snapshots;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use uuid::Uuid;

use crate::battle::{Battle, BattleDeps};
use crate::character::messages::Handover;
use crate::character::{BattleSettler, CharacterDeps, CharacterSession};
use crate::domain::character::travel::TravelSettings;
use crate::gateway::{self, GatewayState};
use crate::market::actor::{Market, MarketDeps};
use crate::market::messages as market_msg;
use crate::routing::handover::Handovers;
use crate::routing::Entity;
use crate::services::Services;

/// How many handed-over character states a node keeps for their activation, and how long.
const HANDOVER_CAPACITY: usize = 100_000;
const HANDOVER_TTL: Duration = Duration::from_secs(30);

/// Registers every entity kind with the router and every game RPC with the gateway.
pub fn register(services: &Services) {
    // What sessions and markets publish for the read-only RPCs (`rpcs::snapshots`).
    let snapshots = snapshots::Snapshots::new(&services.metrics);
    let character = CharacterDeps {
        db: services.db.clone(),
        catalog: services.catalog.clone(),
        persistence: services.persistence.clone(),
        router: Arc::downgrade(&services.router),
        node_id: services.config.node_id.clone(),
        idle: services.config.idle_timeout,
        notifier: services.notifier.clone(),
        travel: TravelSettings {
            encounter_rate: services.config.encounter_rate,
            time_scale: services.config.travel_time_scale,
        },
        handovers: Arc::new(Handovers::new(HANDOVER_CAPACITY, HANDOVER_TTL)),
        whereabouts: snapshots.whereabouts.clone(),
    };
    let handovers = character.handovers.clone();
    services
        .router
        .register_node_message::<Handover, _>(CharacterSession::KIND, move |key, h| {
            match Uuid::from_slice(key) {
                Ok(id) if id == h.state.id => handovers.put(id, h.state, h.released_epoch),
                _ => false,
            }
        });
    services
        .router
        .register::<CharacterSession>(move |id| CharacterSession::new(id, character.clone()));
    let battle = BattleDeps {
        db: services.db.clone(),
        persistence: services.persistence.clone(),
        notifier: services.notifier.clone(),
        settler: Arc::new(BattleSettler {
            router: Arc::downgrade(&services.router),
        }),
        node_id: services.config.node_id.clone(),
        idle: services.config.idle_timeout,
        turn_timeout: services.config.battle_turn_timeout,
    };
    services
        .router
        .register::<Battle>(move |id| Battle::new(id, battle.clone()));
    register_remote_game(services);
    let mut market = MarketDeps::new(
        services.db.clone(),
        services.catalog.clone(),
        services.config.node_id.clone(),
        services.config.idle_timeout,
    );
    market.reservation_ttl = crate::market::actor::reservation_ttl(services.config.request_timeout);
    market.quotes = snapshots.quotes.clone();
    services
        .router
        .register::<Market>(move |node| Market::new(node, market.clone()));
    // A market may be owned by another node than the session trading there.
    services
        .router
        .register_remote::<Market, market_msg::GetQuotes>();
    services
        .router
        .register_remote::<Market, market_msg::Reserve>();
    services
        .router
        .register_remote::<Market, market_msg::Settle>();
    crate::leaderboard::service::register(services);
    crate::world::register(services);
    rpcs::register(services, snapshots);
}

/// Lets other nodes reach the characters and battles owned here.
fn register_remote_game(services: &Services) {
    use crate::battle::messages as b;
    use crate::character::messages as c;
    let r = &services.router;
    r.register_remote::<CharacterSession, c::GetCharacter>();
    r.register_remote::<CharacterSession, c::GetQuotes>();
    r.register_remote::<CharacterSession, c::ExecuteTrade>();
    r.register_remote::<CharacterSession, c::HireCrew>();
    r.register_remote::<CharacterSession, c::DismissCrew>();
    r.register_remote::<CharacterSession, c::LearnSkill>();
    r.register_remote::<CharacterSession, c::DeleteCharacter>();
    r.register_remote::<CharacterSession, c::Travel>();
    r.register_remote::<CharacterSession, c::ForceEncounter>();
    r.register_remote::<CharacterSession, c::SettleBattle>();
    r.register_remote::<Battle, b::StartBattle>();
    r.register_remote::<Battle, b::GetBattle>();
    r.register_remote::<Battle, b::SubmitTurn>();
    r.register_remote::<Battle, b::Resume>();
}

/// The client listener's routes (the Nakama-compatible gateway) and the gateway's state, which
/// the listener's WebSocket upgrades ([`crate::gateway::upgrade`]) share.
pub fn client_routes(
    services: &Services,
) -> (
    impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    GatewayState,
) {
    let state = GatewayState::new(
        services.config.clone(),
        services.db.clone(),
        services.rpc.clone(),
        services.presence.clone(),
    )
    .with_revocations(services.revocations.clone());
    let leaderboards = crate::leaderboard::http::configure(services);
    let gateway = gateway::configure(state.clone());
    let routes = move |cfg: &mut web::ServiceConfig| {
        leaderboards(cfg);
        gateway(cfg);
    };
    (routes, state)
}

/// Asks every local entity actor to flush and stop; returns once they have (or after 20 s).
pub async fn stop_all(services: &Services) {
    let within = Duration::from_secs(20);
    let router = &services.router;
    tokio::join!(
        router.stop_local::<CharacterSession>(within),
        router.stop_local::<Market>(within),
        router.stop_local::<Battle>(within),
    );
    crate::world::stop_all(services).await;
    crate::leaderboard::service::stop_all(services).await;
}
