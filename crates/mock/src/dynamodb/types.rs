//! DynamoDB's typed attribute values and their JSON wire form (`{"S":"x"}`, `{"N":"1"}`…).
//!
//! Values are checked as they are decoded, so the rest of the API works on well-formed
//! data only: numbers parse, sets are non-empty and without duplicates, binaries are base64.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use base64::Engine;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD as B64;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::error::DynamoError;

/// An item: attribute name → value.
pub type Item = BTreeMap<String, AttributeValue>;

/// Largest item DynamoDB stores (400 KB, names and values).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// One typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    S(String),
    /// A number kept as sent (DynamoDB numbers are decimal strings).
    N(String),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(Item),
    L(Vec<AttributeValue>),
    Ss(Vec<String>),
    Ns(Vec<String>),
    Bs(Vec<Vec<u8>>),
}

use AttributeValue as Av;

fn invalid(msg: impl Into<String>) -> DynamoError {
    DynamoError::Validation(msg.into())
}

/// The JSON has the wrong shape for the API (the service's deserializer rejects it).
fn serial(msg: impl Into<String>) -> DynamoError {
    DynamoError::Serialization(msg.into())
}

/// Parses a DynamoDB number, or says why it is not one.
pub fn parse_number(s: &str) -> Result<f64, DynamoError> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && t.chars().any(|c| c.is_ascii_digit());
    match t.parse::<f64>() {
        Ok(v) if ok && v.is_finite() => Ok(v),
        _ => Err(invalid(format!(
            "A value provided cannot be converted into a number: {s}"
        ))),
    }
}

/// Orders two numbers (at `f64` precision: enough for keys and counters).
pub fn compare_numbers(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.trim().parse::<f64>(), b.trim().parse::<f64>());
    match (x, y) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

/// Adds two numbers, exactly when both are integers.
pub fn add_numbers(a: &str, b: &str) -> Result<String, DynamoError> {
    if let (Ok(x), Ok(y)) = (a.trim().parse::<i128>(), b.trim().parse::<i128>()) {
        return Ok((x + y).to_string());
    }
    let sum = parse_number(a)? + parse_number(b)?;
    Ok(format_number(sum))
}

/// Negates a number (for `a - b` as `a + (-b)`).
pub fn negate_number(a: &str) -> String {
    let t = a.trim();
    match t.strip_prefix('-') {
        Some(rest) => rest.to_string(),
        None => format!("-{}", t.trim_start_matches('+')),
    }
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn string_of(v: &Value, ty: &str) -> Result<String, DynamoError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| serial(format!("{ty}: expected a string")))
}

fn binary_of(v: &Value) -> Result<Vec<u8>, DynamoError> {
    let s = v
        .as_str()
        .ok_or_else(|| serial("B: expected base64 text"))?;
    B64.decode(s)
        .map_err(|_| invalid("Supplied AttributeValue B is not valid base64"))
}

fn list_of<'v>(v: &'v Value, ty: &str) -> Result<&'v Vec<Value>, DynamoError> {
    v.as_array()
        .ok_or_else(|| serial(format!("{ty}: expected a list")))
}

fn check_set<T: PartialEq>(items: &[T], ty: &str) -> Result<(), DynamoError> {
    if items.is_empty() {
        return Err(invalid(format!(
            "One or more parameter values were invalid: An {ty} may not be empty"
        )));
    }
    for (i, a) in items.iter().enumerate() {
        if items[..i].contains(a) {
            return Err(invalid(format!(
                "One or more parameter values were invalid: Input collection contains duplicates ({ty})"
            )));
        }
    }
    Ok(())
}

