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
//! Once both proofs held, both sides derive a key of the link from the run's key and the
//! two nonces, and every later line in either direction carries a tag under it: nothing
//! without the run's key can forge, alter, replay, reorder or drop a line within the
//! stream without the link breaking (a stream cut short looks like a network failure, as
//! it is handled). The lines are authenticated (HMAC), not encrypted: what a run measures
//! is readable on the wire, as it is in the run directory. The handshake's own lines go
//! before any seal, and nothing times the lines: whatever sits on the path can still
//! refuse a join, or delay a probe and so skew the measured round trip and time zero.
//!
//! The key comes from the environment only (on Kubernetes, a Secret), and is never printed,
//! logged or written to a run directory.

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

    /// The MAC of `purpose` (a role's proof, or the link key) for one handshake.
    fn mac(
        &self,
        purpose: &str,
        nonces: Nonces<'_>,
        shard: u32,
        fingerprint: &str,
    ) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        // Nonces are checked to be hex ([`is_nonce`]), so no field can forge a line break.
        let signed = format!(
            "surge rendezvous 2\n{purpose}\n{}\n{}\n{shard}\n{fingerprint}",
            nonces.shard, nonces.coordinator
        );
        mac.update(signed.as_bytes());
        mac
    }

    /// The key of the link after the handshake of `nonces` (for [`Seal`]): fresh for every
    /// connection, and no proof's value, so what was sent in the clear says nothing of it.
    pub(crate) fn link(&self, nonces: Nonces<'_>, shard: u32, fingerprint: &str) -> LinkKey {
        LinkKey(
            self.mac("link", nonces, shard, fingerprint)
                .finalize()
                .into_bytes()
                .into(),
        )
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
            .mac(role.label(), nonces, shard, fingerprint)
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
        unhex(proof.as_bytes()).is_some_and(|bytes| {
            self.mac(role.label(), nonces, shard, fingerprint)
                .verify_slice(&bytes)
                .is_ok()
        })
    }
}

/// The key of one link ([`Key::link`]). Its `Debug` shows nothing of it.
pub(crate) struct LinkKey([u8; 32]);

impl LinkKey {
    /// The seals of `me`'s end of the link: for the lines it reads, and for those it
    /// writes. Each side's directions follow from its role, never from its caller.
    pub(crate) fn ends(&self, me: Role) -> (Seal, Seal) {
        let (read, write) = match me {
            Role::Coordinator => (Direction::Up, Direction::Down),
            Role::Shard => (Direction::Down, Direction::Up),
        };
        (Seal::new(self, read), Seal::new(self, write))
    }
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

/// Which way a sealed line travels: a line cannot be sent back as if from the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Shard to coordinator.
    Up,
    /// Coordinator to shard.
    Down,
}

/// Bytes of HMAC-SHA256 a line's tag keeps: 128 bits, as AES-GCM's tag.
const TAG_LEN: usize = 16;
/// What a seal adds in front of a line's JSON: the tag in hex and a space.
pub(crate) const SEALED_PREFIX: usize = TAG_LEN * 2 + 1;

/// One direction of a sealed link. Each line goes as `TAG JSON`, TAG the first 16 bytes
/// (hex) of HMAC-SHA256 under the link key over the direction, the line's number and the
/// JSON: a line altered, forged, replayed, dropped or reordered fails its tag.
pub(crate) struct Seal {
    mac: Hmac<Sha256>,
    direction: Direction,
    next: u64,
}

impl fmt::Debug for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seal")
            .field("direction", &self.direction)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Seal {
    fn new(link: &LinkKey, direction: Direction) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(&link.0).expect("HMAC takes any key length"),
            direction,
            next: 0,
        }
    }

    fn line_mac(&self, json: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(match self.direction {
            Direction::Up => b"up\n",
            Direction::Down => b"dn\n",
        });
        mac.update(&self.next.to_be_bytes());
        mac.update(json);
        mac
    }

    /// The tag of `json` as the next line (to write before it, and a space).
    pub(crate) fn tag(&mut self, json: &[u8]) -> String {
        let tag = hex(&self.line_mac(json).finalize().into_bytes()[..TAG_LEN]);
        self.next += 1;
        tag
    }

    /// The JSON of the next line `TAG JSON` (its line break taken off), once its tag holds
    /// (compared in constant time).
    pub(crate) fn open<'a>(&mut self, line: &'a [u8]) -> Result<&'a [u8], String> {
        let broken = || {
            "a rendezvous message failed its seal: altered, replayed or out of order on the \
             way, or not from a holder of the run's key"
                .to_string()
        };
        let tag_hex = line.get(..TAG_LEN * 2).ok_or_else(broken)?;
        if line.get(TAG_LEN * 2) != Some(&b' ') {
            return Err(broken());
        }
        let tag = unhex(tag_hex).ok_or_else(broken)?;
        let json = &line[TAG_LEN * 2 + 1..];
        self.line_mac(json)
            .verify_truncated_left(&tag)
            .map_err(|_| broken())?;
        self.next += 1;
        Ok(json)
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

