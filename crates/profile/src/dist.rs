//! Distributions of latencies, sizes and counts, written as text in profiles.
//!
//! A profile says how long a stage takes, or how many tokens an answer has, in a form a
//! person can read and check against a dashboard:
//!
//! | form | example |
//! |---|---|
//! | constant | `20ms`, `300` |
//! | exponential | `exp(mean=20ms)` |
//! | log-normal | `lognormal(p50=1.5s, p99=4s)` |
//! | uniform | `uniform(60s, 120s)` |
//! | normal, truncated at zero | `normal(mean=100ms, sd=20ms)` |
//! | quantile table | `empirical(p0=5ms, p50=10ms, p90=20ms, p100=100ms)` |
//!
//! One [`Dist`] type serves durations and plain numbers through the [`Quantity`] trait.
//! Parameters are checked, and turned into sampling constants, once when a distribution
//! is built, because the simulator draws tens of millions of samples per run:
//! [`Dist::sample`] neither allocates nor fails. Every distribution prints back in a
//! canonical form of what was written (arguments in the order above, `, ` between them),
//! so `d.to_string().parse() == Ok(d)`; serde goes through that text.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use rand::Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{Decimal, Duration, Percent};

/// A non-negative quantity a [`Dist`] can describe and draw.
///
/// Contract: [`parse`](Quantity::parse) accepts what `Display` prints and gives back the
/// same value, and [`to_f64`](Quantity::to_f64) is finite, non-negative and non-decreasing.
pub trait Quantity: Copy + PartialOrd + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// What one value looks like, for error messages: `a duration such as "20ms"`.
    const EXPECTED: &'static str;

    /// Parses one value as written in a profile.
    ///
    /// # Errors
    /// A message for the profile's author saying what was expected and what was found.
    fn parse(text: &str) -> Result<Self, String>;

    /// The value as a number, in the quantity's base unit (nanoseconds for durations).
    fn to_f64(self) -> f64;

    /// The value nearest `x` (in the units of [`to_f64`](Quantity::to_f64)). Never
    /// fails: below zero or NaN gives zero and beyond the largest value saturates.
    fn from_f64(x: f64) -> Self;
}

/// Durations are drawn in nanoseconds and rounded to the nearest nanosecond.
impl Quantity for Duration {
    const EXPECTED: &'static str = r#"a duration such as "20ms" or "1.5s""#;

    fn parse(text: &str) -> Result<Duration, String> {
        text.parse::<Duration>().map_err(|e| e.to_string())
    }

    fn to_f64(self) -> f64 {
        self.as_nanos() as f64
    }

    #[inline]
    fn from_f64(nanos: f64) -> Duration {
        // Through `i64`, one instruction on x86-64 where `u64` takes several (this is the
        // simulator's hot path). `as` saturates: NaN becomes 0, too large i64::MAX (292
        // years); negatives are clamped to 0.
        Duration::from_nanos(((nanos + 0.5) as i64).max(0) as u64)
    }
}

/// Plain numbers (token counts, turns): a non-negative decimal such as `300` or `1.5`.
/// Draws are not rounded; callers that need whole numbers round them.
impl Quantity for f64 {
    const EXPECTED: &'static str = r#"a number such as "300" or "1.5""#;

    fn parse(text: &str) -> Result<f64, String> {
        Decimal::parse(text.trim())
            .map(Decimal::to_f64)
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("expected {}, found {text:?}", Self::EXPECTED))
    }

    fn to_f64(self) -> f64 {
        self
    }

    #[inline]
    fn from_f64(x: f64) -> f64 {
        // Comparisons with NaN are false, so NaN becomes 0 too; -0.0 becomes 0.0.
        if x > 0.0 { x.min(f64::MAX) } else { 0.0 }
    }
}

/// Why a distribution could not be parsed or built. Each message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistError {
    #[error(
        "expected {expected} or a distribution such as \"exp(mean=…)\", \
         \"lognormal(p50=…, p99=…)\", \"uniform(min, max)\", \"normal(mean=…, sd=…)\" \
         or \"empirical(p0=…, p50=…, p100=…)\", found {found:?}"
    )]
    Syntax {
        expected: &'static str,
        found: String,
    },
    #[error(
        "unknown distribution {name:?} in {found:?}: \
         expected exp, lognormal, uniform, normal or empirical"
    )]
    UnknownForm { name: String, found: String },
    #[error("{form} is written {usage}, found {found:?}")]
    Arguments {
        form: &'static str,
        usage: &'static str,
        found: String,
    },
    #[error("{form}: {message}")]
    Value { form: &'static str, message: String },
    #[error("lognormal: p50 must be above zero, found p50={p50}")]
    LognormalZero { p50: String },
    #[error("lognormal: p99 must not be below p50, found p50={p50}, p99={p99}")]
    LognormalOrder { p50: String, p99: String },
    #[error("uniform: the maximum must not be below the minimum, found uniform({min}, {max})")]
    UniformOrder { min: String, max: String },
    #[error("empirical: {label:?} is not a percentile such as p50 or p99.9 (p0 to p100)")]
    EmpiricalLabel { label: String },
    #[error("empirical: the table must start at p0 and end at p100, found ({found})")]
    EmpiricalEnds { found: String },
    #[error(
        "empirical: percentiles must increase from left to right, found {before} before {after}"
    )]
    EmpiricalPercentileOrder { before: String, after: String },
    #[error("empirical: values must not decrease, found {before} before {after}")]
    EmpiricalValueOrder { before: String, after: String },
}

/// A distribution of a [`Quantity`]: durations (`Dist<Duration>`) or plain numbers
/// (`Dist<f64>`). See the [module documentation](self) for the forms.
///
/// Equality compares the written form: `uniform(1s, 1s)` and `1s` always draw the same
/// value but are different distributions.
#[derive(Debug, Clone, PartialEq)]
pub struct Dist<Q> {
    form: Form<Q>,
}

/// The parameters as written, next to the constants sampling needs (all in the units of
/// [`Quantity::to_f64`]). Only the constructors build these, so the two always agree.
#[derive(Debug, Clone, PartialEq)]
enum Form<Q> {
    Constant(Q),
    Exp {
        mean: Q,
        mean_f: f64,
    },
    /// `median * exp(sigma * Z)` with `Z` standard normal.
    Lognormal {
        p50: Q,
        p99: Q,
        median: f64,
        sigma: f64,
    },
    Uniform {
        min: Q,
        max: Q,
        low: f64,
        width: f64,
    },
    /// Normal(mu, sigma) conditioned on being at least zero.
    Normal {
        mean: Q,
        sd: Q,
        mu: f64,
        sigma: f64,
    },
    /// A piecewise-linear quantile function through the written points.
    Empirical {
        points: Box<[(Percent, Q)]>,
        segments: Box<[Segment]>,
        last: f64,
    },
}

