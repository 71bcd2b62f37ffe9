//! Hand-written SVG charts: lines over time, a percentile distribution on a 1/(1−q) axis,
//! grouped bars.
//!
//! Why it exists: the HTML report must be one self-contained file that opens anywhere (CI
//! artifacts, mail). Three chart shapes with fixed styling are a few hundred lines of plain
//! string building — smaller and more predictable than a plotting library, byte-for-byte
//! deterministic for snapshot tests, and every drawn number also sits in the DOM as text
//! (`<title>` and labels), so a headless browser can check the chart carries the run's figures.

use std::fmt::Write as _;

use crate::fmt;
use crate::render::junit::xml_escape as esc;

const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 44.0;
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// How x values are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Seconds since the run start.
    Time,
    /// Quantiles 0–1, placed at log10(1/(1−q)) like the HdrHistogram plotter.
    InverseQuantile,
    /// Offered load in messages per minute (a sweep's steps).
    RatePerMinute,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A labelled point drawn on top of the lines (e.g. `p99 720.4 ms`).
#[derive(Debug, Clone)]
pub struct Mark {
    pub x: f64,
    pub y: f64,
    pub label: String,
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub id: String,
    pub title: String,
    pub y_unit: String,
    pub x_axis: XAxis,
    pub lines: Vec<Line>,
    pub marks: Vec<Mark>,
    /// Fixed x range (time charts share the window's range); `None` fits the data.
    pub x_range: Option<(f64, f64)>,
}

/// A "nice" tick step for a span: 1, 2 or 5 × 10^k, about `n` ticks.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let f = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * mag
}

fn tick_label(v: f64) -> String {
    if v.abs() >= 1000.0 {
        fmt::num(v)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn quantile_label(decades: i32) -> String {
    // 1/(1-q) = 10^d  →  q = 1 - 10^-d
    match decades {
        0 => "0%".to_string(),
        d => {
            let nines = "9".repeat((d - 2).max(0) as usize);
            if d == 1 {
                "90%".to_string()
            } else {
                format!("99{}{}%", if d > 2 { "." } else { "" }, nines)
            }
        }
    }
}

struct Frame {
    x0: f64,
    x1: f64,
    y1: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let span = if self.x1 > self.x0 {
            self.x1 - self.x0
        } else {
            1.0
        };
        LEFT + (x - self.x0) / span * (W - LEFT - RIGHT)
    }
    fn py(&self, y: f64) -> f64 {
        let span = if self.y1 > 0.0 { self.y1 } else { 1.0 };
        H - BOTTOM - (y / span) * (H - TOP - BOTTOM)
    }
}

fn open(out: &mut String, id: &str, title: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">\n<title>{}</title>\n<text class=\"chart-title\" x=\"{LEFT}\" y=\"20\">{}</text>\n",
        esc(id),
        esc(title),
        esc(title),
        esc(title)
    );
}

/// Legend entries left to right under the title, wrapping onto a second row if needed.
fn legend(out: &mut String, names: &[&str]) {
    let (mut x, mut y) = (LEFT, 36.0);
    for (i, name) in names.iter().enumerate() {
        let w = 16.0 + 6.5 * name.chars().count() as f64 + 14.0;
        if x + w > W - RIGHT && x > LEFT {
            (x, y) = (LEFT, y + 12.0);
        }
        let color = PALETTE[i % PALETTE.len()];
        let _ = writeln!(
            out,
            "<g class=\"legend\"><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"4\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{y:.1}\">{}</text></g>",
            y - 4.0,
            x + 16.0,
            esc(name)
        );
        x += w;
    }
}

fn y_axis(out: &mut String, f: &Frame, unit: &str) {
    let step = nice_step(f.y1, 5.0);
    let mut v = 0.0;
    while v <= f.y1 + step * 1e-9 {
        let y = f.py(v);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            tick_label(v)
        );
        v += step;
    }
    let _ = writeln!(
        out,
        "<text class=\"axis-label\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        (TOP + H - BOTTOM) / 2.0,
        esc(unit)
    );
}

fn x_axis(out: &mut String, f: &Frame, axis: XAxis) {
    let base = H - BOTTOM;
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{base}\" y2=\"{base}\"/>",
        W - RIGHT
    );
    let mut tick = |x: f64, label: String| {
        let px = f.px(x);
        let _ = writeln!(
            out,
            "<line class=\"axis\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{base}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            base + 4.0,
            base + 16.0
        );
    };
    match axis {
        XAxis::Time | XAxis::RatePerMinute => {
            let step = nice_step(f.x1 - f.x0, 8.0);
            let mut v = (f.x0 / step).ceil() * step;
            while v <= f.x1 + step * 1e-9 {
                tick(v, tick_label(v));
                v += step;
            }
        }
        XAxis::InverseQuantile => {
            for d in 0..=(f.x1.round() as i32) {
                tick(f64::from(d), quantile_label(d));
            }
        }
    }
    let label = match axis {
        XAxis::Time => "seconds since start",
        XAxis::RatePerMinute => "offered messages per minute",
        XAxis::InverseQuantile => "percentile (log scale of 1/(1−q))",
    };
    let _ = writeln!(
        out,
        "<text class=\"axis-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
        (LEFT + W - RIGHT) / 2.0,
        H - 6.0
    );
}

impl LineChart {
    fn x_of(&self, x: f64, cap: f64) -> f64 {
        match self.x_axis {
            XAxis::Time | XAxis::RatePerMinute => x,
            XAxis::InverseQuantile => {
                if x >= 1.0 {
                    cap
                } else {
                    (1.0 / (1.0 - x)).log10().min(cap)
                }
            }
        }
    }

