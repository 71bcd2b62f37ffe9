//! One table in memory: its key schema, its items ordered by partition key and sort key,
//! and its capacity. Callers hold the table's lock for a whole operation, which is what
//! makes concurrent conditional writes and updates safe.

use std::cmp::Ordering;
use std::collections::BTreeMap;
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

#[derive(Debug)]
pub struct Table {
    pub name: String,
    pub schema: KeySchema,
    created: f64,
    /// Partition key → sort key (or `None`) → item.
    items: BTreeMap<KeyValue, BTreeMap<Option<KeyValue>, Item>>,
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
        self.items.get(&key.0)?.get(&key.1)
    }

    /// Stores `item` under `key`, returning the item it replaced.
    pub fn put(&mut self, key: PrimaryKey, item: Item) -> Option<Item> {
        let old = self.items.entry(key.0).or_default().insert(key.1, item);
        self.count += usize::from(old.is_none());
        old
    }

    pub fn delete(&mut self, key: &PrimaryKey) -> Option<Item> {
        let part = self.items.get_mut(&key.0)?;
        let old = part.remove(&key.1);
        if part.is_empty() {
            self.items.remove(&key.0);
        }
        self.count -= usize::from(old.is_some());
        old
    }

    /// The items of one partition, in sort-key order.
    pub fn partition(
        &self,
        hash: &KeyValue,
    ) -> impl DoubleEndedIterator<Item = (&Option<KeyValue>, &Item)> {
        self.items.get(hash).into_iter().flat_map(|p| p.iter())
    }

    /// Every item, partition by partition.
    pub fn all(&self) -> impl Iterator<Item = (PrimaryKey, &Item)> {
        self.items.iter().flat_map(|(h, p)| {
            p.iter()
                .map(move |(r, item)| ((h.clone(), r.clone()), item))
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
