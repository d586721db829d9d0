//! The session's [`Whereabouts`] published for readers on other threads: while ready, after
//! every change of the state; withdrawn as soon as the session stops serving from memory
//! (reloading, passivating, fenced, deleted, stopped).

use super::*;
use crate::character::messages::Whereabouts;

impl CharacterSession {
    /// Publishes whose the character is and where, while ready; otherwise withdraws.
    pub(crate) fn publish(&mut self) {
        let Phase::Ready { state, epoch } = &self.phase else {
            return self.withdraw();
        };
        let whereabouts = Whereabouts {
            user_id: state.user_id,
            location: state.location.clone(),
        };
        let epoch = *epoch;
        self.deps.whereabouts.publish(&self.id, epoch, whereabouts);
        self.published = Some(epoch);
    }

    pub(crate) fn withdraw(&mut self) {
        if let Some(epoch) = self.published.take() {
            self.deps.whereabouts.withdraw(&self.id, epoch);
        }
    }
}
