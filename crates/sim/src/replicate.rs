//! Independent replications and their confidence intervals.
//!
//! One run of a stochastic model is one sample. Replications run the same profile with
//! different seeds (`seed`, `seed + 1`, …) on a few threads and report, for each headline
//! figure, the mean and the half-width of its 95 % Student-t confidence interval. Results
//! are ordered by seed, so the outcome does not depend on thread timing.

use serde::Serialize;

use crate::report::SimReport;

/// Mean and 95 % confidence interval of one figure over the replications.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub name: String,
    pub mean: f64,
    /// Half-width of the 95 % Student-t interval (`NaN` with fewer than two values).
    pub half_width: f64,
    pub values: Vec<f64>,
}

impl Estimate {
    pub fn from_values(name: impl Into<String>, values: Vec<f64>) -> Self {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let half_width = if n < 2 {
            f64::NAN
        } else {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            student_t_975(n - 1) * (var / n as f64).sqrt()
        };
        Self {
            name: name.into(),
            mean,
            half_width,
            values,
        }
    }

    /// Whether `x` lies inside the interval.
    pub fn contains(&self, x: f64) -> bool {
        (x - self.mean).abs() <= self.half_width
    }
}

/// The replications of one profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replications {
    pub seeds: Vec<u64>,
    pub figures: Vec<Estimate>,
}

impl Replications {
    /// Summarises reports (one per seed, in seed order).
    pub fn from_reports(reports: &[SimReport]) -> Self {
        let names: Vec<String> = reports
            .first()
            .map(|r| r.headline().into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default();
        let figures = names
            .iter()
            .map(|name| {
                let values = reports
                    .iter()
                    .filter_map(|r| r.headline().into_iter().find(|(n, _)| n == name))
                    .map(|(_, v)| v)
                    .collect();
                Estimate::from_values(name.clone(), values)
            })
            .collect();
        Self {
            seeds: reports.iter().map(|r| r.seed).collect(),
            figures,
        }
    }

    pub fn figure(&self, name: &str) -> Option<&Estimate> {
        self.figures.iter().find(|e| e.name == name)
    }
}

impl std::fmt::Display for Replications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} replications, mean ± 95% CI (Student t)",
            self.seeds.len()
        )?;
        for e in &self.figures {
            writeln!(f, "  {:<24} {:>12.5} ± {:.5}", e.name, e.mean, e.half_width)?;
        }
        Ok(())
    }
}

/// The 97.5 % quantile of Student's t with `df` degrees of freedom.
pub fn student_t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => {
            // Cornish–Fisher expansion around the normal quantile; < 1e-3 off beyond 30.
            let z: f64 = 1.959_964;
            let d = df as f64;
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_and_interval() {
        assert_eq!(student_t_975(9), 2.262);
        assert!((student_t_975(60) - 2.000).abs() < 2e-3);
        let e = Estimate::from_values("x", vec![1.0, 2.0, 3.0]);
        assert_eq!(e.mean, 2.0);
        assert!((e.half_width - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert!(e.contains(4.0) && !e.contains(4.5));
    }
}
