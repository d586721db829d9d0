//! The character's side of a battle's end: a [`Settler`] that sends the battle's
//! [`Settlement`] to the character's session wherever it lives (this node or over the peer
//! link) and tells the battle what came of it.

use std::sync::Weak;

use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::messages::{SessionError, SettleBattle, SettleReply};
use super::CharacterSession;
use crate::battle::messages::{SettleAnswer, Settlement, Settler};
use crate::routing::Router;

/// Settles battles through the router.
pub struct BattleSettler {
    /// Weak, so that the router's registries (which hold the battles' deps) do not keep the
    /// router alive.
    pub router: Weak<Router>,
}

impl Settler for BattleSettler {
    fn settle(
        &self,
        character_id: Uuid,
        settlement: Settlement,
    ) -> BoxFuture<'static, SettleAnswer> {
        let router = self.router.clone();
        Box::pin(async move {
            let Some(router) = router.upgrade() else {
                return SettleAnswer::Failed("the node is stopping".into());
            };
            let reply = router
                .ask::<CharacterSession, _>(character_id, SettleBattle(settlement))
                .await;
            match reply {
                Ok(Ok(SettleReply::Settled(summary))) => SettleAnswer::Settled(summary),
                Ok(Ok(SettleReply::BattleFenced)) => SettleAnswer::Fenced,
                Ok(Ok(SettleReply::AlreadySettled | SettleReply::NotInBattle))
                | Ok(Err(SessionError::NotFound)) => SettleAnswer::NothingToSettle,
                Ok(Err(e)) => SettleAnswer::Failed(e.to_string()),
                Err(e) => SettleAnswer::Failed(e.to_string()),
            }
        })
    }
}
