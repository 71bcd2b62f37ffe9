//! Source addresses: one address has ~28,000 ephemeral ports toward one destination.
//!
//! `--bind 127.0.0.1-127.0.0.8` (or a comma list, or both) spreads sessions over several
//! source addresses, session `k` using address `k mod n`; the socket is bound before it
//! connects, so the kernel picks a port per source address.

use std::net::{IpAddr, Ipv4Addr};

/// Ports one source address can use toward one destination (Linux default range).
pub const PORTS_PER_ADDRESS: u64 = 28_000;

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
}
