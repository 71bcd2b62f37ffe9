//! DynamoDB expressions — condition, filter, key condition, update and projection — as a
//! tokenizer and a recursive-descent parser producing a typed syntax tree.
//!
//! `#name` and `:value` placeholders are resolved while parsing, so the evaluator never
//! sees them; a placeholder that is not defined, or a definition that no expression uses,
//! is a `ValidationException` as in the real service.
//!
//! Grammar (precedence from loosest): `OR` < `AND` < `NOT` < comparison / `BETWEEN` /
//! `IN` / function / parentheses.

use std::collections::{BTreeMap, BTreeSet};

use super::error::DynamoError;
use super::types::AttributeValue;

/// One step of a document path: `a.b[2]`.
#[derive(Debug, Clone, PartialEq)]
pub enum PathElem {
    Attr(String),
    Index(usize),
}

pub type Path = Vec<PathElem>;

/// A value-producing expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(AttributeValue),
    Size(Path),
    IfNotExists(Path, Box<Operand>),
    ListAppend(Box<Operand>, Box<Operand>),
    Plus(Box<Operand>, Box<Operand>),
    Minus(Box<Operand>, Box<Operand>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A boolean expression (conditions, filters, key conditions).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare(CompareOp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Exists(Path),
    NotExists(Path),
    Type(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
}

/// One action of an update expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Set(Path, Operand),
    Remove(Path),
    Add(Path, AttributeValue),
    Delete(Path, AttributeValue),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Name(String),
    Value(String),
    Int(usize),
    Op(&'static str),
}

fn invalid(kind: &str, msg: impl std::fmt::Display) -> DynamoError {
    DynamoError::Validation(format!("Invalid {kind}: {msg}"))
}

fn tokenize(src: &str, kind: &str) -> Result<Vec<Tok>, DynamoError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if let Some(op) = ["<=", ">=", "<>"].into_iter().find(|o| *o == two) {
            toks.push(Tok::Op(op));
            i += 2;
            continue;
        }
        if let Some(op) = ["=", "<", ">", "(", ")", ",", ".", "[", "]", "+", "-"]
            .into_iter()
            .find(|o| o.starts_with(c))
        {
            toks.push(Tok::Op(op));
            i += 1;
            continue;
        }
        match c {
            '#' | ':' => {
                i += 1;
                let w = word(&mut i);
                if w.is_empty() {
                    return Err(invalid(kind, format!("Syntax error; token: \"{c}\"")));
                }
                toks.push(if c == '#' {
                    Tok::Name(w)
                } else {
                    Tok::Value(w)
                });
            }
            c if c.is_ascii_digit() => {
                let w = word(&mut i);
                let n = w
                    .parse()
                    .map_err(|_| invalid(kind, format!("Syntax error; token: \"{w}\"")))?;
                toks.push(Tok::Int(n));
            }
            c if c.is_alphabetic() || c == '_' => toks.push(Tok::Ident(word(&mut i))),
            other => {
                return Err(invalid(kind, format!("Syntax error; token: \"{other}\"")));
            }
        }
    }
    Ok(toks)
}

/// Placeholder definitions of one request, with the set of those used.
pub struct Placeholders<'a> {
    names: &'a BTreeMap<String, String>,
    values: &'a BTreeMap<String, AttributeValue>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

impl<'a> Placeholders<'a> {
    pub fn new(
        names: &'a BTreeMap<String, String>,
        values: &'a BTreeMap<String, AttributeValue>,
    ) -> Self {
        Self {
            names,
            values,
            used_names: BTreeSet::new(),
            used_values: BTreeSet::new(),
        }
    }

    /// Fails when a definition was never used by any expression of the request.
    pub fn check_all_used(&self) -> Result<(), DynamoError> {
        let unused = |defined: Vec<&String>, used: &BTreeSet<String>| -> Vec<String> {
            defined
                .into_iter()
                .filter(|k| !used.contains(*k))
                .cloned()
                .collect()
        };
        let names = unused(self.names.keys().collect(), &self.used_names);
        if !names.is_empty() {
            return Err(DynamoError::Validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                names.join(", ")
            )));
        }
        let values = unused(self.values.keys().collect(), &self.used_values);
        if !values.is_empty() {
            return Err(DynamoError::Validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                values.join(", ")
            )));
        }
        Ok(())
    }
}

