//! UTC timestamps for run.json and run-directory names, without a date library.
//!
//! Why it exists: the run directory needs exactly two renderings of a wall-clock instant —
//! RFC 3339 (`2026-11-28T13:05:00.000Z`) in JSON and hlog headers, and a filename-safe form
//! (`2026-11-28T13-05-00Z`) for the directory — and parsing of the first. A proleptic
//! Gregorian day-count conversion is a few lines; a date crate would be a dependency for it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// An instant in UTC with millisecond resolution.
///
/// Serialized as RFC 3339 with milliseconds and a `Z` suffix, e.g. `2026-11-28T13:05:00.000Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime {
    /// Milliseconds since 1970-01-01T00:00:00Z (negative before it).
    millis: i64,
}

impl UtcTime {
    /// The current time.
    pub fn now() -> UtcTime {
        UtcTime::from(SystemTime::now())
    }

    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: i64) -> UtcTime {
        UtcTime { millis }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.millis
    }

    /// Seconds since the Unix epoch, as the hlog headers write them.
    pub fn unix_seconds_f64(self) -> f64 {
        self.millis as f64 / 1000.0
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        if self.millis >= 0 {
            UNIX_EPOCH + Duration::from_millis(self.millis as u64)
        } else {
            UNIX_EPOCH - Duration::from_millis(self.millis.unsigned_abs())
        }
    }

    /// `2026-11-28T13-05-00Z`: RFC 3339 to the second with `:` replaced by `-`, safe in file
    /// names on every OS.
    pub fn dir_name(self) -> String {
        let c = Civil::from_millis(self.millis);
        format!(
            "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }

    /// Parse `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` (UTC only; fractions past milliseconds are
    /// truncated). Offsets other than `Z` are rejected: surge writes only UTC.
    pub fn parse_rfc3339(s: &str) -> Result<UtcTime> {
        let err = |reason| Error::InvalidTimestamp {
            input: s.to_string(),
            reason,
        };
        let b = s.as_bytes();
        if b.len() < 20 || !s.is_ascii() {
            return Err(err("expected YYYY-MM-DDTHH:MM:SS[.fff]Z"));
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64> {
            s[r].parse::<u32>()
                .map(i64::from)
                .map_err(|_| err("expected digits in YYYY-MM-DDTHH:MM:SS[.fff]Z"))
        };
        if b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b't') || b[13] != b':' {
            return Err(err("expected YYYY-MM-DDTHH:MM:SS[.fff]Z"));
        }
        if b[16] != b':' {
            return Err(err("expected YYYY-MM-DDTHH:MM:SS[.fff]Z"));
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let rest = &s[19..];
        let (frac, zone) = match rest.strip_prefix('.') {
            Some(r) => {
                let digits = r.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    return Err(err("expected digits after '.'"));
                }
                (&r[..digits], &r[digits..])
            }
            None => ("", rest),
        };
        if zone != "Z" && zone != "z" {
            return Err(err("only UTC ('Z') timestamps are accepted"));
        }
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(err("date or time field out of range"));
        }
        let mut millis_frac = 0i64;
        for (i, d) in frac.bytes().take(3).enumerate() {
            millis_frac += i64::from(d - b'0') * 10i64.pow(2 - i as u32);
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
        Ok(UtcTime {
            millis: secs * 1000 + millis_frac,
        })
    }
}

impl From<SystemTime> for UtcTime {
    fn from(t: SystemTime) -> UtcTime {
        let millis = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            // Round towards negative infinity so the instant is never after `t`.
            Err(e) => {
                let d = e.duration();
                let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                if d.subsec_nanos() % 1_000_000 != 0 {
                    -ms - 1
                } else {
                    -ms
                }
            }
        };
        UtcTime { millis }
    }
}

impl fmt::Display for UtcTime {
    /// RFC 3339: `2026-11-28T13:05:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = Civil::from_millis(self.millis);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
        )
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<UtcTime, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        UtcTime::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

impl Civil {
    fn from_millis(millis: i64) -> Civil {
        let secs = millis.div_euclid(1000);
        let ms = millis.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod % 3600 / 60,
            second: sod % 60,
            millis: ms,
        }
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (public-domain algorithms).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            UtcTime::from_unix_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        // 2026-11-28T13:05:00Z = 1795871100 s
        let t = UtcTime::from_unix_millis(1_795_871_100_123);
        assert_eq!(t.to_string(), "2026-11-28T13:05:00.123Z");
        assert_eq!(t.dir_name(), "2026-11-28T13-05-00Z");
        assert_eq!(
            UtcTime::from_unix_millis(951_782_400_000).to_string(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            UtcTime::from_unix_millis(-1).to_string(),
            "1969-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn parse_round_trips_every_day_of_a_few_years() {
        // Bounded: 4 years of days, one instant per day.
        let start = 1_700_000_000_000i64;
        for i in 0..(4 * 366) {
            let t = UtcTime::from_unix_millis(start + i * 86_400_123);
            assert_eq!(UtcTime::parse_rfc3339(&t.to_string()).unwrap(), t);
        }
    }

    #[test]
    fn parse_accepts_variants_and_rejects_garbage() {
        let t = UtcTime::parse_rfc3339("2026-11-28T13:05:00Z").unwrap();
        assert_eq!(t.unix_millis(), 1_795_871_100_000);
        let t = UtcTime::parse_rfc3339("2026-11-28T13:05:00.5Z").unwrap();
        assert_eq!(t.unix_millis(), 1_795_871_100_500);
        let t = UtcTime::parse_rfc3339("2026-11-28T13:05:00.123456789Z").unwrap();
        assert_eq!(t.unix_millis(), 1_795_871_100_123);
        for bad in [
            "2026-11-28 13:05:00Z",
            "2026-11-28T13:05:00+01:00",
            "2026-02-30T00:00:00Z",
            "2026-11-28T13:05:00.Z",
            "2026-11-28T13:05Z",
            "yesterday",
        ] {
            let e = UtcTime::parse_rfc3339(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn system_time_conversion() {
        let st = UNIX_EPOCH + Duration::from_millis(1_795_871_100_123) + Duration::from_micros(7);
        let t = UtcTime::from(st);
        assert_eq!(t.unix_millis(), 1_795_871_100_123);
        assert_eq!(
            t.to_system_time(),
            UNIX_EPOCH + Duration::from_millis(1_795_871_100_123)
        );
    }
}
