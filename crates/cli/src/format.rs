//! Number formatting for terminal tables: thousands separators and fixed decimals.

/// `25000.0` → `25,000`; values are rounded to whole numbers.
pub fn thousands(v: f64) -> String {
    let rounded = v.round();
    let neg = rounded < 0.0;
    let digits = format!("{:.0}", rounded.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if neg { format!("-{out}") } else { out }
}

/// `1800.0` → `$1,800.00`.
pub fn dollars(v: f64) -> String {
    let cents = (v * 100.0).round();
    let whole = thousands((cents / 100.0).trunc());
    format!("${whole}.{:02}", (cents.abs() % 100.0) as u64)
}

/// A plain-text table: the first column left-aligned, numbers right-aligned.
pub struct Table {
    rows: Vec<Vec<String>>,
    left: Vec<usize>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
            left: vec![0],
        }
    }

    /// Left-aligns column `col` too (for text columns).
    pub fn left_aligned(mut self, col: usize) -> Self {
        self.left.push(col);
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                if c > 0 {
                    line.push_str("  ");
                }
                if self.left.contains(&c) {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(25_000.0), "25,000");
        assert_eq!(thousands(30_177_500.0), "30,177,500");
        assert_eq!(thousands(-1234.0), "-1,234");
        assert_eq!(dollars(1800.0), "$1,800.00");
        assert_eq!(dollars(0.625), "$0.63");
        assert_eq!(dollars(54_000.5), "$54,000.50");
    }
}
