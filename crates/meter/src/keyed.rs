//! Keyed person hashes: a person counts once per period without being recognisable.
//!
//! Each period has its own random key; a person's identifier is stored only as
//! HMAC-SHA256(key, id). Once the period is closed and its key destroyed, the hashes
//! can no longer be linked to anyone, nor across periods.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroize;

/// A period's secret key. Wiped from memory when dropped; never printed.
pub struct PeriodKey([u8; 32]);

impl PeriodKey {
    /// A new key from the operating system's random source.
    pub fn random() -> PeriodKey {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        PeriodKey(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> PeriodKey {
        PeriodKey(bytes)
    }

    /// A key read back from storage; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<PeriodKey> {
        <[u8; 32]>::try_from(bytes).ok().map(PeriodKey)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for PeriodKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for PeriodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeriodKey(..)")
    }
}

/// HMAC-SHA256 of a person's identifier under the period's key.
pub fn person_hash(key: &PeriodKey, person_id: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    mac.update(person_id.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_hmac_sha256() {
        // RFC 4231 test case 1: key 0x0b x 20, data "Hi There". HMAC zero-pads keys
        // shorter than its block, so the same key zero-padded to 32 bytes is equal.
        let mut bytes = [0u8; 32];
        bytes[..20].fill(0x0b);
        let key = PeriodKey::from_bytes(bytes);
        assert_eq!(
            hex::encode(person_hash(&key, "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn same_person_same_key_same_hash_otherwise_different() {
        let key = PeriodKey::random();
        let other = PeriodKey::random();
        assert_ne!(key.as_bytes(), other.as_bytes());
        assert_eq!(person_hash(&key, "alice"), person_hash(&key, "alice"));
        assert_ne!(person_hash(&key, "alice"), person_hash(&key, "bob"));
        assert_ne!(person_hash(&key, "alice"), person_hash(&other, "alice"));
    }

    #[test]
    fn keys_round_trip_through_storage_and_never_print() {
        let key = PeriodKey::random();
        let back = PeriodKey::from_slice(key.as_bytes()).unwrap();
        assert_eq!(person_hash(&key, "x"), person_hash(&back, "x"));
        assert!(PeriodKey::from_slice(&[1; 31]).is_none());
        let key = PeriodKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "PeriodKey(..)");
        assert!(!shown.to_lowercase().contains("ab"));
    }
}
