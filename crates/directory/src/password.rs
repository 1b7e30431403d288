//! Password hashing: argon2id with the `argon2` crate's defaults (RFC 9106's
//! second recommended option: 19 MiB, 2 passes), on a blocking thread so the
//! async runtime is not stalled, at most one hash per core at a time so that
//! a burst of password changes costs CPU time, not the machine's memory.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;
use scim::ScimError;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Hashes running at once: one per core.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// How long a request waits for a turn before it is answered 503.
const WAIT: Duration = Duration::from_secs(30);

/// Hashes a cleartext password into a PHC string.
pub async fn hash(password: String) -> Result<String, ScimError> {
    let _turn = tokio::time::timeout(WAIT, HASHING.acquire())
        .await
        .map_err(|_| ScimError::status(503, "too many password changes at once; try again"))?
        .map_err(|_| ScimError::status(500, "password hashing failed"))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ScimError::invalid_value(format!("password cannot be hashed: {e}")))
    })
    .await
    .map_err(|_| ScimError::status(500, "password hashing failed"))?
}

/// Hashes running now.
#[cfg(test)]
fn running() -> usize {
    let total = std::thread::available_parallelism().map_or(2, |n| n.get());
    total - HASHING.available_permits()
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHash, PasswordVerifier};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_one_hash_per_core_runs_at_once() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let watcher = tokio::spawn(async {
            let mut most = 0;
            for _ in 0..400 {
                most = most.max(super::running());
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            most
        });
        let hashes: Vec<_> = (0..4 * cores)
            .map(|i| tokio::spawn(super::hash(format!("password {i}"))))
            .collect();
        for h in hashes {
            assert!(h.await.unwrap().unwrap().starts_with("$argon2id$"));
        }
        let most = watcher.await.unwrap();
        assert!(most <= cores, "{most} hashes ran at once on {cores} cores");
        assert!(most >= 1);
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let h = super::hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(argon2::Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(argon2::Argon2::default()
            .verify_password(b"wrong", &parsed)
            .is_err());
    }
}
