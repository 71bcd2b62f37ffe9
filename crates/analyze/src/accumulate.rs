//! Merged counts per tag, per stage and (for charted tags) per chart bucket.
//!
//! Why it exists: percentiles of a merged run must come from merged histograms — never from
//! averaged percentiles. Each reading thread adds decoded intervals into its own
//! [`Accumulator`] ([`Counts`] allocated once per tag and place, then reused for every
//! interval), and the threads' accumulators are added together at the end. Only `e2e` and
//! `ttft` keep per-bucket counts (the latency-over-time charts); every other tag keeps one
//! set per stage, which is all the tables need, so memory stays bounded on long runs. When
//! asked (`surge compare`'s bootstrap), every tag also keeps sparse counts per block of a few
//! seconds ([`BlockCounts`]).

use std::collections::HashMap;

use hdrhistogram::Histogram;

use crate::blocks::BlockCounts;
use crate::counts::Counts;
use crate::decode::Decoded;
use crate::window::Place;

/// Tags charted over time (p50/p99 per bucket).
pub const CHARTED_TAGS: [&str; 2] = ["e2e", "ttft"];

/// Everything recorded under one tag.
#[derive(Debug, Clone)]
pub struct TagData {
    /// The tag as written in the log (`""` for untagged lines).
    pub name: String,
    /// One set of counts per stage (`None` while empty).
    pub stages: Vec<Option<Counts>>,
    /// One set per chart bucket, for charted tags only.
    pub buckets: Vec<Option<Counts>>,
    /// Counts per bootstrap block, when the accumulator keeps them.
    pub blocks: Option<BlockCounts>,
}

impl TagData {
    /// All stages merged.
    pub fn total(&self) -> Histogram<u64> {
        let mut all = Counts::default();
        for s in self.stages.iter().flatten() {
            all.merge(s);
        }
        all.histogram()
    }

    /// One stage, if anything was recorded in it.
    pub fn stage(&self, i: usize) -> Option<Histogram<u64>> {
        self.stages.get(i)?.as_ref().map(Counts::histogram)
    }
}

/// Per-tag merged counts; see the module docs.
#[derive(Debug, Clone)]
pub struct Accumulator {
    index: HashMap<String, usize>,
    tags: Vec<TagData>,
    stages: usize,
    keep_blocks: bool,
}

fn grow<T: Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize_with(len, T::default);
    }
}

impl Accumulator {
    pub fn new(stages: usize) -> Accumulator {
        Accumulator {
            index: HashMap::new(),
            tags: Vec::new(),
            stages: stages.max(1),
            keep_blocks: false,
        }
    }

    /// Also keep every tag's counts per bootstrap block (see [`crate::blocks`]).
    pub fn with_blocks(stages: usize) -> Accumulator {
        Accumulator {
            keep_blocks: true,
            ..Accumulator::new(stages)
        }
    }

    /// Sort the block counts once every interval is in.
    pub fn finish_blocks(&mut self) {
        for t in &mut self.tags {
            if let Some(b) = &mut t.blocks {
                b.finish();
            }
        }
    }

    fn slot(&mut self, tag: &str) -> &mut TagData {
        let i = match self.index.get(tag) {
            Some(&i) => i,
            None => {
                self.tags.push(TagData {
                    name: tag.to_string(),
                    stages: vec![None; self.stages],
                    buckets: Vec::new(),
                    blocks: self.keep_blocks.then(BlockCounts::default),
                });
                self.index.insert(tag.to_string(), self.tags.len() - 1);
                self.tags.len() - 1
            }
        };
        &mut self.tags[i]
    }

    /// Add one decoded interval recorded under `tag` at `place`.
    pub fn add(&mut self, tag: &str, place: Place, decoded: Decoded<'_>) {
        let data = self.slot(tag);
        data.stages[place.stage]
            .get_or_insert_with(Counts::default)
            .add(decoded);
        if CHARTED_TAGS.contains(&tag) {
            grow(&mut data.buckets, place.bucket + 1);
            data.buckets[place.bucket]
                .get_or_insert_with(Counts::default)
                .add(decoded);
        }
        if let Some(blocks) = &mut data.blocks {
            blocks.add(place.block, decoded);
        }
    }

    /// Add another accumulator (of the same stage layout) into this one.
    pub fn merge(&mut self, other: Accumulator) {
        for theirs in other.tags {
            let ours = self.slot(&theirs.name);
            for (mine, s) in ours.stages.iter_mut().zip(theirs.stages) {
                merge_slot(mine, s);
            }
            grow(&mut ours.buckets, theirs.buckets.len());
            for (mine, b) in ours.buckets.iter_mut().zip(theirs.buckets) {
                merge_slot(mine, b);
            }
            match (&mut ours.blocks, theirs.blocks) {
                (Some(mine), Some(b)) => mine.merge(b),
                (mine @ None, b) => *mine = b,
                (Some(_), None) => {}
            }
        }
    }

    /// The data of one tag, if anything was recorded under it.
    pub fn get(&self, tag: &str) -> Option<&TagData> {
        self.index.get(tag).map(|&i| &self.tags[i])
    }

    /// Every tag, sorted by name.
    pub fn tags(&self) -> Vec<&TagData> {
        let mut v: Vec<&TagData> = self.tags.iter().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

fn merge_slot(mine: &mut Option<Counts>, theirs: Option<Counts>) {
    match (mine.as_mut(), theirs) {
        (_, None) => {}
        (None, Some(c)) => *mine = Some(c),
        (Some(m), Some(c)) => m.merge(&c),
    }
}
