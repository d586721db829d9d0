//! Asking an owner again while its answer says nothing ran.
//!
//! An entity that is moving between nodes, loading, or on a node that cannot be reached answers
//! *not run*; it is usually there again within a heartbeat or two. Every client RPC that asks an
//! entity wants the same short retry, so it lives here once: only a *not run* answer is asked
//! again, never one that may have run.

use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::Handler;

use super::Router;
use crate::request::{Deadline, Failure};
use crate::routing::{Entity, Remote};

/// An entity's answer that may itself say it ran nothing: the error of a message's result
/// carrying a [`Failure::NotRun`]. Implemented by each entity's error type where it is defined.
pub trait NotRun {
    fn not_run(&self) -> bool;
}

/// How many times an answer is asked for in all (20 ms doubling, capped at 500 ms: about 1.2 s).
const MAX_ASKS: u32 = 7;
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(500);

impl Router {
    /// [`Router::ask_until`], asked again with backoff while the answer is *not run* and another
    /// attempt can finish well before `deadline`, so an outage is answered as it is, promptly,
    /// before the deadline turns it into "unknown". Anything that may have run is answered as it
    /// is, never sent again.
    pub async fn ask_retrying<A, M>(
        &self,
        key: A::Key,
        msg: M,
        deadline: Deadline,
    ) -> Result<M::Result, Failure>
    where
        A: Entity + Handler<M>,
        A::Context: ToEnvelope<A, M>,
        M: Remote + Clone,
        M::Result: serde::Serialize + serde::de::DeserializeOwned + Send + NotRun,
    {
        let mut pause = FIRST_PAUSE;
        let mut asks = 0;
        loop {
            asks += 1;
            let started = Instant::now();
            let answer = self
                .ask_until::<A, M>(key.clone(), msg.clone(), deadline)
                .await;
            let again = match &answer {
                Ok(r) => r.not_run(),
                Err(f) => f.is_retryable(),
            };
            if !again || asks >= MAX_ASKS || !room(deadline, pause, started.elapsed()) {
                return answer;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}

/// Whether one more attempt (after `pause`, taking about as long as the last one, twice over
/// for safety) still ends before the deadline.
fn room(deadline: Deadline, pause: Duration, took: Duration) -> bool {
    deadline
        .remaining()
        .is_some_and(|left| left > pause + took * 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_room_once_the_deadline_is_near() {
        let far = Deadline::after(Duration::from_secs(5));
        assert!(room(far, FIRST_PAUSE, Duration::from_millis(10)));
        let near = Deadline::after(Duration::from_millis(30));
        assert!(!room(near, FIRST_PAUSE, Duration::from_millis(10)));
    }
}
