//! Keyed person hashes: a person counts once per period without being recognisable.
//!
//! Each period has its own random key; a person's identifier is stored only as
//! HMAC-SHA256(key, id). Once the period is closed and its key destroyed, the hashes
//! can no longer be linked to anyone, nor across periods.
//!
//! The period key itself is stored only sealed ([`Kek::seal`]) under a
//! key-encryption key kept outside the database: a copy of the database alone
//! holds hashes nobody can recompute.

use chacha20poly1305::aead::{Aead, KeyInit as _, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
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

    /// [`PeriodKey::from_slice`], wiping the vector afterwards.
    pub fn from_vec(mut bytes: Vec<u8>) -> Option<PeriodKey> {
        let key = PeriodKey::from_slice(&bytes);
        bytes.zeroize();
        key
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

/// The key-encryption key (KEK): seals each period key before it is stored, so
/// that the database (and every backup of it) holds period keys only in
/// sealed form. It lives outside the database (a file, e.g. a mounted
/// Kubernetes secret). Wiped from memory when dropped; never printed; not
/// `Clone`.
pub struct Kek([u8; 32]);

/// Why a key-encryption key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KekError {
    #[error("a key-encryption key is 32 bytes: raw, as 64 hexadecimal digits, or in base64")]
    BadFormat,
}

/// Why a sealed period key could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the stored period key is not in a sealed form this version knows")]
    Format,
    #[error("the key-encryption key does not open the stored period key (another key-encryption key sealed it, or it was altered)")]
    WrongKek,
}

/// The first byte of a sealed period key: the format (XChaCha20-Poly1305).
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Length of a sealed period key: format, nonce, encrypted key, tag.
pub const SEALED_LEN: usize = 1 + NONCE_LEN + 32 + TAG_LEN;

impl Kek {
    /// A new key-encryption key from the operating system's random source.
    pub fn random() -> Kek {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Kek(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Kek {
        Kek(bytes)
    }

    /// Reads a key-encryption key as kept in a file: exactly 32 raw bytes, or
    /// (surrounding white space ignored) 64 hexadecimal digits or the base64
    /// of 32 bytes.
    pub fn parse(content: &[u8]) -> Result<Kek, KekError> {
        use base64::Engine;
        if let Ok(raw) = <[u8; 32]>::try_from(content) {
            return Ok(Kek(raw));
        }
        let text = std::str::from_utf8(content)
            .map_err(|_| KekError::BadFormat)?
            .trim();
        let mut decoded = zeroize::Zeroizing::new(match text.len() {
            64 => hex::decode(text).map_err(|_| KekError::BadFormat)?,
            _ => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| KekError::BadFormat)?,
        });
        let bytes = <[u8; 32]>::try_from(decoded.as_slice()).map_err(|_| KekError::BadFormat)?;
        decoded.zeroize();
        Ok(Kek(bytes))
    }

    /// The key as 64 hexadecimal digits, for writing it to its file.
    pub fn to_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(hex::encode(self.0))
    }

    /// Seals a period key for storage: XChaCha20-Poly1305 under this KEK with a
    /// random nonce, bound to the organisation and period (associated data),
    /// so that a sealed key copied to another period does not open.
    pub fn seal(&self, key: &PeriodKey, org_id: i64, label: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.0));
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: key.as_bytes(),
                    aad: &associated_data(org_id, label),
                },
            )
            .expect("sealing 32 bytes cannot fail");
        let mut out = Vec::with_capacity(SEALED_LEN);
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a period key sealed by [`Kek::seal`] for the same organisation and
    /// period.
    pub fn open(&self, sealed: &[u8], org_id: i64, label: &str) -> Result<PeriodKey, OpenError> {
        if sealed.len() != SEALED_LEN || sealed[0] != SEALED_V1 {
            return Err(OpenError::Format);
        }
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.0));
        let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
        let clear = zeroize::Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: body,
                        aad: &associated_data(org_id, label),
                    },
                )
                .map_err(|_| OpenError::WrongKek)?,
        );
        PeriodKey::from_slice(&clear).ok_or(OpenError::Format)
    }
}

/// What a sealed key is bound to: a domain tag, the organisation and the period.
fn associated_data(org_id: i64, label: &str) -> Vec<u8> {
    let mut ad = b"liaison meter period key v1\0".to_vec();
    ad.extend_from_slice(&org_id.to_be_bytes());
    ad.extend_from_slice(label.as_bytes());
    ad
}

impl Drop for Kek {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

/// HMAC-SHA256 of a person's identifier under the period's key.
pub fn person_hash(key: &PeriodKey, person_id: &str) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
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

    #[test]
    fn sealed_keys_open_only_with_their_kek_org_and_period() {
        let kek = Kek::random();
        let key = PeriodKey::random();
        let sealed = kek.seal(&key, 7, "2026-11");
        assert_eq!(sealed.len(), SEALED_LEN);
        assert!(
            !sealed.windows(32).any(|w| w == key.as_bytes()),
            "the key is not in clear in its sealed form"
        );
        let back = kek.open(&sealed, 7, "2026-11").unwrap();
        assert_eq!(back.as_bytes(), key.as_bytes());
        // Random nonces: sealing twice differs.
        assert_ne!(kek.seal(&key, 7, "2026-11"), sealed);
        assert_eq!(
            Kek::random().open(&sealed, 7, "2026-11").unwrap_err(),
            OpenError::WrongKek
        );
        assert_eq!(
            kek.open(&sealed, 8, "2026-11").unwrap_err(),
            OpenError::WrongKek
        );
        assert_eq!(
            kek.open(&sealed, 7, "2026-12").unwrap_err(),
            OpenError::WrongKek
        );
        let mut altered = sealed.clone();
        altered[40] ^= 1;
        assert_eq!(
            kek.open(&altered, 7, "2026-11").unwrap_err(),
            OpenError::WrongKek
        );
        assert_eq!(
            kek.open(key.as_bytes(), 7, "2026-11").unwrap_err(),
            OpenError::Format
        );
    }

    #[test]
    fn keks_read_raw_hex_or_base64_and_never_print() {
        use base64::Engine;
        let bytes = [0x5a_u8; 32];
        let key = PeriodKey::random();
        let sealed = Kek::from_bytes(bytes).seal(&key, 1, "2026-11");
        let hex_form = format!("{}\n", hex::encode(bytes));
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        for content in [&bytes[..], hex_form.as_bytes(), b64.as_bytes()] {
            let kek = Kek::parse(content).unwrap();
            assert_eq!(
                kek.open(&sealed, 1, "2026-11").unwrap().as_bytes(),
                key.as_bytes()
            );
        }
        assert_eq!(*Kek::from_bytes(bytes).to_hex(), hex::encode(bytes));
        for bad in [&b""[..], b"short", &[0u8; 31], &[b'g'; 64]] {
            assert_eq!(Kek::parse(bad).unwrap_err(), KekError::BadFormat);
        }
        assert_eq!(format!("{:?}", Kek::from_bytes(bytes)), "Kek(..)");
    }
}
