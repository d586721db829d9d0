//! Password hashes (argon2id, PHC strings) computed off the async executor threads.
//!
//! A hash costs tens of milliseconds of CPU and ~19 MiB of memory by design, so each runs on
//! tokio's blocking pool, and at most [`Passwords::new`]'s `concurrency` at once: a burst of
//! sign-ups queues here (for at most `wait`, then is answered "unavailable, try again")
//! instead of taking every core and the memory with it.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

/// Why no answer about a password could be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Too many hashes were waiting: try again.
    #[error("too many password checks at once, try again")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The node's bounded password hasher. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Passwords {
    /// At most `concurrency` hashes at once; a caller waits at most `wait` for its turn.
    pub fn new(concurrency: usize, wait: Duration) -> Passwords {
        Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            wait,
        }
    }

    /// Sized for the machine: one hash per core.
    pub fn for_machine() -> Passwords {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords::new(cores, Duration::from_secs(5))
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        let out = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| PasswordError::Failed(e.to_string()))?;
        Ok(out)
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_string();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Failed(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `phc`. A stored value that is not a PHC string matches
    /// nothing.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, PasswordError> {
        let (password, phc) = (password.to_string(), phc.to_string());
        self.run(move || match PasswordHash::new(&phc) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let p = Passwords::new(1, Duration::from_secs(5));
        let a = p.hash("correct horse").await.unwrap();
        let b = p.hash("correct horse").await.unwrap();
        assert_ne!(a, b, "fresh salt per hash");
        assert!(a.starts_with("$argon2id$"));
        assert!(p.verify("correct horse", &a).await.unwrap());
        assert!(!p.verify("wrong horse", &a).await.unwrap());
        assert!(!p.verify("correct horse", "not a hash").await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy() {
        let p = Passwords::new(1, Duration::from_millis(10));
        let _held = p.permits.clone().acquire_owned().await.unwrap();
        assert_eq!(p.hash("whatever1").await, Err(PasswordError::Busy));
    }
}
