//! Run-to-run noise: a block bootstrap over the runs' seconds gives each compared figure's
//! delta a confidence interval.
//!
//! Why it exists: the p99 of a ten-minute run moves by several percent from one run to the
//! next, so a nightly gate that fails on any point delta beyond +10 % fails on noise. The
//! bootstrap estimates how far a figure would move if the same run were repeated, from the
//! run itself:
//!
//! - **Blocks, not seconds.** The window is cut into blocks of [`Grid::block_s`] seconds (the
//!   cube root of its length: 3 s for 30 s, 8 s for ten minutes, 19 s for two hours; see
//!   [`crate::window::block_length`]). Neighbouring seconds are correlated — a queue that
//!   builds up, a cold cache, an autoscaler's step — and resampling single seconds would treat
//!   them as independent and give intervals too narrow; a block keeps them together.
//! - **Exact merges.** Resample `b` draws as many blocks as the run has, with replacement, and
//!   adds the drawn blocks' histograms bucket by bucket (a block drawn twice counts twice);
//!   its percentiles follow HdrHistogram's rule, so the whole sample gives exactly the
//!   report's figure. Percentiles are never averaged. Each block is merged once while the
//!   logs are read ([`crate::blocks`]), and a resample adds the drawn blocks' coarse bins
//!   first and fine buckets only where a percentile falls (see `tag_stats`): 1,000
//!   resamples of both sides of a two-hour run (380 blocks, five tags) take about 2 s of
//!   CPU, against 8 s adding whole blocks.
//! - **Rates** (`errors.rate`, `late.rate`) resample the blocks' timeline counts: Σ errors /
//!   Σ sent over the drawn blocks.
//! - **Reproducible.** Base and candidate are resampled independently, resample `b` of a side
//!   from its own SplitMix64 stream seeded by (seed, side, b): the output depends on neither
//!   the thread count nor the figures asked for, and a generator written here cannot change
//!   with a dependency's version.
//! - **The interval** is the percentile interval of the B deltas (candidate − base, and
//!   candidate / base − 1), moved by however much the bootstrap's whole-sample delta differs
//!   from the report's — nothing for latencies; for rates, the report counts exactly from
//!   summary.json, the bootstrap per second from timeline.csv.
//! - **No interval** (a reason instead) for `max` (no resample can exceed the observed
//!   maximum), for a side with fewer than [`MIN_BLOCKS`] blocks, and for a percentile with
//!   fewer than [`MIN_TAIL`] values beyond it on a side: resamples of so few tail values
//!   repeat the same handful and the interval says nothing.
//!
//! [`Grid::block_s`]: crate::window::Grid::block_s

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;
use surge_profile::metric::{MetricRef, RatioMetric, Stat};

use crate::decode::Layout;
use crate::load::Loaded;
use crate::timeline;

/// Fewest blocks a side needs for an interval.
pub const MIN_BLOCKS: usize = 10;
/// Fewest values beyond a percentile (n × (1 − q)) a side needs for its interval.
pub const MIN_TAIL: f64 = 10.0;
/// Shares of the resamples that must give a rate (the others sent nothing at all).
const MIN_DEFINED: f64 = 0.9;

/// How to bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapOptions {
    /// Resamples per side (B).
    pub resamples: usize,
    /// Two-sided confidence of the interval, 0–1 (0.95).
    pub confidence: f64,
    /// Seed of the resampling streams.
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            resamples: 1000,
            confidence: 0.95,
            seed: 1,
        }
    }
}

/// A confidence interval of the delta candidate − base of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DeltaInterval {
    /// In the figure's unit (ms, or a fraction for rates).
    pub low: f64,
    pub high: f64,
    /// Of delta / base; absent when the base is 0 in the run or in a resample.
    pub relative_low: Option<f64>,
    pub relative_high: Option<f64>,
}

