//! What a calibration hands back: the fitted system model as TOML that `[system] file =`
//! accepts unchanged (every fitted key commented with its value, start, runs and fit
//! error), and the fit report — per figure measured against simulated, per scope the mean
//! absolute percentage error, worst first.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use surge_profile::SystemModel;

use crate::figures;
use crate::fit::{Fitted, Identified, Problem, Unidentified};
use crate::keys::{self, Holding, Key};
use crate::runs::MeasuredRun;

/// How a key got its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum How {
    /// Fitted on its own.
    Fitted,
    /// Fitted as one with these keys: the runs identify their combined effect only, so
    /// they keep the proportions they started with.
    FittedWith { keys: Vec<String> },
    /// Read off the server's telemetry.
    Observed { from: String },
}

/// One key of the fitted model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FittedKey {
    pub key: String,
    pub start: String,
    pub fitted: String,
    pub how: How,
    /// The runs whose figures the key moves.
    pub runs: Vec<String>,
    /// Mean absolute percentage error of the figures it moves, fitted (fraction).
    pub fit_error: Option<f64>,
}

/// One figure, measured and simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureFit {
    pub run: String,
    pub scope: String,
    pub metric: String,
    pub measured: f64,
    /// Simulated on the starting model.
    pub start: Option<f64>,
    /// Simulated on the fitted model.
    pub fitted: Option<f64>,
    /// `fitted / measured - 1` (the difference for the error ratio).
    pub error: Option<f64>,
    /// Whether the fit matched this figure (inter-token gaps are only reported).
    pub matched: bool,
}

/// How well one scope of one run fits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeFit {
    pub run: String,
    pub scope: String,
    pub figures: usize,
    /// Mean absolute percentage error of its figures, start and fitted (fractions).
    pub mape_start: f64,
    pub mape: f64,
}

/// A finished calibration.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub profile: String,
    pub seed: u64,
    pub runs: Vec<RunUsed>,
    pub keys: Vec<FittedKey>,
    pub unidentified: Vec<Unidentified>,
    pub warnings: Vec<String>,
    /// Mean absolute percentage error over every figure, start and fitted (fractions).
    pub mape_start: f64,
    pub mape: f64,
    /// Worst first.
    pub scopes: Vec<ScopeFit>,
    pub figures: Vec<FigureFit>,
    /// Replays of the run set the fit took.
    pub evaluations: usize,
    #[serde(skip)]
    pub system: SystemModel,
}

/// A run the calibration learnt from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunUsed {
    pub label: String,
    pub dir: String,
    pub sent_per_s: f64,
    pub answered: u64,
    pub replays: usize,
    pub telemetry: bool,
}

/// Warnings for runs whose own system model differs from the start in keys not fitted.
pub fn differences(runs: &[MeasuredRun], start: &SystemModel, keys: &[Key]) -> Vec<String> {
    let base = serde_json::to_value(start).expect("the system model serializes");
    let mut out = Vec::new();
    for run in runs {
        let Some(system) = &run.system else {
            out.push(format!(
                "{}: its resolved system model cannot be read; it is replayed on the starting one",
                run.label
            ));
            continue;
        };
        let theirs = serde_json::to_value(system).expect("the system model serializes");
        let mut differ = Vec::new();
        diff(&base, &theirs, String::new(), &mut differ);
        differ.retain(|path| !keys.iter().any(|k| &k.path == path));
        if !differ.is_empty() {
            let shown = differ
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let more = differ.len().saturating_sub(8);
            out.push(format!(
                "{}: its system model differs from the starting one in keys not being fitted: \
                 {shown}{}; the fit replays it on the starting model",
                run.label,
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
    }
    out
}

fn diff(a: &serde_json::Value, b: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let mut names: Vec<&String> = x.keys().chain(y.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                let path = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
                match (x.get(name), y.get(name)) {
                    (Some(p), Some(q)) => diff(p, q, path, out),
                    _ => out.push(path),
                }
            }
        }
        _ if a != b => out.push(at),
        _ => {}
    }
}

fn mape<'a>(errors: impl Iterator<Item = &'a FigureFit>, start: bool) -> (f64, usize) {
    let values: Vec<f64> = errors
        .filter(|f| f.matched && f.metric != "errors.ratio")
        .filter_map(|f| {
            let sim = if start { f.start } else { f.fitted };
            sim.map(|s| (s / f.measured - 1.0).abs())
        })
        .collect();
    if values.is_empty() {
        (0.0, 0)
    } else {
        (
            values.iter().sum::<f64>() / values.len() as f64,
            values.len(),
        )
    }
}