impl AttributeValue {
    /// Decodes `{"<type>": value}`.
    pub fn from_json(v: &Value) -> Result<Self, DynamoError> {
        let obj = v
            .as_object()
            .ok_or_else(|| serial("AttributeValue: expected an object"))?;
        let mut fields = obj.iter();
        let (ty, val) = match (fields.next(), fields.next()) {
            (Some(f), None) => f,
            _ => {
                return Err(invalid(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                ));
            }
        };
        Ok(match ty.as_str() {
            "S" => Av::S(string_of(val, "S")?),
            "N" => {
                let n = string_of(val, "N")?;
                parse_number(&n)?;
                Av::N(n)
            }
            "B" => Av::B(binary_of(val)?),
            "BOOL" => Av::Bool(
                val.as_bool()
                    .ok_or_else(|| serial("BOOL: expected a boolean"))?,
            ),
            "NULL" => match val.as_bool() {
                Some(true) => Av::Null,
                _ => {
                    return Err(invalid(
                        "Null attribute value types must have the value of true",
                    ));
                }
            },
            "M" => Av::M(item_from_json(val)?),
            "L" => Av::L(
                list_of(val, "L")?
                    .iter()
                    .map(Self::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            "SS" => {
                let s: Vec<String> = list_of(val, "SS")?
                    .iter()
                    .map(|v| string_of(v, "SS"))
                    .collect::<Result<_, _>>()?;
                check_set(&s, "string set")?;
                Av::Ss(s)
            }
            "NS" => {
                let s: Vec<String> = list_of(val, "NS")?
                    .iter()
                    .map(|v| string_of(v, "NS"))
                    .collect::<Result<_, _>>()?;
                for n in &s {
                    parse_number(n)?;
                }
                check_set(&s, "number set")?;
                Av::Ns(s)
            }
            "BS" => {
                let s: Vec<Vec<u8>> = list_of(val, "BS")?
                    .iter()
                    .map(binary_of)
                    .collect::<Result<_, _>>()?;
                check_set(&s, "binary set")?;
                Av::Bs(s)
            }
            other => {
                return Err(invalid(format!(
                    "Supplied AttributeValue has an unknown datatype: {other}"
                )));
            }
        })
    }

    /// Encodes as `{"<type>": value}` (the [`Serialize`] form, as a JSON tree).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an attribute value serializes")
    }

    /// The type descriptor (`S`, `N`, `BOOL`, …) used by `attribute_type` and errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Av::S(_) => "S",
            Av::N(_) => "N",
            Av::B(_) => "B",
            Av::Bool(_) => "BOOL",
            Av::Null => "NULL",
            Av::M(_) => "M",
            Av::L(_) => "L",
            Av::Ss(_) => "SS",
            Av::Ns(_) => "NS",
            Av::Bs(_) => "BS",
        }
    }

    /// Size as DynamoDB bills it (UTF-8 bytes of strings, ~bytes of numbers, overheads).
    pub fn size(&self) -> usize {
        match self {
            Av::S(s) => s.len(),
            Av::N(n) => n.len().div_ceil(2) + 1,
            Av::B(b) => b.len(),
            Av::Bool(_) | Av::Null => 1,
            Av::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            Av::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            Av::Ss(s) => s.iter().map(String::len).sum(),
            Av::Ns(s) => s.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
            Av::Bs(s) => s.iter().map(Vec::len).sum(),
        }
    }

    /// Orders two values of the same scalar type (S, N, B); `None` otherwise.
    pub fn compare(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Av::S(a), Av::S(b)) => Some(a.cmp(b)),
            (Av::N(a), Av::N(b)) => Some(compare_numbers(a, b)),
            (Av::B(a), Av::B(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Equality as DynamoDB sees it: numbers by value, sets ignoring order.
    pub fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Av::N(a), Av::N(b)) => compare_numbers(a, b) == Ordering::Equal,
            (Av::Ss(a), Av::Ss(b)) => a.len() == b.len() && a.iter().all(|x| b.contains(x)),
            (Av::Ns(a), Av::Ns(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|x| b.iter().any(|y| compare_numbers(x, y) == Ordering::Equal))
            }
            (Av::Bs(a), Av::Bs(b)) => a.len() == b.len() && a.iter().all(|x| b.contains(x)),
            (Av::M(a), Av::M(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| v.same(w)))
            }
            (Av::L(a), Av::L(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y)),
            _ => self == other,
        }
    }
}

/// Decodes a JSON object of attribute values.
pub fn item_from_json(v: &Value) -> Result<Item, DynamoError> {
    let obj = v
        .as_object()
        .ok_or_else(|| serial("expected a map of attribute values"))?;
    obj.iter()
        .map(|(k, v)| Ok((k.clone(), AttributeValue::from_json(v)?)))
        .collect()
}

pub fn item_to_json(item: &Item) -> Value {
    serde_json::to_value(item).expect("an item serializes")
}

/// The wire form, `{"<type>": value}`, written straight to the answer: a read's item goes
/// out without first becoming a tree of JSON values.
impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(1))?;
        match self {
            Av::S(s) => m.serialize_entry("S", s)?,
            Av::N(n) => m.serialize_entry("N", n)?,
            Av::B(b) => m.serialize_entry("B", &Base64Text(b))?,
            Av::Bool(b) => m.serialize_entry("BOOL", b)?,
            Av::Null => m.serialize_entry("NULL", &true)?,
            Av::M(item) => m.serialize_entry("M", item)?,
            Av::L(l) => m.serialize_entry("L", l)?,
            Av::Ss(s) => m.serialize_entry("SS", s)?,
            Av::Ns(s) => m.serialize_entry("NS", s)?,
            Av::Bs(s) => m.serialize_entry("BS", &Base64List(s))?,
        }
        m.end()
    }
}

/// Binary data as its base64 text.
struct Base64Text<'a>(&'a [u8]);

impl Serialize for Base64Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Base64Display::new(self.0, &B64))
    }
}

struct Base64List<'a>(&'a [Vec<u8>]);

impl Serialize for Base64List<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|b| Base64Text(b)))
    }
}

/// Size of an item: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_round_trips() {
        let v = json!({
            "s": {"S": "x"}, "n": {"N": "1.5"}, "b": {"B": "AAE="}, "t": {"BOOL": true},
            "z": {"NULL": true}, "m": {"M": {"a": {"S": "b"}}}, "l": {"L": [{"N": "1"}]},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": ["AA=="]}
        });
        let item = item_from_json(&v).unwrap();
        assert_eq!(item_to_json(&item), v);
        // Written straight from the item, the text is the tree's text.
        assert_eq!(serde_json::to_string(&item).unwrap(), v.to_string());
    }

    #[test]
    fn malformed_values_are_validation_errors() {
        assert!(matches!(
            AttributeValue::from_json(&json!({"S": 1})),
            Err(DynamoError::Serialization(_))
        ));
        for bad in [
            json!({"N": "abc"}),
            json!({"SS": []}),
            json!({"SS": ["a", "a"]}),
            json!({"S": "a", "N": "1"}),
            json!({"X": "a"}),
            json!({"NULL": false}),
        ] {
            assert!(
                matches!(
                    AttributeValue::from_json(&bad),
                    Err(DynamoError::Validation(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn numbers_add_exactly_and_compare_by_value() {
        assert_eq!(add_numbers("10", "-3").unwrap(), "7");
        assert_eq!(add_numbers("1.5", "1").unwrap(), "2.5");
        assert_eq!(compare_numbers("10", "9"), Ordering::Greater);
        assert!(Av::N("1.0".into()).same(&Av::N("1".into())));
    }
}
