//! timeline.csv arithmetic: counts over a span, peaks of gauges, series for charts.
//!
//! Why it exists: traffic counts, error classes and infrastructure use live in the timeline,
//! not in the hlogs. Rows of several directories that cover the same time (shards of one
//! run) form one *slot*: their counters and gauges add up. A row only partly inside a span
//! contributes that fraction of its counters (rows may be a minute long while a stage
//! boundary falls inside it) and its gauges as they are; a gauge's peak is the highest slot.
//! Counter columns are `sent`, `completed`, `late`, `tokens`, `abandoned`, `retries` and
//! every `errors_<class>`; the rest are gauges.

use crate::load::Row;

/// Columns that count events during their interval (summed over a span).
pub fn is_counter(column: &str) -> bool {
    matches!(
        column,
        "sent" | "completed" | "late" | "tokens" | "abandoned" | "retries"
    ) || column.starts_with("errors_")
}

/// Rows of one time slot, added across directories.
#[derive(Debug, Clone)]
pub struct Slot {
    pub start_s: f64,
    pub end_s: f64,
    /// Per column; NaN when no row of the slot has a value.
    pub values: Vec<f64>,
}

fn add_into(acc: &mut [f64], values: &[f64]) {
    for (a, &v) in acc.iter_mut().zip(values) {
        if !v.is_nan() {
            *a = if a.is_nan() { v } else { *a + v };
        }
    }
}

/// Group the rows overlapping `[from, to)` into slots (rows with the same start, to the
/// ms), clipped to the span: counters scaled by the fraction of the row inside it.
pub fn slots(rows: &[Row], columns: &[String], from_s: f64, to_s: f64) -> Vec<Slot> {
    let counter: Vec<bool> = columns.iter().map(|c| is_counter(c)).collect();
    let mut out: Vec<Slot> = Vec::new();
    for r in rows {
        let (start, end) = (r.start_s.max(from_s), r.end_s.min(to_s));
        let len = r.end_s - r.start_s;
        let inside = if len > 0.0 {
            (end - start) / len
        } else {
            f64::from(u8::from(start < to_s && r.start_s >= from_s))
        };
        if inside <= 1e-9 {
            continue;
        }
        let values: Vec<f64> = r
            .values
            .iter()
            .zip(&counter)
            .map(|(&v, &c)| if c { v * inside.min(1.0) } else { v })
            .collect();
        match out.last_mut() {
            Some(s) if (s.start_s - start).abs() < 1e-3 => {
                add_into(&mut s.values, &values);
                s.end_s = s.end_s.max(end);
            }
            _ => out.push(Slot {
                start_s: start,
                end_s: end.max(start),
                values,
            }),
        }
    }
    out
}

/// Sum of a column over slots (0 when absent everywhere).
pub fn sum(slots: &[Slot], col: usize) -> f64 {
    slots
        .iter()
        .map(|s| s.values[col])
        .filter(|v| !v.is_nan())
        .sum()
}

/// Whether any slot has a value in the column.
pub fn present(slots: &[Slot], col: usize) -> bool {
    slots.iter().any(|s| !s.values[col].is_nan())
}

/// Highest and mean slot value of a column, if present.
pub fn peak_mean(slots: &[Slot], col: usize) -> Option<(f64, f64)> {
    let vals: Vec<f64> = slots
        .iter()
        .map(|s| s.values[col])
        .filter(|v| !v.is_nan())
        .collect();
    if vals.is_empty() {
        return None;
    }
    let peak = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((peak, vals.iter().sum::<f64>() / vals.len() as f64))
}

/// Coarsen slots to at most one per `bucket_s` (counters add, gauges keep the highest).
pub fn rebucket(slots: Vec<Slot>, columns: &[String], bucket_s: f64) -> Vec<Slot> {
    let mut out: Vec<Slot> = Vec::new();
    for s in slots {
        let key = (s.start_s / bucket_s).floor();
        match out.last_mut() {
            Some(o) if (o.start_s / bucket_s).floor() == key => {
                for (i, (a, &v)) in o.values.iter_mut().zip(&s.values).enumerate() {
                    if v.is_nan() {
                        continue;
                    }
                    *a = if a.is_nan() {
                        v
                    } else if is_counter(&columns[i]) {
                        *a + v
                    } else {
                        a.max(v)
                    };
                }
                o.end_s = o.end_s.max(s.end_s);
            }
            _ => out.push(s),
        }
    }
    out
}