    /// The SVG element.
    pub fn render(&self) -> String {
        let all = || self.lines.iter().flat_map(|l| l.points.iter());
        let (x0, x1, cap) = match self.x_axis {
            XAxis::Time if self.x_range.is_some() => {
                let (lo, hi) = self.x_range.unwrap_or((0.0, 1.0));
                (lo, hi.max(lo + 1.0), 0.0)
            }
            XAxis::Time | XAxis::RatePerMinute => {
                let lo = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
                let hi = all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
                if lo.is_finite() {
                    (lo, hi.max(lo + 1.0), 0.0)
                } else {
                    (0.0, 1.0, 0.0)
                }
            }
            XAxis::InverseQuantile => {
                let finite = all()
                    .filter(|p| p.0 < 1.0)
                    .map(|p| (1.0 / (1.0 - p.0)).log10())
                    .fold(1.0, f64::max);
                let cap = finite.ceil().max(1.0);
                (0.0, cap, cap)
            }
        };
        let ymax = all().map(|p| p.1).fold(0.0, f64::max);
        let step = nice_step(ymax * 1.05, 5.0);
        let y1 = ((ymax * 1.05) / step).ceil() * step;
        let f = Frame {
            x0,
            x1,
            y1: if y1 > 0.0 { y1 } else { 1.0 },
        };

        let mut out = String::new();
        open(&mut out, &self.id, &self.title);
        y_axis(&mut out, &f, &self.y_unit);
        x_axis(&mut out, &f, self.x_axis);
        let names: Vec<&str> = self.lines.iter().map(|l| l.name.as_str()).collect();
        legend(&mut out, &names);
        for (i, line) in self.lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let mut pts = String::new();
            for &(x, y) in &line.points {
                let _ = write!(pts, "{:.1},{:.1} ", f.px(self.x_of(x, cap)), f.py(y));
            }
            let peak = line
                .points
                .iter()
                .map(|p| p.1)
                .fold(f64::NEG_INFINITY, f64::max);
            let _ = writeln!(
                out,
                "<polyline class=\"series\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.6\" points=\"{}\"><title>{} (highest {})</title></polyline>",
                pts.trim_end(),
                esc(&line.name),
                tick_label(peak)
            );
        }
        for m in &self.marks {
            let (px, py) = (f.px(self.x_of(m.x, cap)), f.py(m.y));
            let (tx, anchor) = if px < W / 2.0 {
                (px + 5.0, "start")
            } else {
                (px - 5.0, "end")
            };
            let _ = writeln!(
                out,
                "<g class=\"mark\"><circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3\"/><text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text></g>",
                py - 5.0,
                esc(&m.label)
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

/// Grouped bars: one group per category, one bar per series.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub id: String,
    pub title: String,
    pub y_unit: String,
    pub categories: Vec<String>,
    /// `(series name, one value per category)`.
    pub series: Vec<(String, Vec<f64>)>,
}

impl BarChart {
    pub fn render(&self) -> String {
        let ymax = self
            .series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .fold(0.0, f64::max);
        let step = nice_step(ymax * 1.1, 5.0);
        let y1 = ((ymax * 1.1) / step).ceil() * step;
        let f = Frame {
            x0: 0.0,
            x1: 1.0,
            y1: if y1 > 0.0 { y1 } else { 1.0 },
        };
        let mut out = String::new();
        open(&mut out, &self.id, &self.title);
        y_axis(&mut out, &f, &self.y_unit);
        let names: Vec<&str> = self.series.iter().map(|s| s.0.as_str()).collect();
        legend(&mut out, &names);
        let n = self.categories.len().max(1) as f64;
        let group_w = (W - LEFT - RIGHT) / n;
        let bar_w = (group_w * 0.8) / self.series.len().max(1) as f64;
        let base = H - BOTTOM;
        for (c, cat) in self.categories.iter().enumerate() {
            let gx = LEFT + c as f64 * group_w + group_w * 0.1;
            for (s, (name, values)) in self.series.iter().enumerate() {
                let Some(&v) = values.get(c) else { continue };
                let x = gx + s as f64 * bar_w;
                let y = f.py(v);
                let _ = writeln!(
                    out,
                    "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                    (bar_w - 2.0).max(1.0),
                    (base - y).max(0.0),
                    PALETTE[s % PALETTE.len()],
                    esc(cat),
                    esc(name),
                    tick_label(v)
                );
            }
            let _ = writeln!(
                out,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                gx + group_w * 0.4,
                base + 16.0,
                esc(cat)
            );
        }
        let _ = writeln!(
            out,
            "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{base}\" y2=\"{base}\"/>",
            W - RIGHT
        );
        out.push_str("</svg>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_and_labels() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(quantile_label(0), "0%");
        assert_eq!(quantile_label(1), "90%");
        assert_eq!(quantile_label(2), "99%");
        assert_eq!(quantile_label(3), "99.9%");
        assert_eq!(quantile_label(5), "99.999%");
    }

    #[test]
    fn charts_are_well_formed_svg_with_their_numbers() {
        let c = LineChart {
            id: "d".into(),
            title: "e2e <distribution>".into(),
            y_unit: "ms".into(),
            x_axis: XAxis::InverseQuantile,
            lines: vec![Line {
                name: "e2e".into(),
                points: vec![(0.0, 1.0), (0.5, 2.0), (0.99, 9.0), (1.0, 10.0)],
            }],
            marks: vec![Mark {
                x: 0.99,
                y: 9.0,
                label: "p99 9.000 ms".into(),
            }],
            x_range: None,
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg class=\"chart\""));
        assert!(svg.contains("e2e &lt;distribution&gt;"));
        assert!(svg.contains("p99 9.000 ms"));
        assert!(svg.contains(">99%<"));
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
    }
}
