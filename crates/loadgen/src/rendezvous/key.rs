//! The run's shared key (`SURGE_RENDEZVOUS_KEY`): who may join a run, and whom a shard
//! reports to.
//!
//! Without a key, anything that reaches the coordinator's port and knows the profile could
//! join a run and take a shard's place; a shard could report to anything that answers at
//! the address. With a key on every machine, each side sends a fresh random nonce and
//! proves the key with an HMAC-SHA256 over both nonces, its role, the shard index and the
//! run's fingerprint before the shard joins: a proof cannot be replayed on another
//! connection, for another shard or run, or in the other direction.
//!
//! The shard, which dialled, proves first, and the coordinator proves only to a shard that
//! did: whatever reaches the coordinator's port learns no value of the key's HMAC to guess
//! the key from offline. (Whoever proves first can be made to by an impostor of the other
//! side; a shard dials only the address it was given.) Any MAC over known text can be
//! guessed against, so the key must be random, not a word: `run.sh` makes one per run.
//!
//! The key comes from the environment only (on Kubernetes, a Secret), and is never printed,
//! logged or written to a run directory. It guards who joins, not the link after: the
//! reports are neither encrypted nor signed, so keep the link on the cluster's own network,
//! where nothing can sit between two pods.

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

    fn mac(&self, role: Role, nonces: Nonces<'_>, shard: u32, fingerprint: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        // Nonces are checked to be hex ([`is_nonce`]), so no field can forge a line break.
        let signed = format!(
            "surge rendezvous 2\n{}\n{}\n{}\n{shard}\n{fingerprint}",
            role.label(),
            nonces.shard,
            nonces.coordinator
        );
        mac.update(signed.as_bytes());
        mac
    }

    /// What `role` proves for the handshake of `nonces`, `shard` of the run `fingerprint`.
    pub(crate) fn prove(
        &self,
        role: Role,
        nonces: Nonces<'_>,
        shard: u32,
        fingerprint: &str,
    ) -> String {
        hex(&self
            .mac(role, nonces, shard, fingerprint)
            .finalize()
            .into_bytes())
    }

    /// Whether `proof` is what `role` holding this key proves (compared in constant time).
    pub(crate) fn verify(
        &self,
        role: Role,
        nonces: Nonces<'_>,
        shard: u32,
        fingerprint: &str,
        proof: &str,
    ) -> bool {
        unhex(proof).is_some_and(|bytes| {
            self.mac(role, nonces, shard, fingerprint)
                .verify_slice(&bytes)
                .is_ok()
        })
    }
}

/// The two nonces of one handshake, each side's fresh challenge to the other; both proofs
/// cover both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Nonces<'a> {
    pub shard: &'a str,
    pub coordinator: &'a str,
}

/// Whether `text` is a nonce as [`nonce`] makes them: 32 lowercase hex digits.
pub(crate) fn is_nonce(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh nonce: 128 bits from a cryptographic generator seeded by the operating system.
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
    fn a_proof_holds_for_its_role_nonces_shard_and_run_only() {
        let key = Key::new(SECRET).unwrap();
        let (a, b, c) = (nonce(), nonce(), nonce());
        let nonces = Nonces {
            shard: &a,
            coordinator: &b,
        };
        let proof = key.prove(Role::Shard, nonces, 3, "fp");
        assert_eq!(proof.len(), 64, "hex of a SHA-256 HMAC");
        assert!(key.verify(Role::Shard, nonces, 3, "fp", &proof));
        assert!(
            !key.verify(Role::Coordinator, nonces, 3, "fp", &proof),
            "role"
        );
        for other in [
            Nonces {
                shard: &c,
                coordinator: &b,
            },
            Nonces {
                shard: &a,
                coordinator: &c,
            },
            Nonces {
                shard: &b,
                coordinator: &a,
            },
        ] {
            assert!(
                !key.verify(Role::Shard, other, 3, "fp", &proof),
                "{other:?}"
            );
        }
        assert!(!key.verify(Role::Shard, nonces, 4, "fp", &proof), "shard");
        assert!(!key.verify(Role::Shard, nonces, 3, "fq", &proof), "run");
        let other = Key::new("another key of some length").unwrap();
        assert!(!other.verify(Role::Shard, nonces, 3, "fp", &proof), "key");
        for garbage in ["", "zz", "abc", &proof[..62], "é"] {
            assert!(
                !key.verify(Role::Shard, nonces, 3, "fp", garbage),
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
        assert!(is_nonce(&a) && is_nonce(&b));
        let line_break = format!("{}\n", &a[..31]);
        let (upper, not_hex) = ("0123456789ABCDEF0123456789abcdef", "g".repeat(32));
        for bad in ["", "00ff", &a[..31], &line_break, upper, &not_hex] {
            assert!(!is_nonce(bad), "{bad:?}");
        }
    }
}