/// One piece of an empirical quantile function: from probability `start` on, the
/// value is `value + (u - start) * slope`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start: f64,
    value: f64,
    slope: f64,
}

/// Φ⁻¹(0.99): a log-normal's p99 lies this many sigmas above its median.
const Z_99: f64 = 2.326_347_874_040_841;

/// A truncated normal is drawn by drawing from the normal until the draw is at least
/// zero (which keeps its shape). The mean is never negative, so at least half of all
/// draws are kept; after this many rejections in a row (probability below 2⁻⁶⁴) the
/// draw is zero, which bounds the time a draw can take.
const MAX_NORMAL_DRAWS: usize = 64;

impl<Q: Quantity> Dist<Q> {
    /// Always `value`.
    ///
    /// # Panics
    /// If `value` is not a valid quantity (for `f64`: negative, NaN or infinite).
    #[track_caller]
    pub fn constant(value: Q) -> Dist<Q> {
        match checked("constant", value) {
            Ok(value) => Dist {
                form: Form::Constant(value),
            },
            Err(e) => panic!("Dist::constant: {e}"),
        }
    }

    /// Exponential with the given mean (zero gives always zero).
    ///
    /// # Errors
    /// [`DistError::Value`] if `mean` is not a valid quantity.
    pub fn exp(mean: Q) -> Result<Dist<Q>, DistError> {
        let mean = checked("exp", mean)?;
        Ok(Dist {
            form: Form::Exp {
                mean,
                mean_f: mean.to_f64(),
            },
        })
    }

    /// Log-normal with the given median and 99th percentile. `p50` must be above zero
    /// and `p99` at least `p50` (equal gives always `p50`).
    ///
    /// # Errors
    /// [`DistError::LognormalZero`], [`DistError::LognormalOrder`], or
    /// [`DistError::Value`] for an invalid quantity.
    pub fn lognormal(p50: Q, p99: Q) -> Result<Dist<Q>, DistError> {
        let p50 = checked("lognormal", p50)?;
        let p99 = checked("lognormal", p99)?;
        if p50.to_f64() <= 0.0 {
            return Err(DistError::LognormalZero {
                p50: p50.to_string(),
            });
        }
        if p99 < p50 {
            return Err(DistError::LognormalOrder {
                p50: p50.to_string(),
                p99: p99.to_string(),
            });
        }
        let median = p50.to_f64();
        let sigma = (p99.to_f64() / median).ln() / Z_99;
        Ok(Dist {
            form: Form::Lognormal {
                p50,
                p99,
                median,
                sigma,
            },
        })
    }

    /// Uniform between `min` and `max`; `max` must not be below `min`.
    ///
    /// # Errors
    /// [`DistError::UniformOrder`], or [`DistError::Value`] for an invalid quantity.
    pub fn uniform(min: Q, max: Q) -> Result<Dist<Q>, DistError> {
        let min = checked("uniform", min)?;
        let max = checked("uniform", max)?;
        if max < min {
            return Err(DistError::UniformOrder {
                min: min.to_string(),
                max: max.to_string(),
            });
        }
        let low = min.to_f64();
        Ok(Dist {
            form: Form::Uniform {
                min,
                max,
                low,
                width: max.to_f64() - low,
            },
        })
    }

    /// Normal with the given mean and standard deviation, truncated at zero: draws
    /// below zero are drawn again, so the shape above zero is kept, and
    /// [`mean`](Dist::mean) is that of the truncated distribution. Since the mean is not
    /// negative, at least half of all draws are kept; after 64 rejections in a row
    /// (probability below 2⁻⁶⁴) a draw is zero, so a draw always ends.
    ///
    /// # Errors
    /// [`DistError::Value`] if `mean` or `sd` is not a valid quantity.
    pub fn normal(mean: Q, sd: Q) -> Result<Dist<Q>, DistError> {
        let mean = checked("normal", mean)?;
        let sd = checked("normal", sd)?;
        Ok(Dist {
            form: Form::Normal {
                mean,
                sd,
                mu: mean.to_f64(),
                sigma: sd.to_f64(),
            },
        })
    }

    /// A quantile table, interpolated linearly: `points` must start at 0% and end at
    /// 100%, with increasing percentiles and non-decreasing values.
    ///
    /// # Errors
    /// [`DistError::EmpiricalEnds`], [`DistError::EmpiricalPercentileOrder`],
    /// [`DistError::EmpiricalValueOrder`], or [`DistError::Value`] for an invalid
    /// quantity.
    pub fn empirical(points: &[(Percent, Q)]) -> Result<Dist<Q>, DistError> {
        for &(_, value) in points {
            checked("empirical", value)?;
        }
        let starts_at_p0 = points.first().is_some_and(|(p, _)| p.fraction() == 0.0);
        let ends_at_p100 = points.last().is_some_and(|(p, _)| p.fraction() == 1.0);
        if points.len() < 2 || !starts_at_p0 || !ends_at_p100 {
            return Err(DistError::EmpiricalEnds {
                found: Table(points).to_string(),
            });
        }
        for pair in points.windows(2) {
            let [(p0, v0), (p1, v1)] = [pair[0], pair[1]];
            if p1 <= p0 {
                return Err(DistError::EmpiricalPercentileOrder {
                    before: Label(p0).to_string(),
                    after: Label(p1).to_string(),
                });
            }
            if v1 < v0 {
                return Err(DistError::EmpiricalValueOrder {
                    before: format!("{}={v0}", Label(p0)),
                    after: format!("{}={v1}", Label(p1)),
                });
            }
        }
        // `checked` turned any -0.0 into 0.0; store the values as checked.
        let points: Box<[(Percent, Q)]> = points
            .iter()
            .map(|&(p, v)| (p, checked("empirical", v).expect("checked above")))
            .collect();
        let segments = points
            .windows(2)
            .map(|pair| {
                let (start, value) = (pair[0].0.fraction(), pair[0].1.to_f64());
                let (end, next) = (pair[1].0.fraction(), pair[1].1.to_f64());
                Segment {
                    start,
                    value,
                    slope: (next - value) / (end - start),
                }
            })
            .collect();
        let last = points[points.len() - 1].1.to_f64();
        Ok(Dist {
            form: Form::Empirical {
                points,
                segments,
                last,
            },
        })
    }

