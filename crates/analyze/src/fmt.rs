//! Number formatting shared by the human-readable writers (text, Markdown, HTML, charts).
//!
//! Why it exists: the same figure must read the same in every format, and snapshot tests
//! need formatting that never depends on the locale or the platform.

/// Milliseconds: three decimals below 10 ms, two below 100 ms, one above.
pub fn ms(v: f64) -> String {
    let a = v.abs();
    if a < 10.0 {
        format!("{v:.3}")
    } else if a < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// A whole number with thousands separators: `25,000`.
pub fn count(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate or other measured quantity: thousands separators above 100, else two decimals.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    if v.abs() >= 100.0 {
        let s = count(v.abs().round() as u64);
        if v < 0.0 { format!("-{s}") } else { s }
    } else if v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// An amount with cents: `1,234.50`.
pub fn decimal(v: f64) -> String {
    let cents = (v.abs() * 100.0).round() as u64;
    let sign = if v < 0.0 && cents > 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", count(cents / 100), cents % 100)
}

/// A fraction as a percentage: `0.0012` → `0.12%`.
pub fn pct(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p != 0.0 && p.abs() < 0.01 {
        format!("{p:.4}%")
    } else {
        format!("{p:.2}%")
    }
}

/// A signed delta in the figure's own formatting.
pub fn signed(v: f64, f: impl Fn(f64) -> String) -> String {
    if v > 0.0 { format!("+{}", f(v)) } else { f(v) }
}

/// Seconds: `90 s`, `1.5 s`.
pub fn secs(v: f64) -> String {
    if v == v.trunc() {
        format!("{v:.0} s")
    } else {
        format!("{v:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ms(4.001), "4.001");
        assert_eq!(ms(42.127), "42.13");
        assert_eq!(ms(2334.719), "2334.7");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(num(27.777), "27.78");
        assert_eq!(num(2500.0), "2,500");
        assert_eq!(pct(0.0012), "0.12%");
        assert_eq!(pct(0.0), "0.00%");
        assert_eq!(signed(1.5, ms), "+1.500");
        assert_eq!(secs(90.0), "90 s");
        assert_eq!(decimal(1234.5), "1,234.50");
        assert_eq!(decimal(-0.004), "0.00");
    }
}
