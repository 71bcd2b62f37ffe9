//! Durations, rates, money, percentages and sizes, written the way a person writes them.
//!
//! Profiles are read and edited by people, so their values are written in human units
//! (`90s`, `4167/s`, `$0.04048`, `60%`, `128KB`). Each type here parses that text, keeps
//! the representation the rest of surge computes with (integer nanoseconds, a fraction,
//! dollars, bytes) and prints back a canonical form of what was written, so a resolved
//! profile stored in a run directory reads like the file it came from. For every value
//! `x`, `x.to_string().parse() == Ok(x)`. Serde goes through the same text, so TOML and
//! JSON show what a person would write.
//!
//! Numbers are plain decimals (`250`, `1.5`; money and rates may group thousands with
//! commas): no exponents, `inf` or `NaN`, and no sign except on an amount of money. A
//! profile never needs those, and in a hand-written file they usually mean a typo.

use std::fmt;
use std::iter::Sum;
use std::marker::PhantomData;
use std::ops::{Add, AddAssign, Mul, Sub, SubAssign};
use std::str::FromStr;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a value could not be parsed. The message says what was expected and quotes what
/// was found, so it can be shown to the person who wrote the profile as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error(r#"expected a duration such as "250ms", "90s" or "2h", found {found:?}"#)]
    Duration { found: String },
    #[error(r#"expected a rate such as "10/min", "4167/s" or "2500/h", found {found:?}"#)]
    Rate { found: String },
    #[error("a rate cannot be negative, found {found:?}")]
    NegativeRate { found: String },
    #[error(
        r#"expected an amount in US dollars such as "$3", "$0.04048" or "$1,800", found {found:?}"#
    )]
    Money { found: String },
    #[error(r#"expected a percentage such as "60%" or "0.1%", found {found:?}"#)]
    Percent { found: String },
    #[error("a percentage cannot exceed 100%, found {found:?}")]
    PercentAbove100 { found: String },
    #[error(
        r#"expected a size such as "32KB", "128KB" or "1MB" (1KB = 1024 bytes), found {found:?}"#
    )]
    ByteSize { found: String },
    #[error("a size must be a whole number of bytes, found {found:?}")]
    PartialByte { found: String },
    #[error("{found:?} is too large for a {what}")]
    OutOfRange { what: &'static str, found: String },
}

// ---------------------------------------------------------------------------------------
// Duration
// ---------------------------------------------------------------------------------------

/// A span of time in whole nanoseconds: `"250ms"`, `"90s"`, `"2h"`, `"1h30m"`, `"1.5s"`, `"0"`.
///
/// Units are `ns`, `us` (or `µs`), `ms`, `s`, `m` (minutes), `h` and `d`. A duration may
/// combine units from largest to smallest (`1h30m`) and each part may have decimals
/// (`1.5s`), rounded to the nearest nanosecond. A bare `0` needs no unit.
///
/// Canonical form, chosen so that what people usually write prints back unchanged:
/// - zero is `0`;
/// - under five minutes, the largest of `s`, `ms`, `us`, `ns` that is not above the
///   value, with decimals when needed: `90s`, `120s`, `1.5s`, `250ms`, `1.5ms`;
/// - from five minutes to an hour, whole minutes as `10m` and anything else in seconds:
///   `330s`, `330.5s`;
/// - from an hour on, days, hours, minutes and seconds, leaving out zeros: `2h`,
///   `1h30m`, `1d12h`, `1h0.5s`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    nanos: u64,
}

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MINUTE: u64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MINUTE;
const NANOS_PER_DAY: u64 = 24 * NANOS_PER_HOUR;

/// Duration units from largest to smallest.
const DURATION_UNITS: [(&str, u64); 7] = [
    ("d", NANOS_PER_DAY),
    ("h", NANOS_PER_HOUR),
    ("m", NANOS_PER_MINUTE),
    ("s", NANOS_PER_SEC),
    ("ms", NANOS_PER_MILLI),
    ("us", NANOS_PER_MICRO),
    ("ns", 1),
];

impl Duration {
    pub const ZERO: Duration = Duration { nanos: 0 };

    pub const fn from_nanos(nanos: u64) -> Duration {
        Duration { nanos }
    }

    /// # Panics
    /// If the result does not fit in `u64` nanoseconds (about 584 years).
    pub const fn from_micros(micros: u64) -> Duration {
        match micros.checked_mul(NANOS_PER_MICRO) {
            Some(nanos) => Duration { nanos },
            None => panic!("Duration::from_micros overflowed"),
        }
    }

    /// # Panics
    /// If the result does not fit in `u64` nanoseconds (about 584 years).
    pub const fn from_millis(millis: u64) -> Duration {
        match millis.checked_mul(NANOS_PER_MILLI) {
            Some(nanos) => Duration { nanos },
            None => panic!("Duration::from_millis overflowed"),
        }
    }

    /// Rounds to the nearest nanosecond.
    ///
    /// # Panics
    /// If `secs` is negative, not finite, or too large for `u64` nanoseconds.
    #[track_caller]
    pub fn from_secs_f64(secs: f64) -> Duration {
        let nanos = (secs * NANOS_PER_SEC as f64).round();
        assert!(
            (0.0..u64::MAX as f64).contains(&nanos),
            "Duration::from_secs_f64({secs}): must be finite, non-negative and under 584 years"
        );
        Duration {
            nanos: nanos as u64,
        }
    }

    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Whole microseconds, rounded down.
    pub const fn as_micros(self) -> u64 {
        self.nanos / NANOS_PER_MICRO
    }

