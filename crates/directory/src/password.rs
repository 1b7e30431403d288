//! Password hashing: argon2id with the `argon2` crate's defaults (RFC 9106's
//! second recommended option), on a blocking thread so the async runtime is not
//! stalled.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;
use scim::ScimError;

/// Hashes a cleartext password into a PHC string.
pub async fn hash(password: String) -> Result<String, ScimError> {
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

#[cfg(test)]
mod tests {
    use argon2::{PasswordHash, PasswordVerifier};

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
