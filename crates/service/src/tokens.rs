//! API tokens: `lsn_<id>_<secret>`, where `id` (64 bits, hex) names the stored
//! record and `secret` is 256 random bits (hex). Only SHA-256(secret) is stored;
//! a presented secret is compared to it in constant time. A fast hash is right
//! here: the secret is uniformly random, so there is nothing to brute-force.
//!
//! [`Authenticator`] checks a presented token for an organisation and keeps
//! what it verified for a few seconds, so that requests do not go to the
//! database for it; a revoked token or a deleted organisation stops working
//! on every instance once that time has passed.

use crate::ServiceError;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use store::{Org, Store, TokenRecord};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

const PREFIX: &str = "lsn_";

/// A freshly issued token: the record to store and the string to hand out once.
pub struct Issued {
    pub id: String,
    pub secret_hash: Vec<u8>,
    pub token: String,
}

pub fn issue() -> Issued {
    let mut rng = rand::rngs::OsRng;
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret = hex::encode(secret);
    Issued {
        secret_hash: hash(&secret),
        token: format!("{PREFIX}{id}_{secret}"),
        id,
    }
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Splits a presented token into (id, secret), or `None` when malformed.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
    let hex_of = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, 16) && hex_of(secret, 64)).then_some((id, secret))
}

/// Whether `secret` hashes to `stored`, in constant time.
pub fn verify(secret: &str, stored: &[u8]) -> bool {
    hash(secret).ct_eq(stored).into()
}

/// Issues a token for an organisation (`None`: an operator token, valid for
/// every organisation) and stores its hash. Returns the token, to be shown
/// once.
pub async fn issue_for(store: &Store, org: Option<&Org>) -> Result<Issued, ServiceError> {
    let issued = issue();
    let mut tx = store.begin().await?;
    tx.insert_token(&TokenRecord {
        id: issued.id.clone(),
        org_id: org.map(|o| o.id),
        secret_hash: issued.secret_hash.clone(),
        created: OffsetDateTime::now_utc(),
    })
    .await?;
    tx.commit().await?;
    tracing::info!(token_id = %issued.id, org_id = org.map(|o| o.id), "token issued");
    Ok(issued)
}

/// Revokes a token of the organisation (`None`: an operator token) by its id.
/// Instances that verified it recently accept it for at most their cache's
/// time to live ([`Authenticator::new`]).
pub async fn revoke(store: &Store, org: Option<&Org>, id: &str) -> Result<(), ServiceError> {
    let mut tx = store.begin().await?;
    if !tx.revoke_token(org.map(|o| o.id), id).await? {
        return Err(ServiceError::NotFound(format!("no token {id}")));
    }
    tx.commit().await?;
    tracing::info!(token_id = %id, "token revoked");
    Ok(())
}

/// Why a token was not accepted for an organisation.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, a malformed one, an unknown or revoked one, a wrong secret.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The organisation does not exist, or the token is another
    /// organisation's: answered alike, so that a client learns nothing about
    /// other tenants.
    #[error("no such organisation")]
    NoSuchOrg,
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// What a token was verified to allow.
#[derive(Debug, Clone)]
pub struct Grant {
    pub org: Org,
    /// An operator token (valid for every organisation).
    pub operator: bool,
    /// The token's public id (for logs and audit).
    pub token_id: String,
}

/// The verified part of a token, cached under SHA-256 of the whole presented
/// token (never the token itself).
#[derive(Debug, Clone)]
struct Verified {
    id: String,
    org_id: Option<i64>,
}

/// Checks bearer tokens against organisations, with a bounded in-process
/// cache of verified tokens and of organisations by slug. Entries live for
/// `ttl`: revocations and deletions made by any process take effect
/// everywhere within that time.
#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    tokens: moka::sync::Cache<[u8; 32], Arc<Verified>>,
    orgs: moka::sync::Cache<String, Option<Arc<Org>>>,
}

impl Authenticator {
    /// `ttl` zero turns caching off (every request reads the database).
    pub fn new(store: Store, ttl: Duration, capacity: u64) -> Self {
        let capacity = if ttl.is_zero() { 0 } else { capacity };
        let ttl = ttl.max(Duration::from_nanos(1));
        Authenticator {
            store,
            tokens: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            orgs: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Checks `presented` (the bearer token) for the organisation `slug`.
    pub async fn authorize(&self, presented: &str, slug: &str) -> Result<Grant, AuthError> {
        let (id, secret) = parse(presented).ok_or(AuthError::Unauthorized)?;
        let key: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let verified = match self.tokens.get(&key) {
            Some(v) => v,
            None => {
                let record = self.store.token(id).await?.ok_or(AuthError::Unauthorized)?;
                if !verify(secret, &record.secret_hash) {
                    return Err(AuthError::Unauthorized);
                }
                let v = Arc::new(Verified {
                    id: record.id,
                    org_id: record.org_id,
                });
                self.tokens.insert(key, v.clone());
                v
            }
        };
        let org = self.org(slug).await?.ok_or(AuthError::NoSuchOrg)?;
        if verified.org_id.is_some_and(|id| id != org.id) {
            return Err(AuthError::NoSuchOrg);
        }
        Ok(Grant {
            org: Org::clone(&org),
            operator: verified.org_id.is_none(),
            token_id: verified.id.clone(),
        })
    }

    /// Checks an operator token (valid for every organisation).
    pub async fn authorize_operator(&self, presented: &str) -> Result<String, AuthError> {
        let (id, secret) = parse(presented).ok_or(AuthError::Unauthorized)?;
        let record = self.store.token(id).await?.ok_or(AuthError::Unauthorized)?;
        if record.org_id.is_some() || !verify(secret, &record.secret_hash) {
            return Err(AuthError::Unauthorized);
        }
        Ok(record.id)
    }

    async fn org(&self, slug: &str) -> Result<Option<Arc<Org>>, AuthError> {
        if let Some(org) = self.orgs.get(slug) {
            return Ok(org);
        }
        // Only well-formed slugs are looked up and remembered.
        if !crate::orgs::valid_slug(slug) {
            return Ok(None);
        }
        let org = self.store.org_by_slug(slug).await?.map(Arc::new);
        self.orgs.insert(slug.to_owned(), org.clone());
        Ok(org)
    }

    /// Forgets everything cached (after a revocation or a deletion made by
    /// this process, so that it takes effect here at once).
    pub fn forget_all(&self) {
        self.tokens.invalidate_all();
        self.orgs.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_parse_and_verify() {
        let t = issue();
        let (id, secret) = parse(&t.token).unwrap();
        assert_eq!(id, t.id);
        assert!(verify(secret, &t.secret_hash));
        assert!(!verify(&"0".repeat(64), &t.secret_hash));
        assert_ne!(issue().token, t.token);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "lsn_",
            "lsn_abc_def",
            "Bearer x",
            &format!("lsn_{}_{}", "g".repeat(16), "0".repeat(64)),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
