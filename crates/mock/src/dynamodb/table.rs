//! One table in memory: its key schema, its items ordered by partition key and sort key,
//! and its capacity. Callers hold the table's lock for a whole operation, which is what
//! makes concurrent conditional writes and updates safe.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::ops::Bound;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::capacity::Capacity;
use super::error::DynamoError;
use super::types::{AttributeValue, Item, compare_numbers};

/// A key attribute's value (keys are strings, numbers or binaries).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyValue {
    S(String),
    /// Canonical decimal text, so `1.0` and `1` are one key.
    N(String),
    B(Vec<u8>),
}

impl Ord for KeyValue {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::S(a), Self::S(b)) => a.cmp(b),
            (Self::N(a), Self::N(b)) => compare_numbers(a, b).then_with(|| a.cmp(b)),
            (Self::B(a), Self::B(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for KeyValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl KeyValue {
    fn rank(&self) -> u8 {
        match self {
            Self::S(_) => 0,
            Self::N(_) => 1,
            Self::B(_) => 2,
        }
    }

    fn canonical_number(n: &str) -> String {
        match n.trim().parse::<i128>() {
            Ok(i) => i.to_string(),
            Err(_) => n
                .trim()
                .parse::<f64>()
                .map_or_else(|_| n.to_string(), |f| f.to_string()),
        }
    }
}

/// The type a key attribute is declared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    S,
    N,
    B,
}

impl KeyType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "S" => Some(Self::S),
            "N" => Some(Self::N),
            "B" => Some(Self::B),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::N => "N",
            Self::B => "B",
        }
    }

    /// The key value of `v`, when it has this type and is not empty.
    fn key(self, v: &AttributeValue) -> Option<KeyValue> {
        match (self, v) {
            (Self::S, AttributeValue::S(s)) if !s.is_empty() => Some(KeyValue::S(s.clone())),
            (Self::N, AttributeValue::N(n)) => Some(KeyValue::N(KeyValue::canonical_number(n))),
            (Self::B, AttributeValue::B(b)) if !b.is_empty() => Some(KeyValue::B(b.clone())),
            _ => None,
        }
    }
}

/// A table's primary key: partition key and optional sort key.
#[derive(Debug, Clone)]
pub struct KeySchema {
    pub hash: (String, KeyType),
    pub range: Option<(String, KeyType)>,
}

/// The primary key of one item.
pub type PrimaryKey = (KeyValue, Option<KeyValue>);

/// A partition key where the table keeps it: ordered by a hash of its value first, as the
/// service spreads partitions (so Scan, too, walks them in hash order), then by the value.
/// A lookup then compares one integer at each level of the tree, not the key's bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    hash: u64,
    key: KeyValue,
}

impl Slot {
    fn new(key: KeyValue) -> Self {
        // A fixed hash, not a per-process random one: the same items scan in the same order
        // on every run and every worker.
        let hash = rustc_hash::FxBuildHasher.hash_one(&key);
        Self { hash, key }
    }
}

#[derive(Debug)]
pub struct Table {
    pub name: String,
    pub schema: KeySchema,
    created: f64,
    /// Partition key → sort key (or `None`) → item.
    items: BTreeMap<Slot, BTreeMap<Option<KeyValue>, Item>>,
    count: usize,
    pub capacity: Option<Capacity>,
}

