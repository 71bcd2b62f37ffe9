//! Where a profile is wrong: file, line, column and key, with what was expected.
//!
//! Every error a profile can produce — TOML syntax, a bad unit, an unknown key, a missing
//! field, a semantic rule such as a stage ending after the duration — becomes a
//! [`Diagnostic`] that names the file and the dotted key path (`traffic.stages[2].sessions`)
//! and, when the key exists in the file, its line and column. Key paths are resolved to
//! positions through a spanned parse of the original text, so semantic checks never need
//! to carry spans themselves.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySeg {
    Key(String),
    Index(usize),
}

/// A dotted key path into a TOML document, such as `traffic.stages[2].sessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<KeySeg>);

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parses `a.b[2].c` (keys may not contain `.` or `[`; quoted keys are not needed here).
    pub fn parse(dotted: &str) -> Self {
        let mut segs = Vec::new();
        for part in dotted.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                segs.push(KeySeg::Key(rest[..open].to_string()));
                rest = &rest[open..];
                while let Some(stripped) = rest.strip_prefix('[') {
                    let close = stripped.find(']').unwrap_or(stripped.len());
                    if let Ok(index) = stripped[..close].parse() {
                        segs.push(KeySeg::Index(index));
                    }
                    rest = stripped.get(close + 1..).unwrap_or("");
                }
            } else {
                segs.push(KeySeg::Key(rest.to_string()));
            }
        }
        Self(segs)
    }

    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.0.push(KeySeg::Key(key.into()));
        next
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(KeySeg::Index(index));
        next
    }

    pub fn segments(&self) -> &[KeySeg] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `self` starts with every segment of `prefix`.
    pub fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.len() >= prefix.0.len() && self.0[..prefix.0.len()] == prefix.0[..]
    }

    /// `self` with `prefix` prepended.
    pub fn under(&self, prefix: &KeyPath) -> Self {
        let mut segs = prefix.0.clone();
        segs.extend(self.0.iter().cloned());
        Self(segs)
    }

    fn parent(&self) -> Option<Self> {
        (!self.0.is_empty()).then(|| Self(self.0[..self.0.len() - 1].to_vec()))
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                KeySeg::Key(k) if i == 0 => write!(f, "{k}")?,
                KeySeg::Key(k) => write!(f, ".{k}")?,
                KeySeg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl From<&serde_path_to_error::Path> for KeyPath {
    fn from(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment;
        let segs = path
            .iter()
            .filter_map(|seg| match seg {
                Segment::Seq { index } => Some(KeySeg::Index(*index)),
                Segment::Map { key } => Some(KeySeg::Key(key.clone())),
                Segment::Enum { variant } => Some(KeySeg::Key(variant.clone())),
                Segment::Unknown => None,
            })
            .collect();
        Self(segs)
    }
}

/// A position in a file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Option<Position>,
    pub key: KeyPath,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if self.key.is_root() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// A TOML file held with its text so that key paths can be turned into positions.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: impl AsRef<Path>, text: String) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            text,
        }
    }

    /// Line and column (1-based, in characters) of a byte offset.
    pub fn position_of(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }

    /// The position of the value at `key`, or of the nearest enclosing key that exists
    /// (a missing field is reported at the table that should hold it).
    pub fn locate(&self, key: &KeyPath) -> Option<Position> {
        let root = DeTable::parse(&self.text).ok()?;
        let mut path = Some(key.clone());
        while let Some(candidate) = path {
            if let Some(span) = span_of(root.get_ref(), candidate.segments()) {
                return Some(self.position_of(span.start));
            }
            path = candidate.parent();
        }
        None
    }

    /// A diagnostic about `key` in this file, positioned if the key can be found.
    pub fn diagnostic(&self, key: KeyPath, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.path.clone(),
            position: self.locate(&key),
            key,
            message: message.into(),
        }
    }

    /// A diagnostic at a byte span (used for TOML syntax errors).
    pub fn diagnostic_at(&self, offset: Option<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.path.clone(),
            position: offset.map(|o| self.position_of(o)),
            key: KeyPath::root(),
            message: message.into(),
        }
    }
}

fn span_of(table: &DeTable<'_>, segs: &[KeySeg]) -> Option<std::ops::Range<usize>> {
    let (first, rest) = segs.split_first()?;
    let KeySeg::Key(name) = first else {
        return None;
    };
    let (key, value) = table.get_key_value(name.as_str())?;
    if rest.is_empty() {
        return Some(key.span());
    }
    span_in_value(value, rest)
}

fn span_in_value(value: &Spanned<DeValue<'_>>, segs: &[KeySeg]) -> Option<std::ops::Range<usize>> {
    let Some((first, rest)) = segs.split_first() else {
        return Some(value.span());
    };
    match (value.get_ref(), first) {
        (DeValue::Table(t), KeySeg::Key(_)) => span_of(t, segs),
        (DeValue::Array(a), KeySeg::Index(i)) => {
            let item = a.get(*i)?;
            if rest.is_empty() {
                Some(item.span())
            } else {
                span_in_value(item, rest)
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_path_parses_and_prints() {
        let p = KeyPath::parse("traffic.stages[2].sessions");
        assert_eq!(p.to_string(), "traffic.stages[2].sessions");
        assert_eq!(p.segments().len(), 4);
    }

    #[test]
    fn locates_nested_keys_and_array_items() {
        let text = "name = \"x\"\n\n[traffic]\narrival = \"poisson\"\n\n[[traffic.stages]]\nsessions = 1\n\n[[traffic.stages]]\n  sessions = 2\n";
        let f = SourceFile::new("p.toml", text.to_string());
        let pos = f
            .locate(&KeyPath::parse("traffic.stages[1].sessions"))
            .unwrap();
        assert_eq!(
            pos,
            Position {
                line: 10,
                column: 3
            }
        );
        let pos = f.locate(&KeyPath::parse("traffic.arrival")).unwrap();
        assert_eq!(pos, Position { line: 4, column: 1 });
        // A missing key falls back to its table.
        let pos = f
            .locate(&KeyPath::parse("traffic.stages[0].duration"))
            .unwrap();
        assert_eq!(pos.line, 6);
    }

    #[test]
    fn diagnostic_display_names_file_line_key() {
        let f = SourceFile::new("p.toml", "[a]\nb = 1\n".to_string());
        let d = f.diagnostic(KeyPath::parse("a.b"), "expected a duration");
        assert_eq!(d.to_string(), "p.toml:2:1: a.b: expected a duration");
    }
}