    pub fn as_secs_f64(self) -> f64 {
        self.nanos as f64 / NANOS_PER_SEC as f64
    }

    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanos)
    }

    pub const fn checked_sub(self, other: Duration) -> Option<Duration> {
        match self.nanos.checked_sub(other.nanos) {
            Some(nanos) => Some(Duration { nanos }),
            None => None,
        }
    }

    pub const fn saturating_sub(self, other: Duration) -> Duration {
        Duration {
            nanos: self.nanos.saturating_sub(other.nanos),
        }
    }
}

/// Panics on overflow (about 584 years), in release builds too.
impl Add for Duration {
    type Output = Duration;
    fn add(self, other: Duration) -> Duration {
        let nanos = self.nanos.checked_add(other.nanos);
        Duration {
            nanos: nanos.expect("Duration addition overflowed"),
        }
    }
}

/// Panics if `other` is longer than `self`, in release builds too; see
/// [`Duration::saturating_sub`] and [`Duration::checked_sub`].
impl Sub for Duration {
    type Output = Duration;
    fn sub(self, other: Duration) -> Duration {
        self.checked_sub(other)
            .expect("Duration subtraction went below zero")
    }
}

impl AddAssign for Duration {
    fn add_assign(&mut self, other: Duration) {
        *self = *self + other;
    }
}

impl SubAssign for Duration {
    fn sub_assign(&mut self, other: Duration) {
        *self = *self - other;
    }
}

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Duration, UnitError> {
        let invalid = || UnitError::Duration {
            found: text.to_string(),
        };
        let s = text.trim();
        if s == "0" {
            return Ok(Duration::ZERO);
        }
        if s.is_empty() {
            return Err(invalid());
        }
        let is_number_char = |c: char| c.is_ascii_digit() || c == '.';
        let mut rest = s;
        let mut total: u64 = 0;
        let mut previous_unit = u64::MAX;
        while !rest.is_empty() {
            // Each part is a number followed by a unit; a number without a unit is an error.
            let number_end = rest.find(|c| !is_number_char(c)).ok_or_else(invalid)?;
            let (number, after_number) = rest.split_at(number_end);
            let unit_end = after_number
                .find(is_number_char)
                .unwrap_or(after_number.len());
            let (unit, after_unit) = after_number.split_at(unit_end);
            let unit_nanos = match unit {
                "µs" => NANOS_PER_MICRO,
                _ => DURATION_UNITS
                    .iter()
                    .find(|(name, _)| *name == unit)
                    .map(|&(_, nanos)| nanos)
                    .ok_or_else(invalid)?,
            };
            // Largest unit first, each unit at most once: "30m1h" and "1h1h" are typos.
            if unit_nanos >= previous_unit {
                return Err(invalid());
            }
            previous_unit = unit_nanos;
            let (nanos, _exact) = Decimal::parse(number)
                .ok_or_else(invalid)?
                .times(unit_nanos)
                .ok_or_else(|| out_of_range("duration", text))?;
            total = total
                .checked_add(nanos)
                .ok_or_else(|| out_of_range("duration", text))?;
            rest = after_unit;
        }
        Ok(Duration { nanos: total })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FIVE_MINUTES: u64 = 5 * NANOS_PER_MINUTE;
        let nanos = self.nanos;
        if nanos == 0 {
            f.write_str("0")
        } else if nanos < FIVE_MINUTES {
            let (name, size) = [
                ("s", NANOS_PER_SEC),
                ("ms", NANOS_PER_MILLI),
                ("us", NANOS_PER_MICRO),
                ("ns", 1),
            ]
            .into_iter()
            .find(|&(_, size)| size <= nanos)
            .expect("a duration above zero is at least one nanosecond");
            write_with_decimals(f, nanos, size, name)
        } else if nanos < NANOS_PER_HOUR && nanos % NANOS_PER_MINUTE == 0 {
            write!(f, "{}m", nanos / NANOS_PER_MINUTE)
        } else if nanos < NANOS_PER_HOUR {
            write_with_decimals(f, nanos, NANOS_PER_SEC, "s")
        } else {
            let mut rest = nanos;
            for (name, size) in [
                ("d", NANOS_PER_DAY),
                ("h", NANOS_PER_HOUR),
                ("m", NANOS_PER_MINUTE),
            ] {
                if rest >= size {
                    write!(f, "{}{name}", rest / size)?;
                    rest %= size;
                }
            }
            if rest > 0 {
                write_with_decimals(f, rest, NANOS_PER_SEC, "s")?;
            }
            Ok(())
        }
    }
}

