//! Evaluates parsed expressions against items: conditions and filters to a boolean, update
//! actions to a new item, projections to a smaller one.
//!
//! Comparisons between different types are false (not errors), as in DynamoDB; arithmetic
//! and `list_append` on the wrong types are `ValidationException`s. All `SET` operands are
//! evaluated against the item as it was before the update.

use std::cmp::Ordering;

use super::error::DynamoError;
use super::expr::{Action, CompareOp, Condition, Operand, Path, PathElem};
use super::types::{AttributeValue as Av, Item, add_numbers, negate_number};

fn invalid(msg: impl Into<String>) -> DynamoError {
    DynamoError::Validation(msg.into())
}

/// The value at `path`, if there is one.
pub fn resolve<'i>(item: &'i Item, path: &Path) -> Option<&'i Av> {
    let mut elems = path.iter();
    let mut cur = match elems.next()? {
        PathElem::Attr(a) => item.get(a)?,
        PathElem::Index(_) => return None,
    };
    for e in elems {
        cur = match (e, cur) {
            (PathElem::Attr(a), Av::M(m)) => m.get(a)?,
            (PathElem::Index(i), Av::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn operand(item: &Item, op: &Operand) -> Result<Option<Av>, DynamoError> {
    Ok(match op {
        Operand::Path(p) => resolve(item, p).cloned(),
        Operand::Value(v) => Some(v.clone()),
        Operand::Size(p) => resolve(item, p).and_then(|v| {
            let n = match v {
                Av::S(s) => s.len(),
                Av::B(b) => b.len(),
                Av::M(m) => m.len(),
                Av::L(l) => l.len(),
                Av::Ss(s) | Av::Ns(s) => s.len(),
                Av::Bs(s) => s.len(),
                _ => return None,
            };
            Some(Av::N(n.to_string()))
        }),
        Operand::IfNotExists(p, default) => match resolve(item, p) {
            Some(v) => Some(v.clone()),
            None => operand(item, default)?,
        },
        Operand::ListAppend(a, b) => match (operand(item, a)?, operand(item, b)?) {
            (Some(Av::L(mut a)), Some(Av::L(b))) => {
                a.extend(b);
                Some(Av::L(a))
            }
            _ => {
                return Err(invalid(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: not a list",
                ));
            }
        },
        Operand::Plus(a, b) | Operand::Minus(a, b) => {
            let minus = matches!(op, Operand::Minus(..));
            match (operand(item, a)?, operand(item, b)?) {
                (Some(Av::N(x)), Some(Av::N(y))) => {
                    let y = if minus { negate_number(&y) } else { y };
                    Some(Av::N(add_numbers(&x, &y)?))
                }
                (None, _) | (_, None) => {
                    return Err(invalid(
                        "The provided expression refers to an attribute that does not exist in the item",
                    ));
                }
                _ => {
                    return Err(invalid(format!(
                        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: {}, operand type: not a number",
                        if minus { "-" } else { "+" }
                    )));
                }
            }
        }
    })
}

/// Whether `cond` holds for `item` (an absent item is an empty one).
pub fn check(item: &Item, cond: &Condition) -> Result<bool, DynamoError> {
    Ok(match cond {
        Condition::And(a, b) => check(item, a)? && check(item, b)?,
        Condition::Or(a, b) => check(item, a)? || check(item, b)?,
        Condition::Not(c) => !check(item, c)?,
        Condition::Exists(p) => resolve(item, p).is_some(),
        Condition::NotExists(p) => resolve(item, p).is_none(),
        Condition::Type(p, t) => match (resolve(item, p), operand(item, t)?) {
            (Some(v), Some(Av::S(t))) => v.type_name() == t,
            _ => false,
        },
        Condition::Compare(op, a, b) => match (operand(item, a)?, operand(item, b)?) {
            (Some(x), Some(y)) => compare(*op, &x, &y),
            _ => false,
        },
        Condition::Between(v, lo, hi) => {
            match (operand(item, v)?, operand(item, lo)?, operand(item, hi)?) {
                (Some(v), Some(lo), Some(hi)) => {
                    if lo.compare(&hi) == Some(Ordering::Greater) {
                        return Err(invalid(
                            "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound",
                        ));
                    }
                    compare(CompareOp::Ge, &v, &lo) && compare(CompareOp::Le, &v, &hi)
                }
                _ => false,
            }
        }
        Condition::In(v, list) => match operand(item, v)? {
            Some(v) => {
                let mut found = false;
                for o in list {
                    found |= operand(item, o)?.is_some_and(|x| x.same(&v));
                }
                found
            }
            None => false,
        },
        Condition::BeginsWith(a, b) => match (operand(item, a)?, operand(item, b)?) {
            (Some(Av::S(a)), Some(Av::S(b))) => a.starts_with(&b),
            (Some(Av::B(a)), Some(Av::B(b))) => a.starts_with(&b),
            _ => false,
        },
        Condition::Contains(a, b) => match (operand(item, a)?, operand(item, b)?) {
            (Some(Av::S(a)), Some(Av::S(b))) => a.contains(&b),
            (Some(Av::Ss(s)), Some(Av::S(b))) => s.contains(&b),
            (Some(Av::Ns(s)), Some(n @ Av::N(_))) => s.iter().any(|x| Av::N(x.clone()).same(&n)),
            (Some(Av::Bs(s)), Some(Av::B(b))) => s.contains(&b),
            (Some(Av::L(l)), Some(b)) => l.iter().any(|x| x.same(&b)),
            _ => false,
        },
    })
}

fn compare(op: CompareOp, x: &Av, y: &Av) -> bool {
    match op {
        CompareOp::Eq => x.same(y),
        CompareOp::Ne => !x.same(y),
        _ => match x.compare(y) {
            Some(o) => match op {
                CompareOp::Lt => o == Ordering::Less,
                CompareOp::Le => o != Ordering::Greater,
                CompareOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            },
            None => false,
        },
    }
}

/// Applies update actions to `item` (a copy of the stored item, or an empty one).
pub fn apply(item: &mut Item, actions: &[Action]) -> Result<(), DynamoError> {
    let before = item.clone();
    for action in actions {
        match action {
            Action::Set(path, value) => {
                let v = operand(&before, value)?.ok_or_else(|| {
                    invalid(
                        "The provided expression refers to an attribute that does not exist in the item",
                    )
                })?;
                put(item, path, v)?;
            }
            Action::Remove(path) => remove(item, path),
            Action::Add(path, v) => {
                let merged = match (resolve(item, path), v) {
                    (None, Av::N(_) | Av::Ss(_) | Av::Ns(_) | Av::Bs(_)) => v.clone(),
                    (Some(Av::N(x)), Av::N(y)) => Av::N(add_numbers(x, y)?),
                    (Some(Av::Ss(x)), Av::Ss(y)) => Av::Ss(union(x, y)),
                    (Some(Av::Ns(x)), Av::Ns(y)) => Av::Ns(union(x, y)),
                    (Some(Av::Bs(x)), Av::Bs(y)) => Av::Bs(union(x, y)),
                    _ => {
                        return Err(invalid(
                            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: wrong type",
                        ));
                    }
                };
                put(item, path, merged)?;
            }
            Action::Delete(path, v) => {
                let left = match (resolve(item, path), v) {
                    (None, _) => continue,
                    (Some(Av::Ss(x)), Av::Ss(y)) => minus(x, y).map(Av::Ss),
                    (Some(Av::Ns(x)), Av::Ns(y)) => minus(x, y).map(Av::Ns),
                    (Some(Av::Bs(x)), Av::Bs(y)) => minus(x, y).map(Av::Bs),
                    _ => {
                        return Err(invalid(
                            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: not a set",
                        ));
                    }
                };
                match left {
                    Some(v) => put(item, path, v)?,
                    None => remove(item, path),
                }
            }
        }
    }
    Ok(())
}

fn union<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = a.to_vec();
    out.extend(b.iter().filter(|x| !a.contains(x)).cloned());
    out
}

/// `a` without `b`; `None` when nothing is left (an empty set is removed).
fn minus<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Option<Vec<T>> {
    let out: Vec<T> = a.iter().filter(|x| !b.contains(x)).cloned().collect();
    (!out.is_empty()).then_some(out)
}

fn bad_path() -> DynamoError {
    invalid("The document path provided in the update expression is invalid for update")
}

/// The container a path's last element lives in, created never: parents must exist.
fn parent<'i>(item: &'i mut Item, path: &Path) -> Result<Option<&'i mut Av>, DynamoError> {
    let Some((PathElem::Attr(first), rest)) = path.split_first() else {
        return Err(bad_path());
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let mut cur = item.get_mut(first).ok_or_else(bad_path)?;
    for e in &rest[..rest.len() - 1] {
        cur = match (e, cur) {
            (PathElem::Attr(a), Av::M(m)) => m.get_mut(a).ok_or_else(bad_path)?,
            (PathElem::Index(i), Av::L(l)) => l.get_mut(*i).ok_or_else(bad_path)?,
            _ => return Err(bad_path()),
        };
    }
    Ok(Some(cur))
}

fn put(item: &mut Item, path: &Path, v: Av) -> Result<(), DynamoError> {
    let last = path.last().ok_or_else(bad_path)?.clone();
    match (parent(item, path)?, last) {
        (None, PathElem::Attr(a)) => {
            item.insert(a, v);
        }
        (Some(Av::M(m)), PathElem::Attr(a)) => {
            m.insert(a, v);
        }
        (Some(Av::L(l)), PathElem::Index(i)) => {
            if i < l.len() {
                l[i] = v;
            } else {
                l.push(v);
            }
        }
        _ => return Err(bad_path()),
    }
    Ok(())
}

fn remove(item: &mut Item, path: &Path) {
    let Some(last) = path.last().cloned() else {
        return;
    };
    match (parent(item, path), last) {
        (Ok(None), PathElem::Attr(a)) => {
            item.remove(&a);
        }
        (Ok(Some(Av::M(m))), PathElem::Attr(a)) => {
            m.remove(&a);
        }
        (Ok(Some(Av::L(l))), PathElem::Index(i)) if i < l.len() => {
            l.remove(i);
        }
        _ => {}
    }
}

/// The attributes of `item` named by `paths` (nested paths keep their nesting).
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    for path in paths {
        let Some(v) = resolve(item, path) else {
            continue;
        };
        let mut value = v.clone();
        // Rebuild the nesting from the innermost element outwards.
        for e in path[1..].iter().rev() {
            value = match e {
                PathElem::Attr(a) => Av::M([(a.clone(), value)].into()),
                PathElem::Index(_) => Av::L(vec![value]),
            };
        }
        if let PathElem::Attr(a) = &path[0] {
            match (out.get_mut(a), value) {
                (Some(Av::M(existing)), Av::M(new)) => existing.extend(new),
                (Some(Av::L(existing)), Av::L(new)) => existing.extend(new),
                (_, value) => {
                    out.insert(a.clone(), value);
                }
            }
        }
    }
    out
}