/// A column over time as steps: counters as per-second rates over each slot, gauges as
/// they are, each held from the slot's start to its end.
pub fn series(slots: &[Slot], columns: &[String], col: usize) -> Vec<(f64, f64)> {
    let counter = is_counter(&columns[col]);
    slots
        .iter()
        .filter(|s| !s.values[col].is_nan())
        .flat_map(|s| {
            let v = s.values[col];
            let len = s.end_s - s.start_s;
            let y = if counter && len > 0.0 { v / len } else { v };
            [(s.start_s, y), (s.end_s, y)]
        })
        .collect()
}

/// The capacity column that belongs to a use column, by surge's naming conventions
/// (`ddb_wru_per_s` ↔ `ddb_wru_capacity`, `bedrock_tokens_per_min:M` ↔
/// `bedrock_capacity_per_min:M`).
pub fn capacity_of(column: &str, columns: &[String]) -> Option<usize> {
    let candidates = [
        column
            .strip_suffix("_per_s")
            .map(|b| format!("{b}_capacity")),
        column
            .strip_prefix("bedrock_tokens_per_min")
            .map(|m| format!("bedrock_capacity_per_min{m}")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|c| columns.iter().position(|x| *x == c))
}

/// Whether a column is the capacity side of a pair.
pub fn is_capacity(column: &str) -> bool {
    column.ends_with("_capacity") || column.starts_with("bedrock_capacity_per_min")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(start: f64, end: f64, v: &[f64]) -> Row {
        Row {
            start_s: start,
            end_s: end,
            values: v.to_vec(),
        }
    }

    #[test]
    fn shards_add_up_per_slot() {
        let columns: Vec<String> = ["sessions_open", "sent"].map(String::from).to_vec();
        let rows = vec![
            row(0.0, 1.0, &[10.0, 5.0]),
            row(0.0, 1.0, &[20.0, 7.0]),
            row(1.0, 2.0, &[25.0, 1.0]),
        ];
        let s = slots(&rows, &columns, 0.0, f64::INFINITY);
        assert_eq!(s.len(), 2);
        assert_eq!(peak_mean(&s, 0), Some((30.0, 27.5)));
        assert_eq!(sum(&s, 1), 13.0);
        assert_eq!(
            series(&s, &columns, 1),
            vec![(0.0, 12.0), (1.0, 12.0), (1.0, 1.0), (2.0, 1.0)]
        );
        let coarse = rebucket(s, &columns, 10.0);
        assert_eq!(coarse.len(), 1);
        assert_eq!(coarse[0].values, vec![30.0, 13.0]);
        assert_eq!(slots(&rows, &columns, 1.0, 2.0).len(), 1);
    }

    #[test]
    fn a_span_takes_its_share_of_a_long_row() {
        let columns: Vec<String> = ["sessions_open", "sent"].map(String::from).to_vec();
        let rows = vec![row(0.0, 60.0, &[200.0, 600.0])];
        let s = slots(&rows, &columns, 15.0, 75.0);
        assert_eq!(s[0].values, vec![200.0, 450.0]);
        assert_eq!((s[0].start_s, s[0].end_s), (15.0, 60.0));
    }

    #[test]
    fn capacity_pairs() {
        let cols: Vec<String> = [
            "ddb_wru_per_s",
            "ddb_wru_capacity",
            "bedrock_tokens_per_min:haiku",
            "bedrock_capacity_per_min:haiku",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(capacity_of("ddb_wru_per_s", &cols), Some(1));
        assert_eq!(capacity_of("bedrock_tokens_per_min:haiku", &cols), Some(3));
        assert_eq!(capacity_of("ecs_cpu", &cols), None);
        assert!(is_capacity("bedrock_capacity_per_min:haiku"));
    }
}
