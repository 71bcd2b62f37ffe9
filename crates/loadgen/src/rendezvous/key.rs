//! The run's shared key (`SURGE_RENDEZVOUS_KEY`): who may join a run, and whom a shard
//! reports to.
//!
//! Without a key, anything that reaches the coordinator's port and knows the profile could
//! join a run, take a shard's place or feed the merged figures; a shard could report to
//! anything that answers at the address. With a key on every machine, each side of a
//! connection answers the other's fresh random nonce with an HMAC-SHA256 of it, its role,
//! the shard index and the run's fingerprint before the shard joins: a proof cannot be
//! replayed on another connection, for another shard or run, or in the other direction.
//! The key comes from the environment only (on Kubernetes, a Secret), and is never printed,
//! logged or written to a run directory. The link itself is not encrypted: keep it on the
//! cluster's own network.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::RunError;

/// The environment variable that holds the key.
pub const KEY_ENV: &str = "SURGE_RENDEZVOUS_KEY";
/// Shortest key accepted: a guessable key would be no gate.
pub const MIN_KEY_LEN: usize = 16;

/// Which side of the handshake a proof speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Coordinator,
    Shard,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Shard => "shard",
        }
    }
}

/// A run's shared key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Key(Arc<[u8]>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// A key from its text; at least [`MIN_KEY_LEN`] bytes.
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_KEY_LEN {
            return Err(format!(
                "{KEY_ENV} holds {} byte(s); a rendezvous key needs at least {MIN_KEY_LEN} \
                 (e.g. `head -c 24 /dev/urandom | base64`)",
                secret.len()
            ));
        }
        Ok(Self(secret.as_bytes().into()))
    }

    /// The key in [`KEY_ENV`], if set.
    pub fn from_env() -> Result<Option<Self>, RunError> {
        match std::env::var(KEY_ENV) {
            Ok(secret) => Self::new(&secret).map(Some).map_err(RunError::Usage),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(RunError::Usage(format!("{KEY_ENV} is not valid UTF-8")))
            }
        }
    }

    fn mac(&self, role: Role, nonce: &str, shard: u32, fingerprint: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        let signed = format!(
            "surge rendezvous\n{}\n{nonce}\n{shard}\n{fingerprint}",
            role.label()
        );
        mac.update(signed.as_bytes());
        mac
    }

    /// What `role` answers to `nonce` for `shard` of the run `fingerprint`.
    pub(crate) fn prove(&self, role: Role, nonce: &str, shard: u32, fingerprint: &str) -> String {
        hex(&self
            .mac(role, nonce, shard, fingerprint)
            .finalize()
            .into_bytes())
    }

    /// Whether `proof` is what `role` holding this key answers (compared in constant time).
    pub(crate) fn verify(
        &self,
        role: Role,
        nonce: &str,
        shard: u32,
        fingerprint: &str,
        proof: &str,
    ) -> bool {
        unhex(proof).is_some_and(|bytes| {
            self.mac(role, nonce, shard, fingerprint)
                .verify_slice(&bytes)
                .is_ok()
        })
    }
}

/// A fresh nonce: 128 bits from the operating system's generator.
pub(crate) fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "correct horse battery staple";

    #[test]
    fn a_proof_holds_for_its_role_nonce_shard_and_run_only() {
        let key = Key::new(SECRET).unwrap();
        let proof = key.prove(Role::Shard, "n1", 3, "fp");
        assert_eq!(proof.len(), 64, "hex of a SHA-256 HMAC");
        assert!(key.verify(Role::Shard, "n1", 3, "fp", &proof));
        assert!(
            !key.verify(Role::Coordinator, "n1", 3, "fp", &proof),
            "role"
        );
        assert!(!key.verify(Role::Shard, "n2", 3, "fp", &proof), "nonce");
        assert!(!key.verify(Role::Shard, "n1", 4, "fp", &proof), "shard");
        assert!(!key.verify(Role::Shard, "n1", 3, "fq", &proof), "run");
        let other = Key::new("another key of some length").unwrap();
        assert!(!other.verify(Role::Shard, "n1", 3, "fp", &proof), "key");
        for garbage in ["", "zz", "abc", &proof[..62], "é"] {
            assert!(
                !key.verify(Role::Shard, "n1", 3, "fp", garbage),
                "{garbage:?}"
            );
        }
    }

    /// A known answer from outside this code: RFC 4231's test case 2 for HMAC-SHA-256
    /// (key "Jefe"), computed over the message this module builds.
    #[test]
    fn the_mac_is_hmac_sha256() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn short_keys_are_refused_and_keys_are_never_shown() {
        let err = Key::new("short").unwrap_err();
        assert!(err.contains("at least 16"), "{err}");
        assert!(
            !err.contains("short"),
            "the key itself is not repeated: {err}"
        );
        let key = Key::new(SECRET).unwrap();
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
    }

    #[test]
    fn nonces_are_fresh_hex() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(unhex(&a).map(|v| v.len()), Some(16));
    }
}