fn holding_text(h: &Holding) -> String {
    match h.value(1.0, 1.0) {
        surge_plan::Value::Text(s) => s,
        v => v.to_string(),
    }
}

/// Puts the report together.
pub fn assemble(
    problem: &Problem<'_>,
    id: &Identified,
    fitted: Fitted,
    warnings: Vec<String>,
    profile: &Path,
    seed: u64,
) -> Calibration {
    let runs = problem.runs;
    let figure_fits: Vec<FigureFit> = problem
        .figures
        .iter()
        .enumerate()
        .map(|(i, f)| FigureFit {
            run: runs[f.run].label.clone(),
            scope: f.scope.clone(),
            metric: f.metric.clone(),
            measured: f.measured,
            start: fitted.start.simulated[i],
            fitted: fitted.best.simulated[i],
            error: figures::error(f, fitted.best.simulated[i]),
            matched: f.weight > 0.0,
        })
        .collect();
    let mut scopes: Vec<ScopeFit> = Vec::new();
    for f in &figure_fits {
        if !scopes.iter().any(|s| s.run == f.run && s.scope == f.scope) {
            let of_scope = || {
                figure_fits
                    .iter()
                    .filter(|g| g.run == f.run && g.scope == f.scope)
            };
            let (m, n) = mape(of_scope(), false);
            if n == 0 {
                continue;
            }
            scopes.push(ScopeFit {
                run: f.run.clone(),
                scope: f.scope.clone(),
                figures: n,
                mape_start: mape(of_scope(), true).0,
                mape: m,
            });
        }
    }
    scopes.sort_by(|a, b| b.mape.total_cmp(&a.mape));

    let fitted_settings = keys::settings(&problem.keys, &id.params, &fitted.point);
    let mut out_keys = Vec::new();
    for (k, key) in problem.keys.iter().enumerate() {
        let Some(setting) = fitted_settings.iter().find(|s| s.path == key.path) else {
            continue;
        };
        let how = if let Some((_, _, from)) = id.observed.iter().find(|(i, _, _)| *i == k) {
            How::Observed { from: from.clone() }
        } else if let Some(group) = id.merged.iter().find(|g| g.contains(&k)) {
            How::FittedWith {
                keys: group
                    .iter()
                    .filter(|&&i| i != k)
                    .map(|&i| problem.keys[i].path.clone())
                    .collect(),
            }
        } else {
            How::Fitted
        };
        let moved = &id.moves[k];
        let mut run_labels: Vec<String> = moved
            .iter()
            .map(|&i| runs[problem.figures[i].run].label.clone())
            .collect();
        run_labels.dedup();
        let fit_error =
            (!moved.is_empty()).then(|| mape(moved.iter().map(|&i| &figure_fits[i]), false).0);
        out_keys.push(FittedKey {
            key: key.path.clone(),
            start: holding_text(&key.start),
            fitted: match &setting.value {
                surge_plan::Value::Text(s) => s.clone(),
                v => v.to_string(),
            },
            how,
            runs: run_labels,
            fit_error,
        });
    }
    let mut unidentified = id.unidentified.clone();
    unidentified.sort_by(|a, b| a.key.cmp(&b.key));
    Calibration {
        profile: profile.display().to_string(),
        seed,
        runs: runs
            .iter()
            .zip(&problem.seeds)
            .map(|(r, s)| RunUsed {
                label: r.label.clone(),
                dir: r.dir.display().to_string(),
                sent_per_s: r.load(),
                answered: r.summary.counts.completed,
                replays: s.len(),
                telemetry: r.telemetry.busy_workers.is_some()
                    || r.telemetry.tasks_running.is_some(),
            })
            .collect(),
        keys: out_keys,
        unidentified,
        warnings,
        mape_start: mape(figure_fits.iter(), true).0,
        mape: mape(figure_fits.iter(), false).0,
        scopes,
        figures: figure_fits,
        evaluations: problem.evaluations(),
        system: fitted.system,
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

impl Calibration {
    /// The fitted system model as TOML, each fitted key with a comment.
    pub fn toml(&self) -> String {
        let body = toml::to_string(&self.system).expect("the system model serializes as TOML");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# System model fitted by `surge calibrate` from {} measured run{}, starting from {}.",
            self.runs.len(),
            if self.runs.len() == 1 { "" } else { "s" },
            self.profile
        );
        for r in &self.runs {
            let _ = writeln!(out, "#   {} ({:.1} messages/s)", r.label, r.sent_per_s);
        }
        let _ = writeln!(
            out,
            "# Fit: mean absolute error {} (the starting model: {}), seed {}.",
            percent(self.mape),
            percent(self.mape_start),
            self.seed
        );
        if !self.unidentified.is_empty() {
            out.push_str("# Not identified by these runs (kept as written):\n");
            for u in &self.unidentified {
                let _ = writeln!(out, "#   {}: {}", u.key, u.reason);
            }
        }
        out.push_str("# Use it with `[system] file = \"<this file>\"` in a profile.\n\n");
        let mut table = String::new();
        for line in body.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                table = trimmed.trim_matches(|c| c == '[' || c == ']').to_string();
            }
            out.push_str(line);
            if let Some((name, _)) = trimmed.split_once(" = ") {
                let path = if table.is_empty() {
                    name.to_string()
                } else {
                    format!("{table}.{name}")
                };
                if let Some(k) = self.keys.iter().find(|k| k.key == path) {
                    let _ = write!(out, "  # {}", k.comment());
                }
            }
            out.push('\n');
        }
        out
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "calibrated {} from {} run{} in {} replays: mean absolute error {} (start {})",
            self.profile,
            self.runs.len(),
            if self.runs.len() == 1 { "" } else { "s" },
            self.evaluations,
            percent(self.mape),
            percent(self.mape_start)
        );
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        let _ = writeln!(s, "\nkeys");
        for k in &self.keys {
            let _ = writeln!(
                s,
                "  {:<36} {:>28} -> {:<28} {}",
                k.key,
                k.start,
                k.fitted,
                k.how_text()
            );
        }
        if !self.unidentified.is_empty() {
            let _ = writeln!(s, "\nnot identified (kept as written)");
            for u in &self.unidentified {
                let _ = writeln!(s, "  {}: {}", u.key, u.reason);
            }
        }
        let _ = writeln!(
            s,
            "\nfit by scope, worst first (mean absolute error: fitted, start)"
        );
        for sc in &self.scopes {
            let _ = writeln!(
                s,
                "  {:<40} {:<18} {:>7} {:>7}  ({} figures)",
                sc.run,
                sc.scope,
                percent(sc.mape),
                percent(sc.mape_start),
                sc.figures
            );
        }
        let _ = writeln!(
            s,
            "\nfigures (ms; errors as a ratio; * reported, not matched)"
        );
        let _ = writeln!(
            s,
            "  {:<40} {:<18} {:<18} {:>10} {:>10} {:>10} {:>8}",
            "run", "scope", "metric", "measured", "start", "fitted", "error"
        );
        let show = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.4}"));
        let show_ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
        for f in &self.figures {
            let ratio = f.metric == "errors.ratio" || f.metric == "busy_workers.mean";
            let fmt = |v| if ratio { show(v) } else { show_ms(v) };
            let _ = writeln!(
                s,
                "  {:<40} {:<18} {:<18} {:>10} {:>10} {:>10} {:>8}",
                f.run,
                f.scope,
                if f.matched {
                    f.metric.clone()
                } else {
                    format!("{}*", f.metric)
                },
                fmt(Some(f.measured)),
                fmt(f.start),
                fmt(f.fitted),
                f.error.map_or_else(
                    || "-".into(),
                    |e| if f.metric == "errors.ratio" {
                        format!("{:+.4}", e)
                    } else {
                        format!("{:+.1}%", e * 100.0)
                    }
                )
            );
        }
        s
    }
}

impl FittedKey {
    fn how_text(&self) -> String {
        match &self.how {
            How::Fitted => "fitted".into(),
            How::FittedWith { keys } => format!("fitted as one with {}", keys.join(", ")),
            How::Observed { from } => format!("observed: {from}"),
        }
    }

    /// The TOML comment of the key.
    fn comment(&self) -> String {
        let error = self
            .fit_error
            .map_or_else(String::new, |e| format!("; fit error {}", percent(e)));
        let runs = if self.runs.is_empty() {
            String::new()
        } else {
            format!(" from {}", self.runs.join(", "))
        };
        match &self.how {
            How::Observed { from } => {
                format!("observed {} (start {}): {from}", self.fitted, self.start)
            }
            How::Fitted => format!("fitted {} (start {}){runs}{error}", self.fitted, self.start),
            How::FittedWith { keys } => format!(
                "fitted {} (start {}){runs}{error}; as one with {}: the runs identify their sum only",
                self.fitted,
                self.start,
                keys.join(", ")
            ),
        }
    }
}