/// The bytes of `text`, lowercase hex as [`hex`] writes it, and nothing else: one value
/// has one spelling, so no tag or proof can be rewritten and still hold (`from_str_radix`
/// would also take `A`–`F` and a leading `+`).
fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
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
        let upper = proof.to_ascii_uppercase();
        for garbage in ["", "zz", "abc", &proof[..62], "é", &upper] {
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

    /// A sealed line opens once, in order, in its direction, under its link's key; any
    /// change to it, a replay, a swap or a line from another link fails.
    #[test]
    fn a_sealed_line_opens_once_in_order_and_unaltered() {
        let key = Key::new(SECRET).unwrap();
        let (a, b) = (nonce(), nonce());
        let nonces = Nonces {
            shard: &a,
            coordinator: &b,
        };
        let link = key.link(nonces, 1, "fp");
        let line = |tag: &str, json: &[u8]| [tag.as_bytes(), b" ", json].concat();
        let (first, second) = (br#"{"kind":"beat"}"#, br#"{"kind":"welcome"}"#);

        let mut out = Seal::new(&link, Direction::Down);
        let sealed = [line(&out.tag(first), first), line(&out.tag(second), second)];
        assert_eq!(sealed[0].len(), SEALED_PREFIX + first.len());
        let mut inn = Seal::new(&link, Direction::Down);
        assert_eq!(inn.open(&sealed[0]).unwrap(), first);
        assert_eq!(inn.open(&sealed[1]).unwrap(), second);
        assert!(inn.open(&sealed[1]).is_err(), "replayed");

        let fresh = || Seal::new(&link, Direction::Down);
        assert!(fresh().open(&sealed[1]).is_err(), "out of order");
        assert!(
            Seal::new(&link, Direction::Up).open(&sealed[0]).is_err(),
            "sent back the other way"
        );
        let other_link = key.link(
            Nonces {
                shard: &b,
                coordinator: &a,
            },
            1,
            "fp",
        );
        assert!(
            Seal::new(&other_link, Direction::Down)
                .open(&sealed[0])
                .is_err(),
            "another connection's key"
        );
        let mut altered = sealed[0].clone();
        *altered.last_mut().unwrap() ^= 1;
        let mut bad_tag = sealed[0].clone();
        bad_tag[0] = if bad_tag[0] == b'0' { b'1' } else { b'0' };
        // The same bytes spelt otherwise: upper case, or a `+` before a low digit.
        let respelt = |at: usize, spelling: &[u8]| {
            let mut line = sealed[0].clone();
            line[at..at + 2].copy_from_slice(spelling);
            line
        };
        let letter = sealed[0][..32].iter().position(u8::is_ascii_lowercase);
        let upper = letter.map(|i| {
            let mut line = sealed[0].clone();
            line[i] = line[i].to_ascii_uppercase();
            line
        });
        let pair = (0..32).step_by(2).find(|&i| sealed[0][i] == b'0');
        let plus = pair.map(|i| respelt(i, &[b'+', sealed[0][i + 1]]));
        let short = sealed[0][..SEALED_PREFIX - 2].to_vec();
        let respelt: Vec<Vec<u8>> = upper.into_iter().chain(plus).collect();
        for bad in [altered, bad_tag, first.to_vec(), short, Vec::new()]
            .into_iter()
            .chain(respelt)
        {
            let err = fresh().open(&bad).unwrap_err();
            assert!(err.contains("failed its seal"), "{err}");
        }
        // The link key is neither proof sent in the clear.
        let proof = key.prove(Role::Shard, nonces, 1, "fp");
        assert_ne!(hex(&link.0), proof);
        assert_ne!(hex(&link.0), key.prove(Role::Coordinator, nonces, 1, "fp"));
        assert_eq!(format!("{link:?}"), "LinkKey(<redacted>)");
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
        assert_eq!(unhex(a.as_bytes()).map(|v| v.len()), Some(16));
        assert!(is_nonce(&a) && is_nonce(&b));
        let line_break = format!("{}\n", &a[..31]);
        let (upper, not_hex) = ("0123456789ABCDEF0123456789abcdef", "g".repeat(32));
        for bad in ["", "00ff", &a[..31], &line_break, upper, &not_hex] {
            assert!(!is_nonce(bad), "{bad:?}");
        }
    }
}