/// Writes `nanos` in units of `unit_nanos` (a power of ten), with exactly the decimals
/// needed: `1.5s`, `250ms`.
fn write_with_decimals(
    f: &mut fmt::Formatter<'_>,
    nanos: u64,
    unit_nanos: u64,
    name: &str,
) -> fmt::Result {
    let (whole, rest) = (nanos / unit_nanos, nanos % unit_nanos);
    if rest == 0 {
        return write!(f, "{whole}{name}");
    }
    let width = unit_nanos.ilog10() as usize;
    let fraction = format!("{rest:0width$}");
    write!(f, "{whole}.{}{name}", fraction.trim_end_matches('0'))
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// From the text form, or from the integer `0` (the only duration that needs no unit).
impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(TextVisitor::new(
            r#"a duration such as "250ms", "90s" or "2h""#,
            true,
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Rate
// ---------------------------------------------------------------------------------------

/// The time unit a [`Rate`] is written per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    Second,
    Minute,
    Hour,
    Day,
}

impl TimeUnit {
    const ALL: [TimeUnit; 4] = [
        TimeUnit::Second,
        TimeUnit::Minute,
        TimeUnit::Hour,
        TimeUnit::Day,
    ];

    /// The length of the unit in seconds.
    pub const fn as_secs_f64(self) -> f64 {
        match self {
            TimeUnit::Second => 1.0,
            TimeUnit::Minute => 60.0,
            TimeUnit::Hour => 3_600.0,
            TimeUnit::Day => 86_400.0,
        }
    }

    /// How the unit is written after the `/`: `s`, `min`, `h`, `d`.
    pub const fn symbol(self) -> &'static str {
        match self {
            TimeUnit::Second => "s",
            TimeUnit::Minute => "min",
            TimeUnit::Hour => "h",
            TimeUnit::Day => "d",
        }
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Events per unit of time: `"10/min"`, `"4167/s"`, `"2500/h"`, `"1.5/s"`, `"250,000/min"`.
///
/// The count and unit are kept as written so the rate prints back the same; equality
/// compares that written form, so `10/min` and `600/h` are different values with the
/// same [`per_second`](Rate::per_second). The count is never negative; zero is allowed
/// here and rejected or accepted by the validation that knows what the rate is for.
/// Units are `/s`, `/min`, `/h` and `/d`.
///
/// Canonical form: the count as the shortest decimal that reads back as the same `f64`
/// (no thousands separators), then `/` and the unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    count: f64,
    unit: TimeUnit,
}

impl Rate {
    /// `count` events per `unit`.
    ///
    /// # Panics
    /// If `count` is negative or not finite.
    #[track_caller]
    pub fn new(count: f64, unit: TimeUnit) -> Rate {
        assert!(
            count.is_finite() && count >= 0.0,
            "Rate::new({count}, {unit}): the count must be finite and non-negative"
        );
        Rate {
            count: count + 0.0, // turns -0.0 into 0.0
            unit,
        }
    }

    /// `per_second` events per second, written `/s`.
    ///
    /// # Panics
    /// If `per_second` is negative or not finite.
    #[track_caller]
    pub fn from_per_second(per_second: f64) -> Rate {
        Rate::new(per_second, TimeUnit::Second)
    }

    /// The count as written, per [`unit`](Rate::unit).
    pub const fn count(self) -> f64 {
        self.count
    }

    pub const fn unit(self) -> TimeUnit {
        self.unit
    }

    pub fn per_second(self) -> f64 {
        self.count / self.unit.as_secs_f64()
    }

    pub fn per_minute(self) -> f64 {
        self.count * (60.0 / self.unit.as_secs_f64())
    }
}

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Rate, UnitError> {
        let invalid = || UnitError::Rate {
            found: text.to_string(),
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(invalid)?;
        let unit = TimeUnit::ALL
            .into_iter()
            .find(|u| u.symbol() == unit)
            .ok_or_else(invalid)?;
        if let Some(magnitude) = count.strip_prefix('-') {
            return Err(match parse_grouped_decimal(magnitude) {
                Some(_) => UnitError::NegativeRate {
                    found: text.to_string(),
                },
                None => invalid(),
            });
        }
        let count = parse_grouped_decimal(count).ok_or_else(invalid)?;
        let count = finite(count).ok_or_else(|| out_of_range("rate", text))?;
        Ok(Rate::new(count, unit))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.unit)
    }
}

// ---------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------

/// An amount in US dollars: `"$3"`, `"$0.04048"`, `"$1,800"`, `"$0.000001"`.
///
/// Held as an `f64` number of dollars: prices per token are tiny and totals large, and
/// cost estimates need neither cents rounding nor exact decimal arithmetic. Input may use
/// thousands separators. An amount may be negative (a saving, or a product with a
/// negative factor) and is written `-$3`.
///
/// Canonical form: `$`, then the shortest decimal that reads back as the same `f64`,
/// without thousands separators: `$3`, `$0.04048`, `$1800`.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Money {
    dollars: f64,
}

impl Money {
    pub const ZERO: Money = Money { dollars: 0.0 };

    /// # Panics
    /// If `dollars` is not finite.
    #[track_caller]
    pub fn from_dollars(dollars: f64) -> Money {
        assert!(
            dollars.is_finite(),
            "Money::from_dollars({dollars}): must be finite"
        );
        Money {
            dollars: dollars + 0.0, // turns -0.0 into 0.0
        }
    }

    pub const fn dollars(self) -> f64 {
        self.dollars
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        Money::from_dollars(self.dollars + other.dollars)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        *self = *self + other;
    }
}