    /// One draw. Constant time apart from the truncated normal's rare redraws and the
    /// empirical table's binary search; never allocates. A constant (most latencies of a
    /// system model) and an exponential (queueing models' service times) are drawn
    /// inline, the rest out of line (`draw`). Always inlined: a constant then costs its
    /// caller a tag test and a load instead of a call (most of a turn's ~7 draws).
    #[inline(always)]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Q {
        match &self.form {
            Form::Constant(value) => *value,
            Form::Exp { mean_f, .. } => {
                let e: f64 = Exp1.sample(rng);
                Q::from_f64(mean_f * e)
            }
            _ => self.draw(rng),
        }
    }

    #[inline(never)]
    fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Q {
        let x = match &self.form {
            Form::Constant(_) | Form::Exp { .. } => unreachable!("drawn inline by `sample`"),
            Form::Lognormal { median, sigma, .. } => {
                let z: f64 = StandardNormal.sample(rng);
                median * (sigma * z).exp()
            }
            Form::Uniform { low, width, .. } => low + width * rng.random::<f64>(),
            Form::Normal { mu, sigma, .. } => {
                let mut draw = 0.0;
                for _ in 0..MAX_NORMAL_DRAWS {
                    let z: f64 = StandardNormal.sample(rng);
                    let x = mu + sigma * z;
                    if x >= 0.0 {
                        draw = x;
                        break;
                    }
                }
                draw
            }
            Form::Empirical { segments, .. } => interpolate(segments, rng.random::<f64>()),
        };
        Q::from_f64(x)
    }

    /// The mean, in the units of [`Quantity::to_f64`] (nanoseconds for durations), in
    /// closed form. For the truncated normal it is the mean above zero, accurate to about
    /// 1e-7 relative; for an empirical table, the mean of the interpolated distribution.
    pub fn mean(&self) -> f64 {
        match &self.form {
            Form::Constant(value) => value.to_f64(),
            Form::Exp { mean_f, .. } => *mean_f,
            Form::Lognormal { median, sigma, .. } => median * (sigma * sigma / 2.0).exp(),
            Form::Uniform { low, width, .. } => low + width / 2.0,
            Form::Normal { mu, sigma, .. } => {
                if *sigma == 0.0 {
                    return *mu;
                }
                // E[X | X >= 0] = mu + sigma * φ(α) / Φ(α), α = mu / sigma >= 0.
                let alpha = mu / sigma;
                mu + sigma * normal_pdf(alpha) / normal_cdf(alpha)
            }
            Form::Empirical { segments, last, .. } => {
                let ends = segments.iter().skip(1).map(|s| s.start).chain([1.0]);
                let values = segments.iter().skip(1).map(|s| s.value).chain([*last]);
                segments
                    .iter()
                    .zip(ends.zip(values))
                    .map(|(s, (end, next))| (end - s.start) * (s.value + next) / 2.0)
                    .sum()
            }
        }
    }

    /// The value below which a fraction `q` of draws fall, in the units of
    /// [`Quantity::to_f64`]. Exact up to floating point for every form except the
    /// truncated normal, which is accurate to about 1e-7 relative. `quantile(1.0)` is
    /// infinite for the unbounded forms (exp, lognormal, normal).
    ///
    /// # Panics
    /// If `q` is not between 0 and 1.
    #[track_caller]
    pub fn quantile(&self, q: f64) -> f64 {
        assert!(
            (0.0..=1.0).contains(&q),
            "Dist::quantile({q}): q must be between 0 and 1"
        );
        match &self.form {
            Form::Constant(value) => value.to_f64(),
            Form::Exp { mean_f, .. } => {
                if *mean_f == 0.0 {
                    0.0
                } else {
                    -mean_f * (-q).ln_1p()
                }
            }
            Form::Lognormal { median, sigma, .. } => {
                if *sigma == 0.0 {
                    *median
                } else {
                    median * (sigma * inverse_normal_cdf(q)).exp()
                }
            }
            Form::Uniform { low, width, .. } => low + width * q,
            Form::Normal { mu, sigma, .. } => {
                if *sigma == 0.0 {
                    return *mu;
                }
                if q == 0.0 {
                    return 0.0;
                }
                // Map q onto the part of the untruncated normal above zero.
                let below_zero = normal_cdf(-mu / sigma);
                let p = below_zero + q * (1.0 - below_zero);
                (mu + sigma * inverse_normal_cdf(p)).max(0.0)
            }
            Form::Empirical { segments, last, .. } => {
                if q == 1.0 {
                    *last
                } else {
                    interpolate(segments, q)
                }
            }
        }
    }

    /// Whether every draw is the same value: a constant, or a degenerate form such as
    /// `exp(mean=0)`, `uniform(1s, 1s)` or `normal(mean=5ms, sd=0)`.
    pub fn is_constant(&self) -> bool {
        match &self.form {
            Form::Constant(_) => true,
            Form::Exp { mean_f, .. } => *mean_f == 0.0,
            Form::Lognormal { sigma, .. } | Form::Normal { sigma, .. } => *sigma == 0.0,
            Form::Uniform { width, .. } => *width == 0.0,
            Form::Empirical { points, .. } => points[0].1 == points[points.len() - 1].1,
        }
    }

    /// The same form with every value multiplied by `factor` (`0.5` for "twice as
    /// fast"), rounded to the nearest quantity. A log-normal whose median rounds to zero
    /// becomes the constant zero, since a log-normal needs a median above zero.
    ///
    /// # Panics
    /// If `factor` is negative or not finite.
    #[track_caller]
    pub fn scaled(&self, factor: f64) -> Dist<Q> {
        assert!(
            factor.is_finite() && factor >= 0.0,
            "Dist::scaled({factor}): the factor must be finite and non-negative"
        );
        let scale = |value: Q| Q::from_f64(value.to_f64() * factor);
        let scaled = match &self.form {
            Form::Constant(value) => Ok(Dist::constant(scale(*value))),
            Form::Exp { mean, .. } => Dist::exp(scale(*mean)),
            Form::Lognormal { p50, p99, .. } => {
                let p50 = scale(*p50);
                if p50.to_f64() == 0.0 {
                    Ok(Dist::constant(p50))
                } else {
                    Dist::lognormal(p50, scale(*p99))
                }
            }
            Form::Uniform { min, max, .. } => Dist::uniform(scale(*min), scale(*max)),
            Form::Normal { mean, sd, .. } => Dist::normal(scale(*mean), scale(*sd)),
            Form::Empirical { points, .. } => {
                let points: Vec<_> = points.iter().map(|&(p, v)| (p, scale(v))).collect();
                Dist::empirical(&points)
            }
        };
        // Rounding is monotone, so every ordering the original satisfied still holds.
        scaled.expect("scaling by a non-negative factor keeps a distribution valid")
    }
}

