//! API tokens: `lsn_<id>_<secret>`, where `id` (64 bits, hex) names the stored
//! record and `secret` is 256 random bits (hex). Only SHA-256(secret) is stored;
//! a presented secret is compared to it in constant time. A fast hash is right
//! here: the secret is uniformly random, so there is nothing to brute-force.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