impl Mul<f64> for Money {
    type Output = Money;
    fn mul(self, factor: f64) -> Money {
        Money::from_dollars(self.dollars * factor)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

impl FromStr for Money {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Money, UnitError> {
        let invalid = || UnitError::Money {
            found: text.to_string(),
        };
        let s = text.trim();
        let (sign, s) = match s.strip_prefix('-') {
            Some(rest) => (-1.0, rest),
            None => (1.0, s),
        };
        let amount = s.strip_prefix('$').ok_or_else(invalid)?;
        let dollars = parse_grouped_decimal(amount).ok_or_else(invalid)?;
        let dollars = finite(dollars).ok_or_else(|| out_of_range("amount of money", text))?;
        Ok(Money::from_dollars(sign * dollars))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dollars < 0.0 {
            write!(f, "-${}", -self.dollars)
        } else {
            write!(f, "${}", self.dollars)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Percent
// ---------------------------------------------------------------------------------------

/// A share between 0% and 100%: `"60%"`, `"0.1%"`, `"85%"`, held as a fraction (0.6).
///
/// Above 100% is rejected: profiles use percentages for shares of traffic, hit rates and
/// utilisation targets, none of which can exceed the whole; growth is written as a rate
/// or a factor instead.
///
/// Canonical form: the shortest decimal that reads back as the same fraction, with the
/// decimal point moved two places, then `%`. The point is moved in the text rather than
/// multiplying by 100, so `0.1%` is exactly the `f64` nearest 0.001 and every fraction
/// prints back to itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Percent {
    fraction: f64,
}

impl Percent {
    pub const ZERO: Percent = Percent { fraction: 0.0 };
    pub const HUNDRED: Percent = Percent { fraction: 1.0 };

    /// `fraction` of the whole: 0.6 is 60%.
    ///
    /// # Panics
    /// If `fraction` is not between 0 and 1 (NaN included).
    #[track_caller]
    pub fn from_fraction(fraction: f64) -> Percent {
        assert!(
            (0.0..=1.0).contains(&fraction),
            "Percent::from_fraction({fraction}): must be between 0 and 1"
        );
        Percent {
            fraction: fraction + 0.0, // turns -0.0 into 0.0
        }
    }

    pub const fn fraction(self) -> f64 {
        self.fraction
    }

    /// Parses the number of a percentage without its `%` (`"99.9"`), as in the `p99.9`
    /// labels of empirical distributions; errors quote `found`.
    pub(crate) fn parse_number(number: &str, found: &str) -> Result<Percent, UnitError> {
        let decimal = Decimal::parse(number).ok_or_else(|| UnitError::Percent {
            found: found.to_string(),
        })?;
        let fraction: f64 = shift_point(decimal, -2)
            .parse()
            .expect("a plain decimal always parses as f64");
        // A long enough number rounds to infinity, which is above 100% too.
        if fraction > 1.0 {
            return Err(UnitError::PercentAbove100 {
                found: found.to_string(),
            });
        }
        Ok(Percent::from_fraction(fraction))
    }

    /// Writes the number of the percentage without its `%`: `60`, `99.9`.
    pub(crate) fn write_number(self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shortest = self.fraction.to_string();
        let decimal = Decimal::parse(&shortest).expect("f64 Display prints a plain decimal");
        f.write_str(&shift_point(decimal, 2))
    }
}

impl FromStr for Percent {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Percent, UnitError> {
        match text.trim().strip_suffix('%') {
            Some(number) => Percent::parse_number(number, text),
            None => Err(UnitError::Percent {
                found: text.to_string(),
            }),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_number(f)?;
        f.write_str("%")
    }
}

// ---------------------------------------------------------------------------------------
// ByteSize
// ---------------------------------------------------------------------------------------

/// A size in bytes: `"128KB"`, `"32KB"`, `"400KB"`, `"1MB"`, `"512B"`, `"1.5MB"`.
///
/// `KB`, `MB`, `GB` and `TB` are powers of 1024, as the AWS documentation uses them for
/// API Gateway's 128 KB message and 32 KB frame limits. Decimals are allowed when they
/// come to a whole number of bytes.
///
/// Canonical form: the largest unit in which the size is a whole number: `128KB`,
/// `1MB`, `1536B`, `0B`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize {
    bytes: u64,
}

/// Size units from largest to smallest, as printed.
const BYTE_UNITS: [(&str, u64); 5] = [
    ("TB", 1 << 40),
    ("GB", 1 << 30),
    ("MB", 1 << 20),
    ("KB", 1 << 10),
    ("B", 1),
];

impl ByteSize {
    pub const fn from_bytes(bytes: u64) -> ByteSize {
        ByteSize { bytes }
    }

    pub const fn bytes(self) -> u64 {
        self.bytes
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<ByteSize, UnitError> {
        let invalid = || UnitError::ByteSize {
            found: text.to_string(),
        };
        let s = text.trim();
        let unit_start = s
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(invalid)?;
        let (number, unit) = s.split_at(unit_start);
        let (_, unit_bytes) = BYTE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(invalid)?;
        let (bytes, exact) = Decimal::parse(number)
            .ok_or_else(invalid)?
            .times(*unit_bytes)
            .ok_or_else(|| out_of_range("size", text))?;
        if !exact {
            return Err(UnitError::PartialByte {
                found: text.to_string(),
            });
        }
        Ok(ByteSize { bytes })
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bytes == 0 {
            return f.write_str("0B");
        }
        let (name, size) = BYTE_UNITS
            .iter()
            .find(|&&(_, size)| self.bytes % size == 0)
            .expect("every size is a whole number of bytes");
        write!(f, "{}{name}", self.bytes / size)
    }
}

// ---------------------------------------------------------------------------------------
// Serde through the text form
// ---------------------------------------------------------------------------------------

macro_rules! serde_as_text {
    ($($ty:ty => $expecting:literal),* $(,)?) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                deserializer.deserialize_str(TextVisitor::new($expecting, false))
            }
        }
    )*};
}

serde_as_text! {
    Rate => r#"a rate such as "10/min", "4167/s" or "2500/h""#,
    Money => r#"an amount in US dollars such as "$3" or "$0.04048""#,
    Percent => r#"a percentage such as "60%" or "0.1%""#,
    ByteSize => r#"a size such as "32KB" or "1MB""#,
}

/// Deserializes a value from its text; with `zero_integer`, also from the integer 0.
struct TextVisitor<T> {
    expecting: &'static str,
    zero_integer: bool,
    value: PhantomData<T>,
}

impl<T> TextVisitor<T> {
    fn new(expecting: &'static str, zero_integer: bool) -> Self {
        TextVisitor {
            expecting,
            zero_integer,
            value: PhantomData,
        }
    }
}

impl<T: FromStr<Err = UnitError>> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        if self.zero_integer && n == 0 {
            self.visit_str("0")
        } else {
            Err(E::invalid_type(Unexpected::Unsigned(n), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::invalid_type(Unexpected::Signed(n), &self)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Plain decimals
// ---------------------------------------------------------------------------------------

/// A non-negative decimal as written: digits, optionally a point and more digits
/// (`250`, `1.5`; not `.5`, `5.`, `+5`, `1e3`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decimal<'a> {
    text: &'a str,
    whole: &'a str,
    fraction: &'a str,
}

impl<'a> Decimal<'a> {
    pub(crate) fn parse(text: &'a str) -> Option<Decimal<'a>> {
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) if all_digits(fraction) => (whole, fraction),
            Some(_) => return None,
            None => (text, ""),
        };
        all_digits(whole).then_some(Decimal {
            text,
            whole,
            fraction,
        })
    }

    /// The nearest `f64` (infinite if the number is beyond `f64::MAX`).
    pub(crate) fn to_f64(self) -> f64 {
        self.text
            .parse()
            .expect("a plain decimal always parses as f64")
    }

    /// The number times `unit`, rounded to the nearest integer, and whether that was
    /// exact. `None` if the result does not fit in `u64`.
    fn times(self, unit: u64) -> Option<(u64, bool)> {
        let whole: u64 = self.whole.parse().ok()?;
        let whole = whole.checked_mul(unit)?;
        // 20 fractional digits are more than enough for any unit here (at most 2^40);
        // digits beyond them can only make the result inexact.
        let (kept, dropped) = self.fraction.split_at(self.fraction.len().min(20));
        let numerator = kept.parse::<u128>().unwrap_or(0) * u128::from(unit);
        let denominator = 10u128.pow(kept.len() as u32);
        let quotient = numerator / denominator;
        let remainder = numerator % denominator;
        let rounded = quotient + u128::from(2 * remainder >= denominator);
        let exact = remainder == 0 && dropped.bytes().all(|b| b == b'0');
        let total = whole.checked_add(u64::try_from(rounded).ok()?)?;
        Some((total, exact))
    }
}

/// A decimal whose whole part may use thousands separators (`1,800`, `250,000`).
fn parse_grouped_decimal(text: &str) -> Option<f64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or_default();
    let grouped = whole.contains(',');
    let groups_ok =
        (!grouped || (1..=3).contains(&first.len())) && groups.all(|group| group.len() == 3);
    if !groups_ok {
        return None;
    }
    let plain = match fraction {
        Some(fraction) => format!("{}.{fraction}", whole.replace(',', "")),
        None => whole.replace(',', ""),
    };
    Decimal::parse(&plain).map(Decimal::to_f64)
}

/// Moves the decimal point of `decimal` by `places` (right when positive) and returns
/// the number without leading or trailing zeros: `0.6` moved 2 places is `60`.
fn shift_point(decimal: Decimal<'_>, places: isize) -> String {
    let digits = format!("{}{}", decimal.whole, decimal.fraction);
    let point = decimal.whole.len() as isize + places;
    // Pad with zeros so the point falls within (or at an end of) the digits.
    let left_pad = (-point).max(0) as usize;
    let right_pad = (point - digits.len() as isize).max(0) as usize;
    let padded = format!("{}{digits}{}", "0".repeat(left_pad), "0".repeat(right_pad));
    let (whole, fraction) = padded.split_at((point + left_pad as isize) as usize);
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn out_of_range(what: &'static str, found: &str) -> UnitError {
    UnitError::OutOfRange {
        what,
        found: found.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Parses `text`, checks it prints as `canonical`, and that the canonical form parses
    /// back to the same value.
    fn check<T>(text: &str, canonical: &str)
    where
        T: FromStr<Err = UnitError> + fmt::Display + PartialEq + fmt::Debug,
    {
        let value: T = text
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
        assert_eq!(value.to_string(), canonical, "printing {text:?}");
        assert_eq!(canonical.parse::<T>(), Ok(value), "reparsing {canonical:?}");
    }

    fn round_trips<T>(value: T)
    where
        T: FromStr<Err = UnitError> + fmt::Display + PartialEq + fmt::Debug,
    {
        let text = value.to_string();
        assert_eq!(text.parse::<T>(), Ok(value), "round trip through {text:?}");
    }

    #[test]
    fn durations_print_as_written() {
        for text in [
            "0",
            "90s",
            "120s",
            "2h",
            "1h30m",
            "250ms",
            "1.5s",
            "1.5ms",
            "10m",
            "5m",
            "1d",
            "2d3h",
            "1h5s",
            "45us",
            "7ns",
            "1h30m15s",
            "59m",
            "3599s",
            "330.5s",
            "1h0.5s",
            "299.999999999s",
            "1d1h1m1.001001001s",
        ] {
            check::<Duration>(text, text);
        }
    }

    #[test]
    fn durations_canonical_forms() {
        let cases = [
            ("1500ms", "1.5s"),
            ("1m30s", "90s"),
            ("2m", "120s"),
            ("300s", "5m"),
            ("90m", "1h30m"),
            ("60m", "1h"),
            ("24h", "1d"),
            ("36h", "1d12h"),
            ("0.5ms", "500us"),
            ("1500us", "1.5ms"),
            ("3600s", "1h"),
            ("1.5h", "1h30m"),
            ("0s", "0"),
            ("1.000s", "1s"),
            ("0.0000000004s", "0"),
            ("0.0000000005s", "1ns"),
            ("2µs", "2us"),
            (" 90s ", "90s"),
        ];
        for (text, canonical) in cases {
            check::<Duration>(text, canonical);
        }
        assert_eq!("1.5s".parse(), Ok(Duration::from_millis(1500)));
        assert_eq!("1h30m".parse(), Ok(Duration::from_secs_f64(5400.0)));
    }

    #[test]
    fn duration_errors() {
        for text in [
            "", "25k", "90", "1h30", "s", "1.s", ".5s", "-1s", "1e3s", "30m1h", "1h1h", "1 h",
            "1H", "inf", "1.5.2s",
        ] {
            let expected = UnitError::Duration {
                found: text.to_string(),
            };
            assert_eq!(text.parse::<Duration>(), Err(expected), "{text:?}");
        }
        assert_eq!(
            "25k".parse::<Duration>().unwrap_err().to_string(),
            r#"expected a duration such as "250ms", "90s" or "2h", found "25k""#
        );
        for text in ["213504d", "99999999999999999999ns", "213503d23h59m"] {
            let expected = UnitError::OutOfRange {
                what: "duration",
                found: text.to_string(),
            };
            assert_eq!(text.parse::<Duration>(), Err(expected), "{text:?}");
        }
        round_trips(Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn duration_arithmetic_and_conversions() {
        let a = Duration::from_millis(1500);
        let b = Duration::from_micros(500_000);
        assert_eq!(a + b, Duration::from_secs_f64(2.0));
        assert_eq!(a - b, Duration::from_nanos(1_000_000_000));
        assert!(b < a);
        assert_eq!(a.as_nanos(), 1_500_000_000);
        assert_eq!(a.as_micros(), 1_500_000);
        assert_eq!(a.as_secs_f64(), 1.5);
        assert_eq!(a.to_std(), std::time::Duration::from_millis(1500));
        assert_eq!(b.checked_sub(a), None);
        assert_eq!(b.saturating_sub(a), Duration::ZERO);
        let mut c = a;
        c += b;
        c -= a;
        assert_eq!(c, b);
        assert_eq!(Duration::from_secs_f64(1e-9 * 0.4), Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "below zero")]
    fn duration_subtraction_below_zero_panics() {
        let _ = Duration::ZERO - Duration::from_nanos(1);
    }

    #[test]
    #[should_panic(expected = "non-negative")]
    fn duration_from_negative_seconds_panics() {
        let _ = Duration::from_secs_f64(-1.0);
    }

    #[test]
    fn durations_round_trip_for_many_values() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..20_000 {
            // Spread over every magnitude, and over whole units as people write them.
            let nanos = match rng.random_range(0..3) {
                0 => rng.random::<u64>() >> rng.random_range(0..64),
                1 => {
                    let (_, unit) = DURATION_UNITS[rng.random_range(0..DURATION_UNITS.len())];
                    rng.random_range(0..10_000) * unit + rng.random_range(0..3)
                }
                _ => rng.random_range(0..3) * NANOS_PER_HOUR + rng.random_range(0..NANOS_PER_HOUR),
            };
            round_trips(Duration::from_nanos(nanos));
        }
    }

    #[test]
    fn rates_print_as_written() {
        for text in [
            "10/min",
            "4167/s",
            "2500/h",
            "1.5/s",
            "250000/min",
            "30/min",
            "0/s",
            "3/d",
        ] {
            check::<Rate>(text, text);
        }
        check::<Rate>("250,000/min", "250000/min");
        check::<Rate>("10.50/min", "10.5/min");
        check::<Rate>("007/s", "7/s");
    }

    #[test]
    fn rate_values() {
        let r: Rate = "10/min".parse().unwrap();
        assert_eq!(r.count(), 10.0);
        assert_eq!(r.unit(), TimeUnit::Minute);
        assert_eq!(r.per_minute(), 10.0);
        assert!((r.per_second() - 10.0 / 60.0).abs() < 1e-15);
        let r: Rate = "2500/h".parse().unwrap();
        assert!((r.per_second() - 2500.0 / 3600.0).abs() < 1e-12);
        assert_eq!(Rate::from_per_second(4167.0), "4167/s".parse().unwrap());
        assert_eq!(Rate::new(10.0, TimeUnit::Minute), "10/min".parse().unwrap());
        // Same speed, written differently: not equal.
        assert_ne!("10/min".parse::<Rate>(), "600/h".parse::<Rate>());
        assert_eq!(
            "10/min".parse::<Rate>().unwrap().per_second(),
            "600/h".parse::<Rate>().unwrap().per_second()
        );
    }

    #[test]
    fn rate_errors() {
        for text in [
            "", "10", "10/", "/s", "10/m", "10/sec", "10 /s", "ten/s", "1e3/s", "10/S", "1,00/s",
            "10//s", "+1/s", "inf/s",
        ] {
            let expected = UnitError::Rate {
                found: text.to_string(),
            };
            assert_eq!(text.parse::<Rate>(), Err(expected), "{text:?}");
        }
        assert_eq!(
            "-5/s".parse::<Rate>(),
            Err(UnitError::NegativeRate {
                found: "-5/s".to_string()
            })
        );
        assert_eq!(
            "-5/s".parse::<Rate>().unwrap_err().to_string(),
            r#"a rate cannot be negative, found "-5/s""#
        );
        let huge = format!("{}/s", "9".repeat(400));
        assert!(matches!(
            huge.parse::<Rate>(),
            Err(UnitError::OutOfRange { what: "rate", .. })
        ));
    }

    #[test]
    fn rates_round_trip_for_many_values() {
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..20_000 {
            let count = match rng.random_range(0..3) {
                0 => f64::from(rng.random_range(0..1_000_000u32)),
                1 => rng.random::<f64>() * 10f64.powi(rng.random_range(-12..15)),
                _ => f64::from_bits(rng.random::<u64>() >> 1),
            };
            if !count.is_finite() {
                continue;
            }
            let unit = TimeUnit::ALL[rng.random_range(0..TimeUnit::ALL.len())];
            round_trips(Rate::new(count, unit));
        }
    }

    #[test]
    fn money_prints_as_written() {
        for text in ["$3", "$0.04048", "$0.000001", "$1800", "$0", "-$3", "$0.5"] {
            check::<Money>(text, text);
        }
        check::<Money>("$1,800", "$1800");
        check::<Money>("$25,000,000.50", "$25000000.5");
        check::<Money>("-$0", "$0");
        check::<Money>("$3.00", "$3");
    }

    #[test]
    fn money_arithmetic() {
        let a: Money = "$0.04048".parse().unwrap();
        let b: Money = "$3".parse().unwrap();
        assert_eq!((a + b).dollars(), 0.04048 + 3.0);
        assert_eq!((b * 2.0).dollars(), 6.0);
        let total: Money = [a, b, b].into_iter().sum();
        assert_eq!(total.dollars(), 0.04048 + 3.0 + 3.0);
        let total: Money = [b, b].iter().sum();
        assert_eq!(total, Money::from_dollars(6.0));
        let mut c = Money::ZERO;
        c += b;
        assert_eq!(c, b);
        assert_eq!((b * -1.0).to_string(), "-$3");
    }

    #[test]
    fn money_errors() {
        for text in [
            "", "3", "3$", "$", "$-3", "$1,80", "$1,8000", "$,800", "$1,800,", "$ 3", "$1e3",
            "USD 3", "$1.", "--$3", "$nan",
        ] {
            let expected = UnitError::Money {
                found: text.to_string(),
            };
            assert_eq!(text.parse::<Money>(), Err(expected), "{text:?}");
        }
        let huge = format!("${}", "9".repeat(400));
        assert!(matches!(
            huge.parse::<Money>(),
            Err(UnitError::OutOfRange { .. })
        ));
    }

    #[test]
    fn money_round_trips_for_many_values() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20_000 {
            let dollars = match rng.random_range(0..3) {
                0 => f64::from(rng.random_range(0..100_000u32)) / 100.0,
                1 => rng.random::<f64>() * 10f64.powi(rng.random_range(-9..12)),
                _ => f64::from_bits(rng.random::<u64>()),
            };
            if dollars.is_finite() {
                round_trips(Money::from_dollars(dollars));
            }
        }
    }

    #[test]
    fn percents_print_as_written() {
        for text in [
            "60%", "0.1%", "85%", "0%", "100%", "99.9%", "0.001%", "12.5%",
        ] {
            check::<Percent>(text, text);
        }
        check::<Percent>("60.0%", "60%");
        check::<Percent>("007%", "7%");
        assert_eq!("60%".parse::<Percent>().unwrap().fraction(), 0.6);
        assert_eq!("0.1%".parse::<Percent>().unwrap().fraction(), 0.001);
        assert_eq!("100%".parse::<Percent>().unwrap(), Percent::HUNDRED);
        assert_eq!(Percent::from_fraction(0.85).to_string(), "85%");
    }

    #[test]
    fn percent_errors() {
        for text in [
            "", "60", "%", "-5%", "60 %", "1e2%", ".5%", "sixty%", "60%%",
        ] {
            let expected = UnitError::Percent {
                found: text.to_string(),
            };
            assert_eq!(text.parse::<Percent>(), Err(expected), "{text:?}");
        }
        for text in ["100.1%", "150%", "1000000%"] {
            let expected = UnitError::PercentAbove100 {
                found: text.to_string(),
            };
            assert_eq!(text.parse::<Percent>(), Err(expected), "{text:?}");
        }
        assert_eq!(
            "150%".parse::<Percent>().unwrap_err().to_string(),
            r#"a percentage cannot exceed 100%, found "150%""#
        );
    }

    #[test]
    #[should_panic(expected = "between 0 and 1")]
    fn percent_from_fraction_above_one_panics() {
        let _ = Percent::from_fraction(1.5);
    }

    #[test]
    fn percents_round_trip_for_many_values() {
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..20_000 {
            let fraction = match rng.random_range(0..3) {
                0 => f64::from(rng.random_range(0..=1000u32)) / 1000.0,
                1 => rng.random::<f64>(),
                _ => rng.random::<f64>() * 10f64.powi(-rng.random_range(0..300)),
            };
            round_trips(Percent::from_fraction(fraction));
        }
        round_trips(Percent::from_fraction(f64::MIN_POSITIVE));
        round_trips(Percent::from_fraction(1.0 - f64::EPSILON / 2.0));
    }

    #[test]
    fn sizes_print_as_written() {
        for text in [
            "128KB", "32KB", "400KB", "1MB", "512B", "0B", "3GB", "2TB", "1536B",
        ] {
            check::<ByteSize>(text, text);
        }
        check::<ByteSize>("1024KB", "1MB");
        check::<ByteSize>("1.5KB", "1536B");
        check::<ByteSize>("0.5MB", "512KB");
        assert_eq!("128KB".parse::<ByteSize>().unwrap().bytes(), 131_072);
        assert_eq!("1MB".parse::<ByteSize>().unwrap().bytes(), 1 << 20);
    }

    #[test]
    fn size_errors() {
        for text in [
            "", "128", "KB", "128kb", "128 KB", "128KiB", "-1KB", "1e3B", "12XB",
        ] {
            let expected = UnitError::ByteSize {
                found: text.to_string(),
            };
            assert_eq!(text.parse::<ByteSize>(), Err(expected), "{text:?}");
        }
        assert_eq!(
            "0.1KB".parse::<ByteSize>(),
            Err(UnitError::PartialByte {
                found: "0.1KB".to_string()
            })
        );
        assert!(matches!(
            "17179869184TB".parse::<ByteSize>(),
            Err(UnitError::OutOfRange { what: "size", .. })
        ));
    }

    #[test]
    fn sizes_round_trip_for_many_values() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..20_000 {
            let bytes = match rng.random_range(0..2) {
                0 => rng.random::<u64>() >> rng.random_range(0..64),
                _ => rng.random_range(0..4096) << (10 * rng.random_range(0..5)),
            };
            round_trips(ByteSize::from_bytes(bytes));
        }
    }

    #[test]
    fn shifting_the_decimal_point() {
        let shift = |text: &str, places| shift_point(Decimal::parse(text).unwrap(), places);
        assert_eq!(shift("0.6", 2), "60");
        assert_eq!(shift("0.001", 2), "0.1");
        assert_eq!(shift("1", 2), "100");
        assert_eq!(shift("60", -2), "0.6");
        assert_eq!(shift("0.1", -2), "0.001");
        assert_eq!(shift("12.5", -2), "0.125");
        assert_eq!(shift("0", -2), "0");
        assert_eq!(shift("100", -2), "1");
    }

    #[test]
    fn serde_uses_the_text_form() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Units {
            duration: Duration,
            rate: Rate,
            money: Money,
            percent: Percent,
            size: ByteSize,
        }
        let json = r#"{"duration":"1h30m","rate":"4167/s","money":"$0.04048","percent":"60%","size":"128KB"}"#;
        let units: Units = serde_json::from_str(json).unwrap();
        assert_eq!(units.duration, Duration::from_secs_f64(5400.0));
        assert_eq!(units.percent.fraction(), 0.6);
        assert_eq!(serde_json::to_string(&units).unwrap(), json);

        let zero: Duration = serde_json::from_str("0").unwrap();
        assert_eq!(zero, Duration::ZERO);
        let err = serde_json::from_str::<Duration>("90")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"expected a duration such as "250ms""#),
            "{err}"
        );
        let err = serde_json::from_str::<Duration>(r#""25k""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"found "25k""#), "{err}");
        assert!(serde_json::from_str::<Rate>("10").is_err());
        assert!(serde_json::from_str::<Percent>("0.6").is_err());

        #[derive(Deserialize)]
        struct Limits {
            idle: Duration,
            frame: ByteSize,
        }
        let limits: Limits = toml::from_str("idle = \"10m\"\nframe = \"32KB\"").unwrap();
        assert_eq!(limits.idle, Duration::from_secs_f64(600.0));
        assert_eq!(limits.frame.bytes(), 32 * 1024);
        let limits: Limits = toml::from_str("idle = 0\nframe = \"32KB\"").unwrap();
        assert_eq!(limits.idle, Duration::ZERO);
    }
}
