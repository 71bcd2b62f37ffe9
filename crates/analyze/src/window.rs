//! Time: where an interval falls — inside the window or not, which stage, which chart bucket.
//!
//! Why it exists: every figure of a report is "this metric over that span of time", and the
//! spans must be decided before the logs are read, so each interval histogram is added
//! exactly once to the right place while streaming. Times here are seconds since the run
//! start (the earliest `started_at` of the directories given), which is how stage boundaries
//! (`resolved_profile.traffic.stages[].duration`, cumulative) and `--from/--to` are written.
//! An interval belongs to the span holding its *start*; intervals after the last stage end
//! (a simulator draining, a generator finishing) count toward the last stage.
//!
//! The same layout cuts the window into the blocks `surge compare`'s bootstrap resamples
//! (see [`crate::noise`]): a few seconds each, so that neighbouring seconds, which are
//! correlated, stay together.

use serde::Serialize;

/// Aim for about this many points on a chart over time.
pub const CHART_POINTS: f64 = 240.0;

/// A named span of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    pub name: String,
    /// Seconds since the run start.
    pub start_s: f64,
    pub end_s: f64,
}

/// The time layout of one report.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Run start, seconds since the Unix epoch.
    pub origin_s: f64,
    /// Window start (seconds since run start).
    pub from_s: f64,
    /// Window end, exclusive; infinite when open.
    pub to_s: f64,
    /// Stages in order; never empty (a run without stages has one called `all`).
    pub stages: Vec<Stage>,
    /// Width of one chart bucket, whole seconds.
    pub bucket_s: f64,
    /// Width of one bootstrap block, whole seconds (see [`block_length`]).
    pub block_s: f64,
}

/// Where one interval goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub stage: usize,
    pub bucket: usize,
    /// Bootstrap block, counted from the window start.
    pub block: usize,
}

/// Seconds per bootstrap block for a window of `span_s` seconds: the cube root of the span
/// (the rate at which the best block length of a block bootstrap grows with the series,
/// Hall, Horowitz & Jing 1995), rounded, but short enough to leave ten blocks.
pub fn block_length(span_s: f64) -> f64 {
    let most = (span_s / 10.0).floor().max(1.0);
    span_s.max(1.0).cbrt().round().clamp(1.0, most)
}

impl Grid {
    /// `expected_s` is how long the run is expected to be (for the chart resolution).
    pub fn new(
        origin_s: f64,
        from_s: Option<f64>,
        to_s: Option<f64>,
        stages: Vec<Stage>,
        expected_s: f64,
    ) -> Grid {
        let from_s = from_s.unwrap_or(0.0).max(0.0);
        let to_s = to_s.unwrap_or(f64::INFINITY);
        let span = if to_s.is_finite() {
            to_s - from_s
        } else {
            (expected_s - from_s).max(1.0)
        };
        let stages = if stages.is_empty() {
            vec![Stage {
                name: "all".to_string(),
                start_s: 0.0,
                end_s: expected_s.max(0.0),
            }]
        } else {
            stages
        };
        Grid {
            origin_s,
            from_s,
            to_s,
            stages,
            bucket_s: (span / CHART_POINTS).ceil().max(1.0),
            block_s: block_length(span),
        }
    }

    /// Place an interval starting at `abs_start_s` (Unix seconds); `None` outside the window.
    pub fn place(&self, abs_start_s: f64) -> Option<Place> {
        let t = abs_start_s - self.origin_s;
        // Millisecond tolerance: hlog timestamps carry three decimals.
        let t = (t * 1000.0).round() / 1000.0;
        if t < self.from_s || t >= self.to_s {
            return None;
        }
        let stage = self
            .stages
            .iter()
            .position(|s| t < s.end_s)
            .unwrap_or(self.stages.len() - 1);
        let bucket = ((t - self.from_s) / self.bucket_s).floor() as usize;
        let block = ((t - self.from_s) / self.block_s).floor() as usize;
        Some(Place {
            stage,
            bucket,
            block,
        })
    }

    /// Start of chart bucket `i`, seconds since run start.
    pub fn bucket_start(&self, i: usize) -> f64 {
        self.from_s + i as f64 * self.bucket_s
    }
}

/// Stages from a resolved profile (`traffic.stages[]` with `name` and `duration`).
pub fn stages_of(resolved_profile: &serde_json::Value) -> Vec<Stage> {
    let mut t = 0.0;
    let mut out = Vec::new();
    let stages = resolved_profile
        .pointer("/traffic/stages")
        .and_then(|s| s.as_array());
    for (i, s) in stages.into_iter().flatten().enumerate() {
        let Some(d) = s
            .get("duration")
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse::<surge_profile::Duration>().ok())
        else {
            continue;
        };
        let name = s
            .get("name")
            .and_then(|n| n.as_str())
            .map_or_else(|| format!("stage {}", i + 1), str::to_string);
        let end = t + d.as_secs_f64();
        out.push(Stage {
            name,
            start_s: t,
            end_s: end,
        });
        t = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(from: Option<f64>, to: Option<f64>) -> Grid {
        let stages = stages_of(&serde_json::json!({"traffic": {"stages": [
            {"name": "ramp", "duration": "15s"},
            {"name": "steady", "duration": "1m15s"},
        ]}}));
        Grid::new(1000.0, from, to, stages, 90.0)
    }

    #[test]
    fn stages_are_cumulative_and_last_one_absorbs_the_tail() {
        let g = grid(None, None);
        assert_eq!(g.stages[1].start_s, 15.0);
        assert_eq!(g.stages[1].end_s, 90.0);
        assert_eq!(g.place(1000.0).unwrap().stage, 0);
        assert_eq!(g.place(1014.999).unwrap().stage, 0);
        assert_eq!(g.place(1015.0).unwrap().stage, 1);
        assert_eq!(g.place(1092.0).unwrap().stage, 1);
        assert_eq!(g.bucket_s, 1.0);
        assert_eq!(g.place(1092.0).unwrap().bucket, 92);
    }

    #[test]
    fn window_is_half_open() {
        let g = grid(Some(10.0), Some(20.0));
        assert!(g.place(1009.999).is_none());
        assert_eq!(g.place(1010.0).unwrap().bucket, 0);
        assert!(g.place(1019.999).is_some());
        assert!(g.place(1020.0).is_none());
    }

    #[test]
    fn long_runs_get_coarser_buckets() {
        let g = Grid::new(0.0, None, None, Vec::new(), 7200.0);
        assert_eq!(g.bucket_s, 30.0);
        assert_eq!(g.stages[0].name, "all");
        assert_eq!(g.place(7199.0).unwrap().bucket, 239);
    }

    #[test]
    fn blocks_grow_with_the_cube_root_and_leave_ten() {
        assert_eq!(block_length(7200.0), 19.0);
        assert_eq!(block_length(600.0), 8.0);
        assert_eq!(block_length(30.0), 3.0);
        assert_eq!(block_length(20.0), 2.0);
        assert_eq!(block_length(5.0), 1.0);
        let g = grid(Some(10.0), None);
        assert_eq!(g.block_s, 4.0);
        assert_eq!(g.place(1010.0).unwrap().block, 0);
        assert_eq!(g.place(1017.5).unwrap().block, 1);
    }
}