impl<Q: Quantity> Dist<Q> {
    /// The same form and centre with its spread multiplied by `factor`: a log-normal
    /// keeps its median and takes `p99 = p50 · (p99/p50)^factor`, a uniform keeps its
    /// midpoint and scales its width (its minimum stops at zero), a normal scales its
    /// standard deviation. `None` for forms whose spread is fixed by their centre or not
    /// one number (constant, exponential, empirical). Calibration fits a distribution's
    /// shape with this, next to [`scaled`](Dist::scaled) for its size.
    ///
    /// # Panics
    /// If `factor` is negative or not finite.
    #[track_caller]
    pub fn spread_scaled(&self, factor: f64) -> Option<Dist<Q>> {
        assert!(
            factor.is_finite() && factor >= 0.0,
            "Dist::spread_scaled({factor}): the factor must be finite and non-negative"
        );
        let dist = match &self.form {
            Form::Lognormal {
                p50, median, sigma, ..
            } => Dist::lognormal(*p50, Q::from_f64(median * (sigma * Z_99 * factor).exp())),
            Form::Uniform { low, width, .. } => {
                let mid = low + width / 2.0;
                let half = width / 2.0 * factor;
                Dist::uniform(Q::from_f64((mid - half).max(0.0)), Q::from_f64(mid + half))
            }
            Form::Normal { mean, sd, .. } => Dist::normal(*mean, Q::from_f64(sd.to_f64() * factor)),
            Form::Constant(_) | Form::Exp { .. } | Form::Empirical { .. } => return None,
        };
        Some(dist.expect("a wider or narrower spread about the same centre stays valid"))
    }
}

/// Checks a parameter and turns a negative zero into zero (which prints as `0`).
fn checked<Q: Quantity>(form: &'static str, value: Q) -> Result<Q, DistError> {
    let x = value.to_f64();
    if !(x.is_finite() && x >= 0.0) {
        return Err(DistError::Value {
            form,
            message: format!("expected {}, found {value}", Q::EXPECTED),
        });
    }
    Ok(if x == 0.0 { Q::from_f64(0.0) } else { value })
}

/// The empirical quantile function at `u` in `[0, 1)`.
#[inline]
fn interpolate(segments: &[Segment], u: f64) -> f64 {
    // The first segment starts at 0 <= u, so at least one segment starts at or before u.
    let index = segments.partition_point(|s| s.start <= u) - 1;
    let s = &segments[index];
    s.value + (u - s.start) * s.slope
}

impl<Q: Quantity> FromStr for Dist<Q> {
    type Err = DistError;

    fn from_str(text: &str) -> Result<Dist<Q>, DistError> {
        let syntax = || DistError::Syntax {
            expected: Q::EXPECTED,
            found: text.to_string(),
        };
        let s = text.trim();
        if !s.contains('(') {
            return Q::parse(s).map(Dist::constant).map_err(|_| syntax());
        }
        let (name, args) = call(s).ok_or_else(syntax)?;
        let (form, usage): (&'static str, &'static str) = match name {
            "exp" => ("exp", "exp(mean=…)"),
            "lognormal" => ("lognormal", "lognormal(p50=…, p99=…)"),
            "uniform" => ("uniform", "uniform(min, max)"),
            "normal" => ("normal", "normal(mean=…, sd=…)"),
            "empirical" => ("empirical", "empirical(p0=…, p50=…, p100=…)"),
            _ => {
                return Err(DistError::UnknownForm {
                    name: name.to_string(),
                    found: text.to_string(),
                });
            }
        };
        let arguments = || DistError::Arguments {
            form,
            usage,
            found: text.to_string(),
        };
        let value =
            |text: &str| Q::parse(text).map_err(|message| DistError::Value { form, message });
        match form {
            "exp" => {
                let [mean] = named(&args, ["mean"]).ok_or_else(arguments)?;
                Dist::exp(value(mean)?)
            }
            "lognormal" => {
                let [p50, p99] = named(&args, ["p50", "p99"]).ok_or_else(arguments)?;
                Dist::lognormal(value(p50)?, value(p99)?)
            }
            "uniform" => match args[..] {
                [(None, min), (None, max)] => Dist::uniform(value(min)?, value(max)?),
                _ => Err(arguments()),
            },
            "normal" => {
                let [mean, sd] = named(&args, ["mean", "sd"]).ok_or_else(arguments)?;
                Dist::normal(value(mean)?, value(sd)?)
            }
            _ => {
                let mut points = Vec::with_capacity(args.len());
                for &(key, v) in &args {
                    let label = key.ok_or_else(arguments)?;
                    let percent = label
                        .strip_prefix('p')
                        .and_then(|number| Percent::parse_number(number, label).ok())
                        .ok_or_else(|| DistError::EmpiricalLabel {
                            label: label.to_string(),
                        })?;
                    points.push((percent, value(v)?));
                }
                Dist::empirical(&points)
            }
        }
    }
}

/// One argument of a call: `(Some(key), value)` or `(None, value)`.
pub(crate) type Arg<'a> = (Option<&'a str>, &'a str);

/// `name(a, key=b)` as its name and its arguments, each `(Some(key), value)` or
/// `(None, value)`; `None` unless the text is one call with unnested parentheses.
pub(crate) fn call(text: &str) -> Option<(&str, Vec<Arg<'_>>)> {
    let (name, rest) = text.trim().split_once('(')?;
    let inside = rest.strip_suffix(')')?;
    if inside.contains(['(', ')']) {
        return None;
    }
    let args = inside
        .split(',')
        .map(|arg| match arg.split_once('=') {
            Some((key, value)) => (Some(key.trim()), value.trim()),
            None => (None, arg.trim()),
        })
        .collect();
    Some((name.trim(), args))
}