struct Parser<'p, 'a> {
    toks: Vec<Tok>,
    pos: usize,
    kind: &'static str,
    ph: &'p mut Placeholders<'a>,
}

fn is_keyword(w: &str) -> bool {
    [
        "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(w))
}

impl<'p, 'a> Parser<'p, 'a> {
    fn new(
        src: &str,
        kind: &'static str,
        ph: &'p mut Placeholders<'a>,
    ) -> Result<Self, DynamoError> {
        let toks = tokenize(src, kind)?;
        if toks.is_empty() {
            return Err(invalid(kind, "The expression can not be empty;"));
        }
        Ok(Self {
            toks,
            pos: 0,
            kind,
            ph,
        })
    }

    fn err(&self, msg: impl std::fmt::Display) -> DynamoError {
        invalid(self.kind, msg)
    }

    fn syntax(&self) -> DynamoError {
        match self.toks.get(self.pos) {
            Some(t) => self.err(format!("Syntax error; token: \"{}\"", show(t))),
            None => self.err("Syntax error; token: <EOF>"),
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), DynamoError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn finish(&self) -> Result<(), DynamoError> {
        if self.pos < self.toks.len() {
            Err(self.syntax())
        } else {
            Ok(())
        }
    }

    fn value(&mut self, name: &str) -> Result<AttributeValue, DynamoError> {
        self.ph.used_values.insert(format!(":{name}"));
        self.ph.values.get(&format!(":{name}")).cloned().ok_or_else(|| {
            self.err(format!(
                "An expression attribute value used in expression is not defined; attribute value: :{name}"
            ))
        })
    }

    fn name(&mut self, name: &str) -> Result<String, DynamoError> {
        self.ph.used_names.insert(format!("#{name}"));
        self.ph.names.get(&format!("#{name}")).cloned().ok_or_else(|| {
            self.err(format!(
                "An expression attribute name used in the document path is not defined; attribute name: #{name}"
            ))
        })
    }

    // ---- paths and operands --------------------------------------------------------

    fn path(&mut self) -> Result<Path, DynamoError> {
        let mut path = vec![PathElem::Attr(self.path_name()?)];
        loop {
            if self.eat_op(".") {
                path.push(PathElem::Attr(self.path_name()?));
            } else if self.eat_op("[") {
                match self.next() {
                    Some(Tok::Int(n)) => path.push(PathElem::Index(n)),
                    _ => return Err(self.syntax()),
                }
                self.expect_op("]")?;
            } else {
                return Ok(path);
            }
        }
    }

    fn path_name(&mut self) -> Result<String, DynamoError> {
        match self.next() {
            Some(Tok::Name(n)) => self.name(&n),
            Some(Tok::Ident(w)) if !is_keyword(&w) => Ok(w),
            _ => {
                self.pos -= 1;
                Err(self.syntax())
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, DynamoError> {
        let left = self.primary_operand()?;
        if self.eat_op("+") {
            return Ok(Operand::Plus(
                Box::new(left),
                Box::new(self.primary_operand()?),
            ));
        }
        if self.eat_op("-") {
            return Ok(Operand::Minus(
                Box::new(left),
                Box::new(self.primary_operand()?),
            ));
        }
        Ok(left)
    }

    fn primary_operand(&mut self) -> Result<Operand, DynamoError> {
        match self.peek().cloned() {
            Some(Tok::Value(v)) => {
                self.pos += 1;
                Ok(Operand::Value(self.value(&v)?))
            }
            Some(Tok::Ident(f)) if self.toks.get(self.pos + 1) == Some(&Tok::Op("(")) => {
                self.pos += 2;
                let op = match f.as_str() {
                    "size" => Operand::Size(self.path()?),
                    "if_not_exists" => {
                        let p = self.path()?;
                        self.expect_op(",")?;
                        Operand::IfNotExists(p, Box::new(self.operand()?))
                    }
                    "list_append" => {
                        let a = self.operand()?;
                        self.expect_op(",")?;
                        Operand::ListAppend(Box::new(a), Box::new(self.operand()?))
                    }
                    other => {
                        return Err(self.err(format!("Invalid function name; function: {other}")));
                    }
                };
                self.expect_op(")")?;
                Ok(op)
            }
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    // ---- conditions ----------------------------------------------------------------

    fn condition(&mut self) -> Result<Condition, DynamoError> {
        let mut left = self.conjunction()?;
        while self.eat_keyword("OR") {
            left = Condition::Or(Box::new(left), Box::new(self.conjunction()?));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Condition, DynamoError> {
        let mut left = self.negation()?;
        while self.eat_keyword("AND") {
            left = Condition::And(Box::new(left), Box::new(self.negation()?));
        }
        Ok(left)
    }

    fn negation(&mut self) -> Result<Condition, DynamoError> {
        if self.eat_keyword("NOT") {
            return Ok(Condition::Not(Box::new(self.negation()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Condition, DynamoError> {
        if self.eat_op("(") {
            let c = self.condition()?;
            self.expect_op(")")?;
            return Ok(c);
        }
        if let Some(Tok::Ident(f)) = self.peek().cloned() {
            if self.toks.get(self.pos + 1) == Some(&Tok::Op("(")) && f != "size" {
                return self.function(&f);
            }
        }
        let left = self.operand()?;
        if self.eat_keyword("BETWEEN") {
            let low = self.operand()?;
            if !self.eat_keyword("AND") {
                return Err(self.syntax());
            }
            return Ok(Condition::Between(left, low, self.operand()?));
        }
        if self.eat_keyword("IN") {
            self.expect_op("(")?;
            let mut list = vec![self.operand()?];
            while self.eat_op(",") {
                list.push(self.operand()?);
            }
            self.expect_op(")")?;
            return Ok(Condition::In(left, list));
        }
        let op = match self.next() {
            Some(Tok::Op("=")) => CompareOp::Eq,
            Some(Tok::Op("<>")) => CompareOp::Ne,
            Some(Tok::Op("<")) => CompareOp::Lt,
            Some(Tok::Op("<=")) => CompareOp::Le,
            Some(Tok::Op(">")) => CompareOp::Gt,
            Some(Tok::Op(">=")) => CompareOp::Ge,
            _ => {
                self.pos -= 1;
                return Err(self.syntax());
            }
        };
        Ok(Condition::Compare(op, left, self.operand()?))
    }

    fn function(&mut self, f: &str) -> Result<Condition, DynamoError> {
        self.pos += 2;
        let c = match f {
            "attribute_exists" => Condition::Exists(self.path()?),
            "attribute_not_exists" => Condition::NotExists(self.path()?),
            "attribute_type" => {
                let p = self.path()?;
                self.expect_op(",")?;
                Condition::Type(p, self.operand()?)
            }
            "begins_with" | "contains" => {
                let a = self.operand()?;
                self.expect_op(",")?;
                let b = self.operand()?;
                if f == "contains" {
                    Condition::Contains(a, b)
                } else {
                    Condition::BeginsWith(a, b)
                }
            }
            other => return Err(self.err(format!("Invalid function name; function: {other}"))),
        };
        self.expect_op(")")?;
        Ok(c)
    }

    // ---- update --------------------------------------------------------------------

    fn update(&mut self) -> Result<Vec<Action>, DynamoError> {
        let mut actions = Vec::new();
        let mut seen = BTreeSet::new();
        while self.pos < self.toks.len() {
            let clause = match self.next() {
                Some(Tok::Ident(w)) if is_keyword(&w) => w.to_ascii_uppercase(),
                _ => {
                    self.pos -= 1;
                    return Err(self.syntax());
                }
            };
            if !seen.insert(clause.clone()) {
                return Err(self.err(format!(
                    "The \"{clause}\" section can only be used once in an update expression;"
                )));
            }
            loop {
                actions.push(self.action(&clause)?);
                if !self.eat_op(",") {
                    break;
                }
            }
        }
        Ok(actions)
    }

    fn action(&mut self, clause: &str) -> Result<Action, DynamoError> {
        let path = self.path()?;
        Ok(match clause {
            "SET" => {
                self.expect_op("=")?;
                Action::Set(path, self.operand()?)
            }
            "REMOVE" => Action::Remove(path),
            "ADD" | "DELETE" => {
                let v = match self.next() {
                    Some(Tok::Value(v)) => self.value(&v)?,
                    _ => {
                        self.pos -= 1;
                        return Err(self.syntax());
                    }
                };
                if clause == "ADD" {
                    Action::Add(path, v)
                } else {
                    Action::Delete(path, v)
                }
            }
            _ => return Err(self.syntax()),
        })
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Ident(w) => w.clone(),
        Tok::Name(n) => format!("#{n}"),
        Tok::Value(v) => format!(":{v}"),
        Tok::Int(n) => n.to_string(),
        Tok::Op(o) => (*o).to_string(),
    }
}

/// Parses a ConditionExpression, FilterExpression or KeyConditionExpression.
pub fn parse_condition(
    src: &str,
    kind: &'static str,
    ph: &mut Placeholders<'_>,
) -> Result<Condition, DynamoError> {
    let mut p = Parser::new(src, kind, ph)?;
    let c = p.condition()?;
    p.finish()?;
    Ok(c)
}

/// Parses an UpdateExpression.
pub fn parse_update(src: &str, ph: &mut Placeholders<'_>) -> Result<Vec<Action>, DynamoError> {
    let mut p = Parser::new(src, "UpdateExpression", ph)?;
    let actions = p.update()?;
    p.finish()?;
    Ok(actions)
}

/// Parses a ProjectionExpression.
pub fn parse_projection(src: &str, ph: &mut Placeholders<'_>) -> Result<Vec<Path>, DynamoError> {
    let mut p = Parser::new(src, "ProjectionExpression", ph)?;
    let mut paths = vec![p.path()?];
    while p.eat_op(",") {
        paths.push(p.path()?);
    }
    p.finish()?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> (BTreeMap<String, String>, BTreeMap<String, AttributeValue>) {
        let names = [("#n".to_string(), "name".to_string())].into();
        let values = [
            (":a".to_string(), AttributeValue::N("1".into())),
            (":b".to_string(), AttributeValue::N("5".into())),
        ]
        .into();
        (names, values)
    }

    #[test]
    fn precedence_and_placeholders() {
        let (n, v) = defs();
        let mut ph = Placeholders::new(&n, &v);
        let c = parse_condition(
            "NOT attribute_exists(#n) OR x BETWEEN :a AND :b AND size(l[0].y) > :a",
            "ConditionExpression",
            &mut ph,
        )
        .unwrap();
        let Condition::Or(left, right) = c else {
            panic!("OR binds loosest: {c:?}")
        };
        assert!(matches!(*left, Condition::Not(_)));
        assert!(matches!(*right, Condition::And(..)));
        ph.check_all_used().unwrap();
    }

    #[test]
    fn update_clauses() {
        let (n, v) = defs();
        let mut ph = Placeholders::new(&n, &v);
        let a = parse_update(
            "SET #n = if_not_exists(#n, :a) + :b, l = list_append(l, :a) REMOVE old ADD c :a",
            &mut ph,
        )
        .unwrap();
        assert_eq!(a.len(), 4);
    }

    #[test]
    fn errors_name_the_problem() {
        let (n, v) = defs();
        for bad in [
            "x = ",
            "x == :a",
            "#missing = :a",
            "x = :nope",
            "foo(x)",
            "x = :a)",
            "",
        ] {
            let mut ph = Placeholders::new(&n, &v);
            let e = parse_condition(bad, "ConditionExpression", &mut ph).unwrap_err();
            assert!(
                matches!(e, DynamoError::Validation(ref m) if m.starts_with("Invalid ConditionExpression")),
                "{bad}: {e:?}"
            );
        }
        let mut ph = Placeholders::new(&n, &v);
        parse_condition("x = :a", "ConditionExpression", &mut ph).unwrap();
        assert!(ph.check_all_used().is_err(), "#n and :b unused");
    }
}
