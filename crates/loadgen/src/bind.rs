//! Source addresses: one address has ~28,000 ephemeral ports toward one destination.
//!
//! `--bind 127.0.0.1-127.0.0.8` (or a comma list, or both) spreads sessions over several
//! source addresses, session `k` using address `k mod n`. Sockets are bound with
//! `IP_BIND_ADDRESS_NO_PORT` (connect.rs), so the kernel picks the port at `connect()` for
//! the whole four-tuple instead of searching the range for a port free on every
//! destination at `bind()`.
//!
//! The search at `connect()` still walks the range from a random point until it finds a
//! free port, so it slows as the range fills: 25,000 sessions from one address put the
//! generator's scheduling lag p99 at 32–383 ms, 2.7 ms over four. Toward a loopback target
//! surge therefore spreads sessions over 127.0.0.x by itself ([`loopback_spread`]), and
//! toward any other it warns before a run when one address would carry more than
//! [`SESSIONS_PER_SOURCE`].

use std::net::{IpAddr, Ipv4Addr};

/// Ports one source address can use toward one destination (Linux default range).
pub const PORTS_PER_ADDRESS: u64 = 28_000;

/// Sessions one source address carries well toward one destination: a seventh of its
/// ports, where a free port is found in about 1.2 tries on average.
pub const SESSIONS_PER_SOURCE: u64 = 4_000;

/// Source addresses for `sessions` (all of this machine's) toward `target` when none were
/// given: 127.0.0.1, 127.0.0.2, … enough that none carries more than
/// [`SESSIONS_PER_SOURCE`], for a target on IPv4 loopback (every 127.x address is this
/// host's); nothing otherwise, or when one address is enough.
pub fn loopback_spread(target: IpAddr, sessions: u64) -> Vec<IpAddr> {
    let wanted = sessions.div_ceil(SESSIONS_PER_SOURCE).min(254);
    match target {
        IpAddr::V4(v4) if v4.is_loopback() && wanted > 1 => (1..=wanted as u8)
            .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A warning for `sessions` leaving from `sources` addresses (0: the host's one), when
/// each would carry more than it serves well.
pub fn crowding(sessions: u64, sources: usize) -> Option<String> {
    let sources = sources.max(1) as u64;
    let each = sessions.div_ceil(sources);
    (each > SESSIONS_PER_SOURCE).then(|| {
        format!(
            "warning: {each} sessions per source address toward one destination: past \
             ~{SESSIONS_PER_SOURCE} the kernel's search for a free port at connect() slows \
             the generator (scheduling lag, late sends); spread them over {} addresses this \
             host owns with --bind",
            sessions.div_ceil(SESSIONS_PER_SOURCE)
        )
    })
}

/// Parses `127.0.0.1-127.0.0.8,::1` into a list of addresses.
pub fn parse_bind(spec: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (v4(a, spec)?, v4(b, spec)?);
                let (lo, hi) = (u32::from(a), u32::from(b));
                if hi < lo || hi - lo >= 65_536 {
                    return Err(format!(
                        "--bind {spec}: the range {part} must go upwards and hold at most 65536 addresses"
                    ));
                }
                out.extend((lo..=hi).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
            }
            None => out.push(
                part.parse()
                    .map_err(|_| format!("--bind {spec}: \"{part}\" is not an IP address"))?,
            ),
        }
    }
    if out.is_empty() {
        return Err(format!("--bind {spec}: no addresses"));
    }
    Ok(out)
}

fn v4(s: &str, spec: &str) -> Result<Ipv4Addr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("--bind {spec}: \"{s}\" is not an IPv4 address (ranges are IPv4)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists() {
        let a = parse_bind("127.0.0.1-127.0.0.3,127.0.1.1").unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[2].to_string(), "127.0.0.3");
        assert!(parse_bind("127.0.0.3-127.0.0.1").is_err());
        assert!(parse_bind("nope").is_err());
        assert!(parse_bind("").is_err());
    }

    #[test]
    fn loopback_targets_get_enough_sources() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(loopback_spread(local, 4_000).is_empty());
        let spread = loopback_spread(local, 25_000);
        assert_eq!(spread.len(), 7);
        assert_eq!(spread[6].to_string(), "127.0.0.7");
        assert!(loopback_spread("10.0.0.5".parse().unwrap(), 25_000).is_empty());
        assert!(loopback_spread("::1".parse().unwrap(), 25_000).is_empty());
        assert!(crowding(25_000, 0).unwrap().contains("7 addresses"));
        assert!(crowding(25_000, 7).is_none());
    }
}