/// The values of exactly the arguments `keys`, each given once by name, in any order.
pub(crate) fn named<'a, const N: usize>(
    args: &[(Option<&str>, &'a str)],
    keys: [&str; N],
) -> Option<[&'a str; N]> {
    if args.len() != N {
        return None;
    }
    let mut values = [""; N];
    for (value, key) in values.iter_mut().zip(keys) {
        let mut given = args.iter().filter(|(k, _)| *k == Some(key));
        *value = given.next()?.1;
        if given.next().is_some() {
            return None;
        }
    }
    Some(values)
}

impl<Q: Quantity> fmt::Display for Dist<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.form {
            Form::Constant(value) => write!(f, "{value}"),
            Form::Exp { mean, .. } => write!(f, "exp(mean={mean})"),
            Form::Lognormal { p50, p99, .. } => write!(f, "lognormal(p50={p50}, p99={p99})"),
            Form::Uniform { min, max, .. } => write!(f, "uniform({min}, {max})"),
            Form::Normal { mean, sd, .. } => write!(f, "normal(mean={mean}, sd={sd})"),
            Form::Empirical { points, .. } => write!(f, "empirical({})", Table(points)),
        }
    }
}

/// An empirical label: `p50`, `p99.9`.
struct Label(Percent);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("p")?;
        self.0.write_number(f)
    }
}

/// The points of an empirical table: `p0=5ms, p50=10ms, p100=100ms`.
struct Table<'a, Q>(&'a [(Percent, Q)]);

impl<Q: fmt::Display> fmt::Display for Table<'_, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (percent, value)) in self.0.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{}={value}", Label(*percent))?;
        }
        Ok(())
    }
}

impl<Q: Quantity> Serialize for Dist<Q> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// From the text form. A bare number in the file (`tokens = 300`) is read as its text,
/// so it is a constant where a number is a valid quantity (and for durations only `0`).
impl<'de, Q: Quantity> Deserialize<'de> for Dist<Q> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dist<Q>, D::Error> {
        deserializer.deserialize_any(DistVisitor(PhantomData))
    }
}

struct DistVisitor<Q>(PhantomData<Q>);

