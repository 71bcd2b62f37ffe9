//! The `send` template of a protocol mapping, compiled once and filled per message.
//!
//! Placeholders sit inside JSON string literals (`"text":"{text}"`), so values are written
//! JSON-escaped without their quotes; a user text with quotes or newlines can never break
//! the frame.

use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Session,
    Message,
    Store,
    Text,
}

/// A compiled `send` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTemplate {
    pieces: Vec<Piece>,
}

impl SendTemplate {
    pub fn compile(template: &str) -> Self {
        let mut pieces = Vec::new();
        let mut rest = template;
        let mut literal = String::new();
        while !rest.is_empty() {
            let matched = [
                ("{session}", Piece::Session),
                ("{message}", Piece::Message),
                ("{store}", Piece::Store),
                ("{text}", Piece::Text),
            ]
            .into_iter()
            .find(|(p, _)| rest.starts_with(p));
            match matched {
                Some((p, piece)) => {
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                    rest = &rest[p.len()..];
                }
                None => {
                    let c = rest.chars().next().expect("rest is not empty");
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Self { pieces }
    }

    pub fn render(&self, session: &str, message: &str, store: &str, text: &str) -> String {
        let mut out = String::with_capacity(128 + text.len());
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Session => escape_into(&mut out, session),
                Piece::Message => escape_into(&mut out, message),
                Piece::Store => escape_into(&mut out, store),
                Piece::Text => escape_into(&mut out, text),
            }
        }
        out
    }
}

/// Appends `s` JSON-escaped, without surrounding quotes.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_placeholders_with_escaped_values() {
        let t = SendTemplate::compile(
            r#"{"action":"sendMessage","data":{"sid":"{session}","mid":"{message}","store":"{store}","q":"{text}"}}"#,
        );
        let out = t.render("s1", "m9", "kindle", "say \"hi\"\n\\ ok\u{1}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["data"]["q"], "say \"hi\"\n\\ ok\u{1}");
        assert_eq!(v["data"]["sid"], "s1");
        assert_eq!(v["data"]["mid"], "m9");
        assert_eq!(v["data"]["store"], "kindle");
    }

    #[test]
    fn braces_that_are_not_placeholders_stay() {
        let t = SendTemplate::compile(r#"{"a":"{other}","t":"{text}"}"#);
        assert_eq!(t.render("", "", "", "x"), r#"{"a":"{other}","t":"x"}"#);
    }
}