/// Top-level attributes whose values differ between `a` and `b`, taken from `a`.
pub fn changed(a: &Item, b: &Item) -> Item {
    a.iter()
        .filter(|(k, v)| b.get(*k).is_none_or(|w| !w.same(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::expr::{Placeholders, parse_condition, parse_update};
    use std::collections::BTreeMap;

    fn run_update(item: &mut Item, src: &str, values: &[(&str, Av)]) -> Result<(), DynamoError> {
        let names = BTreeMap::new();
        let values: BTreeMap<String, Av> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let actions = parse_update(src, &mut Placeholders::new(&names, &values))?;
        apply(item, &actions)
    }

    #[test]
    fn set_add_remove_and_functions() {
        let mut item = Item::new();
        run_update(
            &mut item,
            "SET c = if_not_exists(c, :z) + :one, l = list_append(if_not_exists(l, :e), :l) ADD s :s",
            &[
                (":z", Av::N("0".into())),
                (":one", Av::N("1".into())),
                (":e", Av::L(vec![])),
                (":l", Av::L(vec![Av::S("a".into())])),
                (":s", Av::Ss(vec!["x".into()])),
            ],
        )
        .unwrap();
        assert_eq!(item["c"], Av::N("1".into()));
        assert_eq!(item["l"], Av::L(vec![Av::S("a".into())]));
        run_update(
            &mut item,
            "REMOVE l[0] DELETE s :s",
            &[(":s", Av::Ss(vec!["x".into()]))],
        )
        .unwrap();
        assert_eq!(item["l"], Av::L(vec![]));
        assert!(!item.contains_key("s"), "emptied sets disappear");
        let err = run_update(&mut item, "SET c = c + :s", &[(":s", Av::S("x".into()))]);
        assert!(matches!(err, Err(DynamoError::Validation(_))));
    }

    #[test]
    fn conditions_compare_by_type() {
        let item: Item = [("n".to_string(), Av::N("5".into()))].into();
        let names = BTreeMap::new();
        let values: BTreeMap<String, Av> = [
            (":s".to_string(), Av::S("5".into())),
            (":n".to_string(), Av::N("4".into())),
        ]
        .into();
        let cond = |src: &str| {
            let c = parse_condition(
                src,
                "ConditionExpression",
                &mut Placeholders::new(&names, &values),
            )
            .unwrap();
            check(&item, &c).unwrap()
        };
        assert!(cond("n > :n"));
        assert!(!cond("n > :s"), "different types never compare");
        assert!(cond("n <> :s"));
        assert!(cond("attribute_exists(n) AND NOT attribute_exists(m)"));
        assert!(!cond("n IN (:s, :n)"), "5 is neither \"5\" nor 4");
    }
}