impl<Q: Quantity> Visitor<'_> for DistVisitor<Q> {
    type Value = Dist<Q>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} or a distribution such as \"exp(mean=…)\"",
            Q::EXPECTED
        )
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Dist<Q>, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dist<Q>, E> {
        self.visit_str(&n.to_string())
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dist<Q>, E> {
        self.visit_str(&n.to_string())
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Dist<Q>, E> {
        self.visit_str(&x.to_string())
    }
}

// ---------------------------------------------------------------------------------------
// The standard normal distribution
// ---------------------------------------------------------------------------------------

fn normal_pdf(x: f64) -> f64 {
    (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Φ(x), through erfc.
fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function, with relative error below 1.2e-7 everywhere
/// (Chebyshev fit from Press et al., *Numerical Recipes*, section 6.2).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let tail = t * poly.exp();
    if x >= 0.0 { tail } else { 2.0 - tail }
}

/// Φ⁻¹(p), with relative error below 1.2e-9 (P. J. Acklam's rational approximation).
/// Gives -∞ at 0 and +∞ at 1.
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;

    // The lower tail; the upper tail is its mirror image.
    let tail = |p: f64| {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p <= 0.0 {
        f64::NEG_INFINITY
    } else if p >= 1.0 {
        f64::INFINITY
    } else if p < P_LOW {
        tail(p)
    } else if p > 1.0 - P_LOW {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn pct(text: &str) -> Percent {
        text.parse().unwrap()
    }

    /// Parses `text`, checks it prints as `canonical` and that this parses back the same.
    fn check<Q: Quantity>(text: &str, canonical: &str) {
        let dist: Dist<Q> = text
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
        assert_eq!(dist.to_string(), canonical, "printing {text:?}");
        assert_eq!(canonical.parse::<Dist<Q>>(), Ok(dist));
    }

    fn round_trips<Q: Quantity>(dist: &Dist<Q>) {
        let text = dist.to_string();
        assert_eq!(
            text.parse::<Dist<Q>>().as_ref(),
            Ok(dist),
            "through {text:?}"
        );
    }

    /// `count` draws, sorted.
    fn draws(dist: &Dist<Duration>, count: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut xs: Vec<f64> = (0..count).map(|_| dist.sample(&mut rng).to_f64()).collect();
        xs.sort_by(f64::total_cmp);
        xs
    }

    fn empirical_quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    fn mean_of(xs: &[f64]) -> f64 {
        xs.iter().sum::<f64>() / xs.len() as f64
    }

    fn assert_close(actual: f64, expected: f64, relative: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= relative * expected.abs(),
            "{what}: {actual} is not within {relative} of {expected}"
        );
    }

    #[test]
    fn every_form_prints_as_written() {
        for text in [
            "20ms",
            "0",
            "exp(mean=20ms)",
            "lognormal(p50=1.5s, p99=4s)",
            "uniform(60s, 120s)",
            "normal(mean=100ms, sd=20ms)",
            "empirical(p0=5ms, p50=10ms, p90=20ms, p100=100ms)",
            "empirical(p0=0, p99.9=1s, p100=1h30m)",
        ] {
            check::<Duration>(text, text);
        }
        for text in [
            "300",
            "1.5",
            "exp(mean=2.5)",
            "uniform(1, 5)",
            "empirical(p0=1, p100=9)",
        ] {
            check::<f64>(text, text);
        }
    }

    #[test]
    fn spacing_and_units_are_normalised() {
        let cases = [
            (
                "lognormal(p50=1500ms,p99=4s)",
                "lognormal(p50=1.5s, p99=4s)",
            ),
            (" exp( mean = 20ms ) ", "exp(mean=20ms)"),
            ("lognormal(p99=4s, p50=1s)", "lognormal(p50=1s, p99=4s)"),
            ("uniform(60s,2m)", "uniform(60s, 120s)"),
            ("normal(sd=20ms, mean=0.1s)", "normal(mean=100ms, sd=20ms)"),
            (
                "empirical(p0=5ms,p50.0=10ms,p100=0.1s)",
                "empirical(p0=5ms, p50=10ms, p100=100ms)",
            ),
        ];
        for (text, canonical) in cases {
            check::<Duration>(text, canonical);
        }
        check::<f64>("uniform(1.50, 007)", "uniform(1.5, 7)");
    }

    #[test]
    fn syntax_errors() {
        for text in [
            "",
            "25k",
            "-5ms",
            "exp(mean=20ms",
            "exp mean=20ms)",
            "exp(mean=20ms))",
            "exp(mean=(20ms))",
            "exp(mean=20ms) x",
        ] {
            let expected = DistError::Syntax {
                expected: Duration::EXPECTED,
                found: text.to_string(),
            };
            assert_eq!(text.parse::<Dist<Duration>>(), Err(expected), "{text:?}");
        }
        let message = "25k".parse::<Dist<Duration>>().unwrap_err().to_string();
        assert!(
            message.starts_with(r#"expected a duration such as "20ms" or "1.5s" or a distribution such as "exp(mean=…)""#),
            "{message}"
        );
        assert!(message.ends_with(r#"found "25k""#), "{message}");
        assert!(matches!(
            "-1".parse::<Dist<f64>>(),
            Err(DistError::Syntax { .. })
        ));
        assert!(matches!(
            "1e3".parse::<Dist<f64>>(),
            Err(DistError::Syntax { .. })
        ));
    }

    #[test]
    fn unknown_forms_and_wrong_arguments() {
        assert_eq!(
            "gamma(k=2, theta=1s)".parse::<Dist<Duration>>(),
            Err(DistError::UnknownForm {
                name: "gamma".to_string(),
                found: "gamma(k=2, theta=1s)".to_string()
            })
        );
        for text in [
            "exp()",
            "exp(20ms)",
            "exp(mu=20ms)",
            "exp(mean=20ms, mean=30ms)",
            "lognormal(p50=1s)",
            "lognormal(p50=1s, p90=2s)",
            "lognormal(p50=1s, p50=2s)",
            "lognormal(p50=1s, p99=2s, p999=3s)",
            "uniform(1s)",
            "uniform(min=1s, max=2s)",
            "uniform(1s, 2s, 3s)",
            "normal(mean=1s)",
            "normal(1s, 2s)",
            "empirical(5ms, 10ms)",
        ] {
            let result = text.parse::<Dist<Duration>>();
            assert!(
                matches!(result, Err(DistError::Arguments { .. })),
                "{text:?}: {result:?}"
            );
        }
        assert_eq!(
            "exp(20ms)"
                .parse::<Dist<Duration>>()
                .unwrap_err()
                .to_string(),
            r#"exp is written exp(mean=…), found "exp(20ms)""#
        );
    }

    #[test]
    fn bad_values_inside_a_form() {
        let err = "exp(mean=25k)".parse::<Dist<Duration>>().unwrap_err();
        assert_eq!(
            err,
            DistError::Value {
                form: "exp",
                message: r#"expected a duration such as "250ms", "90s" or "2h", found "25k""#
                    .to_string()
            }
        );
        assert_eq!(
            err.to_string(),
            r#"exp: expected a duration such as "250ms", "90s" or "2h", found "25k""#
        );
        let err = "uniform(1, -2)".parse::<Dist<f64>>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"uniform: expected a number such as "300" or "1.5", found "-2""#
        );
        assert!(matches!(
            Dist::exp(-1.0),
            Err(DistError::Value { form: "exp", .. })
        ));
        assert!(matches!(
            Dist::normal(1.0, f64::NAN),
            Err(DistError::Value { form: "normal", .. })
        ));
    }

    #[test]
    #[should_panic(expected = "Dist::constant")]
    fn constant_of_an_invalid_number_panics() {
        let _ = Dist::constant(f64::INFINITY);
    }

    #[test]
    fn lognormal_errors() {
        assert_eq!(
            "lognormal(p50=4s, p99=1s)".parse::<Dist<Duration>>(),
            Err(DistError::LognormalOrder {
                p50: "4s".to_string(),
                p99: "1s".to_string()
            })
        );
        assert_eq!(
            "lognormal(p50=0, p99=1s)".parse::<Dist<Duration>>(),
            Err(DistError::LognormalZero {
                p50: "0".to_string()
            })
        );
        assert_eq!(
            "lognormal(p50=4s, p99=1s)"
                .parse::<Dist<Duration>>()
                .unwrap_err()
                .to_string(),
            "lognormal: p99 must not be below p50, found p50=4s, p99=1s"
        );
    }

    #[test]
    fn uniform_errors() {
        assert_eq!(
            "uniform(120s, 60s)".parse::<Dist<Duration>>(),
            Err(DistError::UniformOrder {
                min: "120s".to_string(),
                max: "60s".to_string()
            })
        );
    }

    #[test]
    fn empirical_errors() {
        let parse = |text: &str| text.parse::<Dist<Duration>>().unwrap_err();
        assert_eq!(
            parse("empirical(p50=10ms, p100=20ms)"),
            DistError::EmpiricalEnds {
                found: "p50=10ms, p100=20ms".to_string()
            }
        );
        assert!(matches!(
            parse("empirical(p0=10ms, p99=20ms)"),
            DistError::EmpiricalEnds { .. }
        ));
        assert!(matches!(
            parse("empirical(p0=10ms)"),
            DistError::EmpiricalEnds { .. }
        ));
        assert!(matches!(
            parse("empirical(p100=10ms, p0=5ms)"),
            DistError::EmpiricalEnds { .. }
        ));
        assert_eq!(
            parse("empirical(p0=5ms, p90=10ms, p50=20ms, p100=30ms)"),
            DistError::EmpiricalPercentileOrder {
                before: "p90".to_string(),
                after: "p50".to_string()
            }
        );
        assert!(matches!(
            parse("empirical(p0=5ms, p50=10ms, p50=20ms, p100=30ms)"),
            DistError::EmpiricalPercentileOrder { .. }
        ));
        assert_eq!(
            parse("empirical(p0=5ms, p50=30ms, p90=20ms, p100=40ms)").to_string(),
            "empirical: values must not decrease, found p50=30ms before p90=20ms"
        );
        for label in ["p150", "q50", "p-5", "p", "50", "p5%"] {
            assert_eq!(
                parse(&format!("empirical(p0=1ms, {label}=2ms, p100=3ms)")),
                DistError::EmpiricalLabel {
                    label: label.to_string()
                },
                "{label}"
            );
        }
    }

    #[test]
    fn constants() {
        let dist: Dist<Duration> = "20ms".parse().unwrap();
        assert_eq!(dist, Dist::constant(ms(20)));
        assert!(dist.is_constant());
        assert_eq!(dist.mean(), 20e6);
        assert_eq!(dist.quantile(0.0), 20e6);
        assert_eq!(dist.quantile(1.0), 20e6);
        let mut rng = StdRng::seed_from_u64(7);
        assert!((0..100).all(|_| dist.sample(&mut rng) == ms(20)));
        let tokens: Dist<f64> = "300".parse().unwrap();
        assert_eq!(tokens.sample(&mut rng), 300.0);
        assert_eq!(Dist::constant(-0.0).to_string(), "0");
    }

    #[test]
    fn degenerate_forms_are_constant() {
        for text in [
            "exp(mean=0)",
            "lognormal(p50=1s, p99=1s)",
            "uniform(1s, 1s)",
            "normal(mean=5ms, sd=0)",
            "empirical(p0=3ms, p50=3ms, p100=3ms)",
        ] {
            let dist: Dist<Duration> = text.parse().unwrap();
            assert!(dist.is_constant(), "{text}");
            let first = dist.quantile(0.5);
            let mut rng = StdRng::seed_from_u64(8);
            for _ in 0..100 {
                assert_eq!(dist.sample(&mut rng).to_f64(), first, "{text}");
            }
        }
        for text in ["exp(mean=1ms)", "uniform(1s, 2s)", "normal(mean=0, sd=1ms)"] {
            assert!(
                !text.parse::<Dist<Duration>>().unwrap().is_constant(),
                "{text}"
            );
        }
    }

    #[test]
    fn exponential_mean_and_quantiles() {
        let dist: Dist<Duration> = "exp(mean=20ms)".parse().unwrap();
        assert_eq!(dist.mean(), 20e6);
        let xs = draws(&dist, 200_000, 11);
        assert_close(mean_of(&xs), 20e6, 0.01, "sample mean");
        assert_close(
            dist.quantile(0.5),
            20e6 * std::f64::consts::LN_2,
            1e-12,
            "median",
        );
        assert_close(
            empirical_quantile(&xs, 0.5),
            dist.quantile(0.5),
            0.02,
            "p50",
        );
        assert_close(
            empirical_quantile(&xs, 0.99),
            dist.quantile(0.99),
            0.02,
            "p99",
        );
        assert_eq!(dist.quantile(0.0), 0.0);
        assert_eq!(dist.quantile(1.0), f64::INFINITY);
    }

    #[test]
    fn lognormal_recovers_its_quantiles() {
        let dist: Dist<Duration> = "lognormal(p50=1.5s, p99=4s)".parse().unwrap();
        assert_eq!(dist.quantile(0.5), 1.5e9, "closed-form p50");
        assert_close(dist.quantile(0.99), 4e9, 1e-8, "closed-form p99");
        let xs = draws(&dist, 200_000, 12);
        assert_close(empirical_quantile(&xs, 0.5), 1.5e9, 0.02, "sampled p50");
        assert_close(empirical_quantile(&xs, 0.99), 4e9, 0.02, "sampled p99");
        assert_close(mean_of(&xs), dist.mean(), 0.01, "mean");
        assert_eq!(dist.quantile(0.0), 0.0);
        assert_eq!(dist.quantile(1.0), f64::INFINITY);
    }

    #[test]
    fn uniform_stays_within_its_bounds() {
        let dist: Dist<Duration> = "uniform(60s, 120s)".parse().unwrap();
        let xs = draws(&dist, 100_000, 13);
        assert!(xs[0] >= 60e9 && xs[xs.len() - 1] <= 120e9);
        assert!(
            xs[0] < 60.1e9 && xs[xs.len() - 1] > 119.9e9,
            "covers the range"
        );
        assert_eq!(dist.mean(), 90e9);
        assert_close(mean_of(&xs), 90e9, 0.01, "sample mean");
        assert_eq!(dist.quantile(0.25), 75e9);
        assert_eq!(dist.quantile(1.0), 120e9);
    }

    #[test]
    fn truncated_normal_is_never_negative() {
        for (text, seed) in [
            ("normal(mean=100ms, sd=20ms)", 14),
            ("normal(mean=10ms, sd=20ms)", 15),
            ("normal(mean=0, sd=1s)", 16),
        ] {
            let dist: Dist<Duration> = text.parse().unwrap();
            let xs = draws(&dist, 200_000, seed);
            assert!(xs[0] >= 0.0, "{text}");
            assert_close(mean_of(&xs), dist.mean(), 0.01, text);
            assert_close(empirical_quantile(&xs, 0.5), dist.quantile(0.5), 0.02, text);
            assert_close(empirical_quantile(&xs, 0.9), dist.quantile(0.9), 0.02, text);
        }
        // Barely truncated: the plain normal's mean and median.
        let dist: Dist<Duration> = "normal(mean=100ms, sd=20ms)".parse().unwrap();
        assert_close(dist.mean(), 100e6, 1e-6, "mean");
        assert_close(dist.quantile(0.5), 100e6, 1e-6, "median");
        // Half-normal: mean sd * sqrt(2 / pi), median sd * 0.6745.
        let dist: Dist<f64> = "normal(mean=0, sd=1)".parse().unwrap();
        assert_close(
            dist.mean(),
            (2.0 / std::f64::consts::PI).sqrt(),
            1e-6,
            "half mean",
        );
        assert_close(
            dist.quantile(0.5),
            0.674_489_750_196_08,
            1e-6,
            "half median",
        );
        assert_eq!(dist.quantile(0.0), 0.0);
    }

    #[test]
    fn empirical_interpolates_linearly() {
        let dist: Dist<Duration> = "empirical(p0=5ms, p50=10ms, p90=20ms, p100=100ms)"
            .parse()
            .unwrap();
        assert_eq!(dist.quantile(0.0), 5e6);
        assert_close(dist.quantile(0.25), 7.5e6, 1e-12, "p25");
        assert_close(dist.quantile(0.5), 10e6, 1e-12, "p50");
        assert_close(dist.quantile(0.7), 15e6, 1e-12, "p70");
        assert_close(dist.quantile(0.95), 60e6, 1e-12, "p95");
        assert_eq!(dist.quantile(1.0), 100e6);
        // 0.5 * 7.5ms + 0.4 * 15ms + 0.1 * 60ms
        assert_close(dist.mean(), 15.75e6, 1e-12, "mean");
        let xs = draws(&dist, 200_000, 17);
        assert!(xs[0] >= 5e6 && xs[xs.len() - 1] <= 100e6);
        assert_close(mean_of(&xs), 15.75e6, 0.01, "sample mean");
        for q in [0.1, 0.5, 0.8, 0.95] {
            assert_close(
                empirical_quantile(&xs, q),
                dist.quantile(q),
                0.02,
                "sampled",
            );
        }
        let built = Dist::empirical(&[
            (pct("0%"), ms(5)),
            (pct("50%"), ms(10)),
            (pct("90%"), ms(20)),
            (pct("100%"), ms(100)),
        ])
        .unwrap();
        assert_eq!(built, dist);
    }

    #[test]
    fn scaling_multiplies_every_value() {
        let cases = [
            ("20ms", 0.5, "10ms"),
            ("exp(mean=20ms)", 3.0, "exp(mean=60ms)"),
            (
                "lognormal(p50=1.5s, p99=4s)",
                1.0 / 3.0,
                "lognormal(p50=500ms, p99=1.333333333s)",
            ),
            ("uniform(60s, 120s)", 2.0, "uniform(120s, 240s)"),
            (
                "normal(mean=100ms, sd=20ms)",
                0.1,
                "normal(mean=10ms, sd=2ms)",
            ),
            (
                "empirical(p0=5ms, p50=10ms, p100=100ms)",
                2.0,
                "empirical(p0=10ms, p50=20ms, p100=200ms)",
            ),
            ("lognormal(p50=1s, p99=4s)", 0.0, "0"),
            ("exp(mean=20ms)", 0.0, "exp(mean=0)"),
        ];
        for (text, factor, scaled) in cases {
            let dist: Dist<Duration> = text.parse().unwrap();
            assert_eq!(dist.scaled(factor).to_string(), scaled, "{text} x {factor}");
        }
        let tokens: Dist<f64> = "lognormal(p50=300, p99=900)".parse().unwrap();
        assert_close(
            tokens.scaled(2.0).mean(),
            tokens.mean() * 2.0,
            1e-12,
            "mean x 2",
        );
        let dist: Dist<Duration> = "lognormal(p50=1.5s, p99=4s)".parse().unwrap();
        assert_eq!(dist.scaled(1.0), dist);
    }

    #[test]
    fn serde_uses_the_text_form() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Stage {
            latency: Dist<Duration>,
            tokens: Dist<f64>,
        }
        let toml_text = "latency = \"lognormal(p50=1.5s, p99=4s)\"\ntokens = 300\n";
        let stage: Stage = toml::from_str(toml_text).unwrap();
        assert_eq!(stage.tokens, Dist::constant(300.0));
        let json = serde_json::to_string(&stage).unwrap();
        assert_eq!(
            json,
            r#"{"latency":"lognormal(p50=1.5s, p99=4s)","tokens":"300"}"#
        );
        assert_eq!(serde_json::from_str::<Stage>(&json).unwrap(), stage);
        let stage: Stage = serde_json::from_str(r#"{"latency": 0, "tokens": 2.5}"#).unwrap();
        assert_eq!(stage.latency, Dist::constant(Duration::ZERO));
        assert_eq!(stage.tokens, Dist::constant(2.5));
        let err = serde_json::from_str::<Stage>(r#"{"latency": 20, "tokens": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"found "20""#), "{err}");
        let err = toml::from_str::<Stage>("latency = \"exp(mean=25k)\"\ntokens = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("exp: expected a duration"), "{err}");
    }

    /// A random valid distribution: every form, parameters over many magnitudes.
    fn random_dist<Q: Quantity>(rng: &mut StdRng, value: impl Fn(&mut StdRng) -> Q) -> Dist<Q> {
        let sorted = |rng: &mut StdRng, n: usize| {
            let mut vs: Vec<Q> = (0..n).map(|_| value(rng)).collect();
            vs.sort_by(|a, b| a.partial_cmp(b).unwrap());
            vs
        };
        match rng.random_range(0..6) {
            0 => Dist::constant(value(rng)),
            1 => Dist::exp(value(rng)).unwrap(),
            2 => {
                let vs = sorted(rng, 2);
                if vs[0].to_f64() == 0.0 {
                    Dist::constant(vs[1])
                } else {
                    Dist::lognormal(vs[0], vs[1]).unwrap()
                }
            }
            3 => {
                let vs = sorted(rng, 2);
                Dist::uniform(vs[0], vs[1]).unwrap()
            }
            4 => Dist::normal(value(rng), value(rng)).unwrap(),
            _ => {
                let n = rng.random_range(2..8);
                let mut fractions: Vec<f64> = (2..n).map(|_| rng.random::<f64>()).collect();
                fractions.push(0.0);
                fractions.push(1.0);
                fractions.sort_by(f64::total_cmp);
                fractions.dedup();
                let vs = sorted(rng, fractions.len());
                let points: Vec<(Percent, Q)> = fractions
                    .into_iter()
                    .map(Percent::from_fraction)
                    .zip(vs)
                    .collect();
                Dist::empirical(&points).unwrap()
            }
        }
    }

    #[test]
    fn distributions_round_trip_for_many_values() {
        let mut rng = StdRng::seed_from_u64(18);
        for _ in 0..5_000 {
            let dist = random_dist(&mut rng, |rng| {
                Duration::from_nanos(rng.random::<u64>() >> rng.random_range(10..64))
            });
            round_trips(&dist);
            round_trips(&dist.scaled(rng.random::<f64>() * 4.0));
        }
        for _ in 0..5_000 {
            let dist = random_dist(&mut rng, |rng| {
                rng.random::<f64>() * 10f64.powi(rng.random_range(-6..9))
            });
            round_trips(&dist);
            round_trips(&dist.scaled(rng.random::<f64>() * 4.0));
        }
    }

    #[test]
    fn normal_helpers_match_known_values() {
        assert_close(normal_cdf(0.0), 0.5, 1e-7, "Φ(0)");
        assert_close(normal_cdf(1.0), 0.841_344_746_068_543, 1e-7, "Φ(1)");
        assert_close(normal_cdf(-2.0), 0.022_750_131_948_179, 1e-6, "Φ(-2)");
        assert_close(inverse_normal_cdf(0.99), Z_99, 1e-9, "Φ⁻¹(0.99)");
        assert_close(inverse_normal_cdf(0.01), -Z_99, 1e-9, "Φ⁻¹(0.01)");
        assert_close(
            inverse_normal_cdf(0.75),
            0.674_489_750_196_08,
            1e-9,
            "Φ⁻¹(0.75)",
        );
        assert_eq!(inverse_normal_cdf(0.5), 0.0);
        for i in 1..100 {
            let p = f64::from(i) / 100.0;
            assert_close(normal_cdf(inverse_normal_cdf(p)), p, 1e-6, "Φ(Φ⁻¹(p))");
        }
    }
}