impl Table {
    pub fn new(name: String, schema: KeySchema, capacity: Option<Capacity>) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            name,
            schema,
            created,
            items: BTreeMap::new(),
            count: 0,
            capacity,
        }
    }

    /// The primary key of `attrs` (an item, or a `Key` that must hold only key attributes).
    pub fn key_of(&self, attrs: &Item, only_key: bool) -> Result<PrimaryKey, DynamoError> {
        let mismatch =
            || DynamoError::Validation("The provided key element does not match the schema".into());
        let part = |(name, ty): &(String, KeyType)| -> Result<KeyValue, DynamoError> {
            match attrs.get(name) {
                None if only_key => Err(mismatch()),
                None => Err(DynamoError::Validation(format!(
                    "One or more parameter values were invalid: Missing the key {name} in the item"
                ))),
                Some(v) => ty.key(v).ok_or_else(|| {
                    if only_key {
                        mismatch()
                    } else {
                        DynamoError::Validation(format!(
                            "One or more parameter values were invalid: Type mismatch for key {name} expected: {} actual: {}",
                            ty.name(),
                            v.type_name()
                        ))
                    }
                }),
            }
        };
        let hash = part(&self.schema.hash)?;
        let range = self.schema.range.as_ref().map(part).transpose()?;
        let expected = 1 + usize::from(self.schema.range.is_some());
        if only_key && attrs.len() != expected {
            return Err(mismatch());
        }
        Ok((hash, range))
    }

    /// The partition key value of a Query's `pk = :v`.
    pub fn hash_key(&self, v: &AttributeValue) -> Result<KeyValue, DynamoError> {
        self.schema.hash.1.key(v).ok_or_else(|| {
            DynamoError::Validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type".into(),
            )
        })
    }

    /// The key attributes of `item`, as an item (for `LastEvaluatedKey`).
    pub fn key_item(&self, item: &Item) -> Item {
        let mut key = Item::new();
        let names =
            std::iter::once(&self.schema.hash.0).chain(self.schema.range.as_ref().map(|r| &r.0));
        for name in names {
            if let Some(v) = item.get(name) {
                key.insert(name.clone(), v.clone());
            }
        }
        key
    }

    pub fn get(&self, key: &PrimaryKey) -> Option<&Item> {
        self.items.get(&Slot::new(key.0.clone()))?.get(&key.1)
    }

    /// Stores `item` under `key`, returning the item it replaced.
    pub fn put(&mut self, key: PrimaryKey, item: Item) -> Option<Item> {
        let old = self
            .items
            .entry(Slot::new(key.0))
            .or_default()
            .insert(key.1, item);
        self.count += usize::from(old.is_none());
        old
    }

    pub fn delete(&mut self, key: &PrimaryKey) -> Option<Item> {
        let slot = Slot::new(key.0.clone());
        let part = self.items.get_mut(&slot)?;
        let old = part.remove(&key.1);
        if part.is_empty() {
            self.items.remove(&slot);
        }
        self.count -= usize::from(old.is_some());
        old
    }

    /// The items of one partition, in sort-key order.
    pub fn partition(
        &self,
        hash: &KeyValue,
    ) -> impl DoubleEndedIterator<Item = (&Option<KeyValue>, &Item)> {
        self.items
            .get(&Slot::new(hash.clone()))
            .into_iter()
            .flat_map(|p| p.iter())
    }

    /// Every item in Scan order (partition by partition, in sort-key order within one),
    /// from just after `start` when given.
    pub fn scan_after(
        &self,
        start: Option<&PrimaryKey>,
    ) -> impl Iterator<Item = (PrimaryKey, &Item)> {
        let start = start.map(|(hash, range)| (Slot::new(hash.clone()), range.clone()));
        let from = match &start {
            Some((slot, _)) => Bound::Included(slot.clone()),
            None => Bound::Unbounded,
        };
        self.items
            .range((from, Bound::Unbounded))
            .flat_map(move |(slot, part)| {
                // In the start's own partition, only the sort keys after the start's.
                let after = match &start {
                    Some((s, range)) if s == slot => Bound::Excluded(range.clone()),
                    _ => Bound::Unbounded,
                };
                part.range((after, Bound::Unbounded))
                    .map(move |(range, item)| ((slot.key.clone(), range.clone()), item))
            })
    }

    /// The `TableDescription` structure of DescribeTable and friends.
    pub fn describe(&self) -> Value {
        let mut schema = vec![json!({"AttributeName": self.schema.hash.0, "KeyType": "HASH"})];
        let mut defs = vec![
            json!({"AttributeName": self.schema.hash.0, "AttributeType": self.schema.hash.1.name()}),
        ];
        if let Some((name, ty)) = &self.schema.range {
            schema.push(json!({"AttributeName": name, "KeyType": "RANGE"}));
            defs.push(json!({"AttributeName": name, "AttributeType": ty.name()}));
        }
        json!({
            "TableName": self.name,
            "TableStatus": "ACTIVE",
            "KeySchema": schema,
            "AttributeDefinitions": defs,
            "CreationDateTime": self.created,
            "ItemCount": self.count,
            "TableSizeBytes": 0,
            "TableArn": format!("arn:aws:dynamodb:us-east-1:000000000000:table/{}", self.name),
            "TableId": format!("{:032x}", self.created.to_bits()),
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
            "ProvisionedThroughput": {
                "NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let schema = KeySchema {
            hash: ("pk".into(), KeyType::S),
            range: Some(("sk".into(), KeyType::N)),
        };
        let mut t = Table::new("t".into(), schema, None);
        for p in 0..40 {
            for r in 0..3 {
                let key = (
                    KeyValue::S(format!("p{p}")),
                    Some(KeyValue::N(r.to_string())),
                );
                t.put(key, Item::new());
            }
        }
        t
    }

    #[test]
    fn a_scan_resumed_after_any_key_yields_exactly_the_rest() {
        let t = table();
        let all: Vec<PrimaryKey> = t.scan_after(None).map(|(k, _)| k).collect();
        assert_eq!(all.len(), 120);
        let mut distinct = all.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 120, "each item once");
        // Partitions in hash order, not key order (as the service walks them)…
        let partitions: Vec<&KeyValue> = all.iter().step_by(3).map(|k| &k.0).collect();
        assert!(partitions.windows(2).any(|w| w[0] > w[1]));
        // …and sort keys in order within one.
        assert!(
            all.chunks(3)
                .all(|c| c[0].0 == c[2].0 && c[0].1 < c[1].1 && c[1].1 < c[2].1)
        );
        for (i, start) in all.iter().enumerate() {
            let rest: Vec<PrimaryKey> = t.scan_after(Some(start)).map(|(k, _)| k).collect();
            assert_eq!(rest, all[i + 1..], "resumed after {start:?}");
        }
        // A start key the table no longer holds still resumes where it stood.
        let mut t = t;
        t.delete(&all[4]);
        let rest: Vec<PrimaryKey> = t.scan_after(Some(&all[4])).map(|(k, _)| k).collect();
        assert_eq!(rest, all[5..]);
    }

    #[test]
    fn lookups_find_what_was_put_and_nothing_else() {
        let mut t = table();
        let key = (KeyValue::S("p7".into()), Some(KeyValue::N("2".into())));
        assert!(t.get(&key).is_some());
        assert!(
            t.get(&(KeyValue::S("p7".into()), Some(KeyValue::N("3".into()))))
                .is_none()
        );
        assert!(
            t.get(&(KeyValue::S("p70".into()), Some(KeyValue::N("2".into()))))
                .is_none()
        );
        assert_eq!(t.partition(&KeyValue::S("p7".into())).count(), 3);
        assert!(t.delete(&key).is_some());
        assert!(t.get(&key).is_none());
        assert_eq!(t.partition(&KeyValue::S("p7".into())).count(), 2);
    }
}