impl DeltaInterval {
    /// True when the interval excludes 0: the difference is beyond run-to-run noise.
    pub fn significant(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// Fine buckets per coarse bin of the two-level merge (see [`tag_stats`]).
const FINE_SHIFT: u32 = 5;
const FINE: usize = 1 << FINE_SHIFT;

/// The fine buckets of one block that fall in one coarse bin: `index/count[start..end]`.
#[derive(Debug, Clone, Copy)]
struct Coarse {
    bin: usize,
    count: u64,
    start: usize,
    end: usize,
}

/// One tag's blocks, flat: block `k`'s coarse bins are `coarse[offsets[k]..offsets[k + 1]]`,
/// each pointing at its fine buckets in `index`/`count`.
#[derive(Debug, Clone)]
struct TagBlocks {
    index: Vec<u32>,
    count: Vec<u64>,
    coarse: Vec<Coarse>,
    offsets: Vec<usize>,
    /// Per block: Σ count × the bucket's median-equivalent value (µs), for the mean.
    sums: Vec<f64>,
    /// Lowest bucket index in use (coarse bins count from it), and highest + 1.
    low: usize,
    width: usize,
    total: u64,
}

impl TagBlocks {
    fn bins(&self) -> usize {
        (self.width.saturating_sub(self.low) >> FINE_SHIFT) + 1
    }

    fn empty(blocks: usize) -> TagBlocks {
        TagBlocks {
            index: Vec::new(),
            count: Vec::new(),
            coarse: Vec::new(),
            offsets: vec![0; blocks + 1],
            sums: vec![0.0; blocks],
            low: 0,
            width: 0,
            total: 0,
        }
    }
}

/// Timeline counts per block.
#[derive(Debug, Clone)]
struct TrafficBlocks {
    sent: Vec<f64>,
    errors: Vec<f64>,
    late: Option<Vec<f64>>,
    good: Option<Vec<f64>>,
}

/// What the bootstrap needs of one side: its blocks per tag and its traffic per block.
#[derive(Debug, Clone)]
pub struct Samples {
    /// Seconds per block.
    pub block_s: f64,
    /// Blocks in the window (empty ones included).
    pub blocks: usize,
    tags: BTreeMap<String, TagBlocks>,
    traffic: Option<TrafficBlocks>,
}

impl Samples {
    /// The blocks of a run loaded with [`crate::LoadOptions::blocks`] set (without it, the
    /// side has no latency blocks and every latency interval is unavailable).
    pub fn of(loaded: &Loaded) -> Samples {
        let grid = &loaded.grid;
        let traffic = traffic_blocks(loaded);
        let tag_blocks: Vec<(&str, &crate::blocks::BlockCounts)> = loaded
            .acc
            .tags()
            .into_iter()
            .filter_map(|t| Some((t.name.as_str(), t.blocks.as_ref()?)))
            .collect();
        let blocks = tag_blocks
            .iter()
            .map(|(_, b)| b.blocks().len())
            .chain(traffic.as_ref().map(|t| t.sent.len()))
            .max()
            .unwrap_or(0);
        let tags = tag_blocks
            .into_iter()
            .map(|(name, b)| (name.to_string(), flatten(b, blocks)))
            .collect();
        Samples {
            block_s: grid.block_s,
            blocks,
            tags,
            traffic: traffic.map(|t| t.padded(blocks)),
        }
    }
}

fn flatten(b: &crate::blocks::BlockCounts, blocks: usize) -> TagBlocks {
    let all = || b.blocks().iter().flatten();
    let low = all().map(|p| p.0 as usize).min().unwrap_or(0);
    let mut t = TagBlocks {
        low,
        width: all().map(|p| p.0 as usize + 1).max().unwrap_or(0),
        ..TagBlocks::empty(0)
    };
    let h: Histogram<u64> = surge_record::new_histogram_as_read();
    for k in 0..blocks {
        let mut sum = 0.0;
        for &(i, n) in b.blocks().get(k).map_or(&[][..], Vec::as_slice) {
            let bin = (i as usize - low) >> FINE_SHIFT;
            let opened = t.offsets.last() != Some(&t.coarse.len());
            match t.coarse.last_mut() {
                Some(c) if opened && c.bin == bin => {
                    c.count += n;
                    c.end += 1;
                }
                _ => t.coarse.push(Coarse {
                    bin,
                    count: n,
                    start: t.index.len(),
                    end: t.index.len() + 1,
                }),
            }
            t.index.push(i);
            t.count.push(n);
            t.total += n;
            let v = Layout::SURGE.value(i as usize).unwrap_or(u64::MAX);
            sum += h.median_equivalent(v) as f64 * n as f64;
        }
        t.offsets.push(t.coarse.len());
        t.sums.push(sum);
    }
    t
}

fn traffic_blocks(loaded: &Loaded) -> Option<TrafficBlocks> {
    let grid = &loaded.grid;
    let col = |name: &str| loaded.columns.iter().position(|c| c == name);
    let sent_col = col("sent")?;
    let error_cols: Vec<usize> = (0..loaded.columns.len())
        .filter(|&i| loaded.columns[i].starts_with(surge_record::timeline::ERROR_COLUMN_PREFIX))
        .collect();
    let slots = timeline::slots(&loaded.rows, &loaded.columns, grid.from_s, grid.to_s);
    let late_col = col("late").filter(|&i| timeline::present(&slots, i));
    let good_col = col("good").filter(|&i| timeline::present(&slots, i));
    let mut t = TrafficBlocks {
        sent: Vec::new(),
        errors: Vec::new(),
        late: late_col.map(|_| Vec::new()),
        good: good_col.map(|_| Vec::new()),
    };
    let value = |v: f64| if v.is_nan() { 0.0 } else { v };
    for s in &slots {
        let k = ((s.start_s - grid.from_s) / grid.block_s).floor().max(0.0) as usize;
        t = t.padded(k + 1);
        t.sent[k] += value(s.values[sent_col]);
        t.errors[k] += error_cols.iter().map(|&i| value(s.values[i])).sum::<f64>();
        for (counts, column) in [(&mut t.late, late_col), (&mut t.good, good_col)] {
            if let (Some(counts), Some(i)) = (counts, column) {
                counts[k] += value(s.values[i]);
            }
        }
    }
    (!slots.is_empty()).then_some(t)
}

impl TrafficBlocks {
    fn padded(mut self, blocks: usize) -> TrafficBlocks {
        let pad = |v: &mut Vec<f64>| {
            if v.len() < blocks {
                v.resize(blocks, 0.0);
            }
        };
        pad(&mut self.sent);
        pad(&mut self.errors);
        for counts in [&mut self.late, &mut self.good].into_iter().flatten() {
            pad(counts);
        }
        self
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): small, fast, and fixed forever.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64, side: u64, resample: u64) -> SplitMix {
        let mut s = SplitMix(
            seed ^ side.wrapping_mul(0xD1B5_4A32_D192_ED03)
                ^ (resample + 1).wrapping_mul(0xA24B_AED4_963E_E407),
        );
        s.next();
        s
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2⁻⁵⁰ for any n here).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// The percentiles a latency resample yields, in [`TagStats::quantiles`] order.
const QUANTILES: [(Stat, f64); 4] = [
    (Stat::P50, 0.50),
    (Stat::P90, 0.90),
    (Stat::P99, 0.99),
    (Stat::P999, 0.999),
];

/// One tag of one resample: percentiles and mean in ms, as the report computes them.
#[derive(Debug, Clone, Copy)]
struct TagStats {
    quantiles: [f64; 4],
    mean: f64,
}

impl TagStats {
    fn get(&self, stat: Stat) -> Option<f64> {
        match stat {
            Stat::Mean => Some(self.mean),
            Stat::Max => None,
            s => QUANTILES
                .iter()
                .position(|(q, _)| *q == s)
                .map(|i| self.quantiles[i]),
        }
    }
}

/// One resample of one side: the requested tags (in request order) and the rates.
#[derive(Debug, Clone)]
struct Resample {
    tags: Vec<TagStats>,
    errors: f64,
    late: f64,
    good: f64,
}

/// What a bucket index means in ms: HdrHistogram's highest equivalent value, what
/// `value_at_quantile` answers.
struct BucketValues {
    high_ms: Vec<f64>,
}

impl BucketValues {
    fn new(width: usize) -> BucketValues {
        let h: Histogram<u64> = surge_record::new_histogram_as_read();
        let high = |i| h.highest_equivalent(Layout::SURGE.value(i).unwrap_or(u64::MAX));
        BucketValues {
            high_ms: (0..width).map(|i| high(i) as f64 / 1000.0).collect(),
        }
    }
}

/// Buffers of [`tag_stats`], left zeroed between calls.
struct Scratch {
    coarse: Vec<u64>,
    fine: [u64; FINE],
}

/// Merge the drawn blocks (`(block, times drawn)`) and take the figures, in two levels:
/// the blocks' coarse bins (32 buckets each) are added to find the bin holding each
/// percentile, then only that bin's fine buckets are added to find the bucket. Exact — the
/// same buckets and ranks as adding whole histograms — and an order of magnitude fewer
/// additions on long runs, whose blocks fill thousands of buckets each.
fn tag_stats(t: &TagBlocks, drawn: &[(usize, u32)], s: &mut Scratch, v: &BucketValues) -> TagStats {
    let (mut total, mut sum) = (0u64, 0.0);
    for &(k, w) in drawn {
        sum += t.sums[k] * f64::from(w);
        for c in &t.coarse[t.offsets[k]..t.offsets[k + 1]] {
            let n = u64::from(w) * c.count;
            s.coarse[c.bin] += n;
            total += n;
        }
    }
    // HdrHistogram's value_at_quantile: the first bucket whose running count reaches
    // ceil(q × total) (at least 1). Find each target's coarse bin and its rank inside it.
    let targets = QUANTILES.map(|(_, q)| ((q * total as f64).ceil() as u64).max(1));
    let mut found = [(usize::MAX, 0u64); 4];
    let (mut next, mut running) = (0, 0u64);
    for (bin, n) in s.coarse.iter_mut().enumerate().take(t.bins()) {
        let before = running;
        running += std::mem::take(n);
        while next < targets.len() && running >= targets[next] {
            found[next] = (bin, targets[next] - before);
            next += 1;
        }
    }
    let mut quantiles = [0.0; 4];
    let mut filled = usize::MAX;
    for (j, &(bin, rank)) in found.iter().enumerate() {
        if bin == usize::MAX {
            continue;
        }
        if bin != filled {
            s.fine = [0; FINE];
            for &(k, w) in drawn {
                let bins = &t.coarse[t.offsets[k]..t.offsets[k + 1]];
                if let Ok(c) = bins.binary_search_by_key(&bin, |c| c.bin) {
                    let c = bins[c];
                    for p in c.start..c.end {
                        let i = t.index[p] as usize - t.low - (bin << FINE_SHIFT);
                        s.fine[i] += u64::from(w) * t.count[p];
                    }
                }
            }
            filled = bin;
        }
        let mut running = 0;
        for (i, &n) in s.fine.iter().enumerate() {
            running += n;
            if running >= rank {
                quantiles[j] = v.high_ms[t.low + (bin << FINE_SHIFT) + i];
                break;
            }
        }
    }
    TagStats {
        quantiles,
        mean: if total > 0 {
            sum / total as f64 / 1000.0
        } else {
            0.0
        },
    }
}

fn ratio_of(num: &[f64], sent: &[f64], weights: &[u32]) -> f64 {
    let (mut n, mut d) = (0.0, 0.0);
    for ((&a, &s), &w) in num.iter().zip(sent).zip(weights) {
        n += a * f64::from(w);
        d += s * f64::from(w);
    }
    if d > 0.0 { n / d } else { f64::NAN }
}

/// Every resample of one side, plus the whole sample (every block once) first.
fn resample_side(
    s: &Samples,
    tags: &[&TagBlocks],
    side: u64,
    opts: &BootstrapOptions,
) -> Vec<Resample> {
    let width = tags.iter().map(|t| t.width).max().unwrap_or(0);
    let bins = tags.iter().map(|t| t.bins()).max().unwrap_or(0);
    let values = BucketValues::new(width);
    let scratch = || Scratch {
        coarse: vec![0; bins],
        fine: [0; FINE],
    };
    let one = |drawn: &[(usize, u32)], weights: &[u32], scratch: &mut Scratch| Resample {
        tags: tags
            .iter()
            .map(|t| tag_stats(t, drawn, scratch, &values))
            .collect(),
        errors: s
            .traffic
            .as_ref()
            .map_or(f64::NAN, |t| ratio_of(&t.errors, &t.sent, weights)),
        late: s.traffic.as_ref().map_or(f64::NAN, |t| {
            t.late
                .as_ref()
                .map_or(f64::NAN, |l| ratio_of(l, &t.sent, weights))
        }),
        good: s.traffic.as_ref().map_or(f64::NAN, |t| {
            t.good
                .as_ref()
                .map_or(f64::NAN, |g| ratio_of(g, &t.sent, weights))
        }),
    };
    let n = s.blocks;
    let all: Vec<(usize, u32)> = (0..n).map(|k| (k, 1)).collect();
    let mut out = vec![one(&all, &vec![1; n], &mut scratch())];
    if n == 0 {
        return out;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .clamp(1, opts.resamples.max(1));
    let chunk = opts.resamples.div_ceil(threads);
    let parts: Vec<Vec<Resample>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (one, scratch) = (&one, &scratch);
                scope.spawn(move || {
                    let mut buffers = scratch();
                    let mut weights = vec![0u32; n];
                    let mut drawn = Vec::with_capacity(n);
                    let range = (t * chunk)..((t + 1) * chunk).min(opts.resamples);
                    range
                        .map(|b| {
                            weights.fill(0);
                            let mut rng = SplitMix::new(opts.seed, side, b as u64);
                            for _ in 0..n {
                                weights[rng.below(n)] += 1;
                            }
                            drawn.clear();
                            let nonzero = weights.iter().enumerate().filter(|(_, w)| **w > 0);
                            drawn.extend(nonzero.map(|(k, w)| (k, *w)));
                            one(&drawn, &weights, &mut buffers)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bootstrap thread panicked (a bug)"))
            .collect()
    });
    out.extend(parts.into_iter().flatten());
    out
}

/// Why a figure of one side has no interval, if it has none.
fn unavailable(s: &Samples, side: &str, figure: &MetricRef) -> Option<String> {
    if s.blocks < MIN_BLOCKS {
        return Some(format!(
            "the {side} run has {} blocks of {} s; the bootstrap needs at least {MIN_BLOCKS} (a longer run)",
            s.blocks, s.block_s
        ));
    }
    match figure {
        MetricRef::Latency {
            stat: Stat::Max, ..
        } => Some("a bootstrap cannot bound a maximum (no resample exceeds the observed one); compare p99.9".into()),
        MetricRef::Latency { stat, .. } => {
            let tag = figure.tag().unwrap_or_default();
            let Some(t) = s.tags.get(&tag) else {
                return Some(format!("the {side} run has no intervals of {tag}"));
            };
            let q = QUANTILES.iter().find(|(s, _)| s == stat).map(|(_, q)| *q);
            match q {
                Some(q) if (t.total as f64) * (1.0 - q) < MIN_TAIL => Some(format!(
                    "the {side} run has {} values of {tag}, fewer than {MIN_TAIL} beyond {figure}; compare a lower percentile or run longer",
                    t.total
                )),
                _ => None,
            }
        }
        MetricRef::Ratio(r) => match (&s.traffic, r) {
            (None, _) => Some(format!(
                "the {side} run has no timeline.csv counts of messages sent"
            )),
            (Some(t), RatioMetric::Late) if t.late.is_none() => {
                Some(format!("the {side} run's timeline.csv has no `late` column"))
            }
            (Some(t), RatioMetric::Goodput) if t.good.is_none() => {
                Some(format!("the {side} run's timeline.csv has no `good` column"))
            }
            _ => None,
        },
    }
}

/// The value of `figure` in one resample (`tag` is the figure's position among the tags).
fn value(r: &Resample, figure: &MetricRef, tag: Option<usize>) -> Option<f64> {
    match figure {
        MetricRef::Latency { stat, .. } => r.tags.get(tag?)?.get(*stat),
        MetricRef::Ratio(RatioMetric::Errors) => Some(r.errors),
        MetricRef::Ratio(RatioMetric::Late) => Some(r.late),
        MetricRef::Ratio(RatioMetric::Goodput) => Some(r.good),
    }
}

/// Linear interpolation between the closest ranks of sorted `v`.
fn percentile(v: &[f64], p: f64) -> f64 {
    let x = p * (v.len() - 1) as f64;
    let (i, f) = (x.floor() as usize, x.fract());
    if i + 1 < v.len() {
        v[i] + (v[i + 1] - v[i]) * f
    } else {
        v[i]
    }
}

/// The interval of `draws` (whole sample first) placed around `point`.
fn interval(mut draws: Vec<f64>, point: f64, confidence: f64) -> Option<(f64, f64)> {
    let full = draws.remove(0);
    let total = draws.len();
    draws.retain(|d| d.is_finite());
    if !full.is_finite() || draws.is_empty() || (draws.len() as f64) < MIN_DEFINED * total as f64 {
        return None;
    }
    draws.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    let shift = point - full;
    Some((
        percentile(&draws, alpha) + shift,
        percentile(&draws, 1.0 - alpha) + shift,
    ))
}

/// One figure to bootstrap: the figure and the report's point delta and relative delta.
#[derive(Debug, Clone)]
pub struct Figure {
    pub metric: MetricRef,
    pub delta: Option<f64>,
    pub relative: Option<f64>,
}

/// The interval of every figure's delta, or why it has none.
pub fn delta_intervals(
    base: &Samples,
    candidate: &Samples,
    figures: &[Figure],
    opts: &BootstrapOptions,
) -> Vec<Result<DeltaInterval, String>> {
    // Tags in first-asked order; each resample merges each tag once for all its figures.
    let mut tags: Vec<String> = Vec::new();
    for f in figures {
        if let (MetricRef::Latency { .. }, Some(t)) = (&f.metric, f.metric.tag()) {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    let side_tags = |s: &Samples| -> Vec<TagBlocks> {
        tags.iter()
            .map(|t| {
                s.tags
                    .get(t)
                    .cloned()
                    .unwrap_or_else(|| TagBlocks::empty(s.blocks))
            })
            .collect()
    };
    let (bt, ct) = (side_tags(base), side_tags(candidate));
    let b = resample_side(base, &bt.iter().collect::<Vec<_>>(), 0, opts);
    let c = resample_side(candidate, &ct.iter().collect::<Vec<_>>(), 1, opts);
    figures
        .iter()
        .map(|f| {
            if let Some(why) = unavailable(base, "base", &f.metric)
                .or_else(|| unavailable(candidate, "candidate", &f.metric))
            {
                return Err(why);
            }
            let delta = f.delta.ok_or("a side has no value")?;
            let tag = f
                .metric
                .tag()
                .and_then(|t| tags.iter().position(|x| *x == t));
            let pairs: Vec<(f64, f64)> = b
                .iter()
                .zip(&c)
                .map(|(rb, rc)| {
                    let vb = value(rb, &f.metric, tag).unwrap_or(f64::NAN);
                    let vc = value(rc, &f.metric, tag).unwrap_or(f64::NAN);
                    (vb, vc)
                })
                .collect();
            let (low, high) = interval(
                pairs.iter().map(|(b, c)| c - b).collect(),
                delta,
                opts.confidence,
            )
            .ok_or("too few resamples with traffic in both runs")?;
            let relative = f.relative.and_then(|point| {
                let rel = pairs
                    .iter()
                    .map(|(b, c)| if *b > 0.0 { c / b - 1.0 } else { f64::NAN });
                // A base of 0 in any resample leaves the relative delta undefined there.
                let rel: Vec<f64> = rel.collect();
                rel.iter()
                    .all(|r| r.is_finite())
                    .then(|| interval(rel, point, opts.confidence))
                    .flatten()
            });
            Ok(DeltaInterval {
                low,
                high,
                relative_low: relative.map(|r| r.0),
                relative_high: relative.map(|r| r.1),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockCounts;
    use crate::counts::Counts;
    use crate::decode::PayloadDecoder;
    use surge_record::hlog::encode_histogram;

    /// Blocks of random intervals, and the same intervals as report counts.
    fn blocks(n: usize, seed: u64) -> (TagBlocks, Counts) {
        let mut d = PayloadDecoder::new();
        let (mut b, mut counts) = (BlockCounts::default(), Counts::default());
        let mut rng = SplitMix(seed);
        for second in 0..3 * n {
            let mut h = surge_record::new_histogram();
            for _ in 0..40 {
                h.record(1 + rng.next() % (1 + (second as u64 % 5) * 400_000))
                    .unwrap();
            }
            let text = encode_histogram(&h).unwrap();
            b.add(second / 3, d.decode(&text).unwrap());
            counts.add(d.decode(&text).unwrap());
        }
        b.finish();
        (flatten(&b, n), counts)
    }

    #[test]
    fn the_whole_sample_gives_the_reports_figures_exactly() {
        let (t, counts) = blocks(12, 5);
        let row = crate::analysis::latency_row("e2e", &counts.histogram(), 1.0);
        let values = BucketValues::new(t.width);
        let mut scratch = Scratch {
            coarse: vec![0; t.bins()],
            fine: [0; FINE],
        };
        let drawn = |w| (0..12).map(|k| (k, w)).collect::<Vec<_>>();
        let all = tag_stats(&t, &drawn(1), &mut scratch, &values);
        assert_eq!(all.quantiles, [row.p50, row.p90, row.p99, row.p999]);
        assert!(
            (all.mean - row.mean).abs() < 5e-4,
            "{} {}",
            all.mean,
            row.mean
        );
        assert!(
            scratch.coarse.iter().all(|&n| n == 0),
            "scratch is left zeroed"
        );
        // A block drawn twice counts twice: the same as doubling every block.
        let twice = tag_stats(&t, &drawn(2), &mut scratch, &values);
        assert_eq!(twice.quantiles, all.quantiles);
        // Some blocks only: the same as the report of those blocks' intervals alone.
        let (some, counts) = blocks(4, 5);
        let first4 = tag_stats(&t, &drawn(1)[..4], &mut scratch, &values);
        let row = crate::analysis::latency_row("e2e", &counts.histogram(), 1.0);
        assert_eq!(first4.quantiles, [row.p50, row.p90, row.p99, row.p999]);
        assert!(some.total < t.total);
    }

    #[test]
    fn draws_are_uniform_and_fixed_by_seed_side_and_resample() {
        let mut hits = [0u32; 10];
        let mut rng = SplitMix::new(1, 0, 0);
        for _ in 0..100_000 {
            hits[rng.below(10)] += 1;
        }
        assert!(
            hits.iter().all(|&h| (9_500..10_500).contains(&h)),
            "{hits:?}"
        );
        let first = |seed, side, b| SplitMix::new(seed, side, b).next();
        assert_eq!(first(1, 0, 7), first(1, 0, 7));
        assert_ne!(first(1, 0, 7), first(1, 1, 7));
        assert_ne!(first(1, 0, 7), first(1, 0, 8));
        assert_ne!(first(1, 0, 7), first(2, 0, 7));
    }

    #[test]
    fn percentile_interpolates_between_ranks() {
        let v = [0.0, 10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile(&v, 0.0), 0.0);
        assert_eq!(percentile(&v, 0.5), 20.0);
        assert_eq!(percentile(&v, 0.125), 5.0);
        assert_eq!(percentile(&v, 1.0), 40.0);
        // Placed around the point: the whole-sample draw (first) says where the centre is.
        let (lo, hi) = interval(vec![20.0, 0.0, 10.0, 20.0, 30.0, 40.0], 25.0, 0.5).unwrap();
        assert_eq!((lo, hi), (15.0, 35.0));
    }
}
