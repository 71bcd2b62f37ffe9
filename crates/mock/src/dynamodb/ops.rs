//! The operations: request fields in, answer JSON out, through the table, expression and
//! capacity modules. Each operation validates everything before it changes anything, so a
//! rejected request leaves the table as it was.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use super::Dynamo;
use super::capacity::{Capacity, read_units, write_units};
use super::error::DynamoError;
use super::eval::{apply, changed, check, project};
use super::expr::{
    Action, CompareOp, Condition, Operand, Path, PathElem, Placeholders, parse_condition,
    parse_projection, parse_update,
};
use super::table::{KeySchema, KeyType, PrimaryKey, Table};
use super::types::{AttributeValue, Item, MAX_ITEM_BYTES, item_from_json, item_size, item_to_json};

/// Largest page a Query or Scan returns.
const PAGE_BYTES: usize = 1024 * 1024;
const MAX_BATCH_WRITE: usize = 25;
const MAX_BATCH_GET: usize = 100;

fn invalid(msg: impl Into<String>) -> DynamoError {
    DynamoError::Validation(msg.into())
}

fn wrong_shape(field: &str, expected: &str) -> DynamoError {
    DynamoError::Serialization(format!("{field}: expected {expected}"))
}

/// Typed access to the fields of a request body.
#[derive(Clone, Copy)]
pub(super) struct Request<'a>(pub &'a Value);

impl<'a> Request<'a> {
    fn field(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn str(&self, name: &str) -> Result<Option<&'a str>, DynamoError> {
        self.field(name)
            .map(|v| v.as_str().ok_or_else(|| wrong_shape(name, "a string")))
            .transpose()
    }

    fn required_str(&self, name: &str) -> Result<&'a str, DynamoError> {
        self.str(name)?.ok_or_else(|| {
            invalid(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(name)
            ))
        })
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, DynamoError> {
        self.field(name)
            .map(|v| v.as_bool().ok_or_else(|| wrong_shape(name, "a boolean")))
            .transpose()
    }

    fn limit(&self) -> Result<Option<usize>, DynamoError> {
        match self.field("Limit") {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Ok(Some(n as usize)),
                Some(_) => Err(invalid(
                    "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
                )),
                None => Err(wrong_shape("Limit", "an integer")),
            },
        }
    }

    fn item(&self, name: &str) -> Result<Option<Item>, DynamoError> {
        self.field(name).map(item_from_json).transpose()
    }

    fn required_item(&self, name: &str) -> Result<Item, DynamoError> {
        self.item(name)?.ok_or_else(|| {
            invalid(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(name)
            ))
        })
    }

    fn names(&self) -> Result<BTreeMap<String, String>, DynamoError> {
        let Some(v) = self.field("ExpressionAttributeNames") else {
            return Ok(BTreeMap::new());
        };
        let obj = v
            .as_object()
            .ok_or_else(|| wrong_shape("ExpressionAttributeNames", "a map"))?;
        obj.iter()
            .map(|(k, v)| {
                let name = v
                    .as_str()
                    .ok_or_else(|| wrong_shape("ExpressionAttributeNames", "string values"))?;
                Ok((k.clone(), name.to_string()))
            })
            .collect()
    }

    fn values(&self) -> Result<BTreeMap<String, AttributeValue>, DynamoError> {
        Ok(self
            .item("ExpressionAttributeValues")?
            .unwrap_or_default()
            .into_iter()
            .collect())
    }

    /// `ReturnValues`, checked against what the operation allows.
    fn return_values(&self, allowed: &[&str]) -> Result<&'a str, DynamoError> {
        let rv = self.str("ReturnValues")?.unwrap_or("NONE");
        if allowed.contains(&rv) {
            Ok(rv)
        } else {
            Err(invalid(format!(
                "ReturnValues can only be {}",
                allowed.join(", ")
            )))
        }
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// The expressions of one request, parsed together so unused placeholders are caught.
struct Expressions {
    condition: Option<Condition>,
    filter: Option<Condition>,
    key: Option<Condition>,
    update: Option<Vec<Action>>,
    projection: Option<Vec<Path>>,
}

impl Expressions {
    fn parse(req: Request<'_>) -> Result<Self, DynamoError> {
        let names = req.names()?;
        let values = req.values()?;
        let mut ph = Placeholders::new(&names, &values);
        let mut cond = |field: &'static str| -> Result<Option<Condition>, DynamoError> {
            req.str(field)?
                .map(|s| parse_condition(s, field, &mut ph))
                .transpose()
        };
        let condition = cond("ConditionExpression")?;
        let filter = cond("FilterExpression")?;
        let key = cond("KeyConditionExpression")?;
        let update = req
            .str("UpdateExpression")?
            .map(|s| parse_update(s, &mut ph))
            .transpose()?;
        let projection = req
            .str("ProjectionExpression")?
            .map(|s| parse_projection(s, &mut ph))
            .transpose()?;
        ph.check_all_used()?;
        Ok(Self {
            condition,
            filter,
            key,
            update,
            projection,
        })
    }

    /// Fails the request when the item does not meet its ConditionExpression.
    fn check_condition(&self, item: Option<&Item>) -> Result<(), DynamoError> {
        let empty = Item::new();
        match &self.condition {
            Some(c) if !check(item.unwrap_or(&empty), c)? => {
                Err(DynamoError::ConditionalCheckFailed)
            }
            _ => Ok(()),
        }
    }

    fn project<'i>(&self, item: &'i Item) -> std::borrow::Cow<'i, Item> {
        match &self.projection {
            Some(p) => std::borrow::Cow::Owned(project(item, p)),
            None => std::borrow::Cow::Borrowed(item),
        }
    }
}

fn check_size(item: &Item) -> Result<(), DynamoError> {
    if item_size(item) > MAX_ITEM_BYTES {
        return Err(invalid("Item size has exceeded the maximum allowed size"));
    }
    Ok(())
}

fn throttle(ok: bool) -> Result<(), DynamoError> {
    if ok {
        Ok(())
    } else {
        Err(DynamoError::ProvisionedThroughputExceeded)
    }
}

fn lock(t: &Arc<Mutex<Table>>) -> std::sync::MutexGuard<'_, Table> {
    t.lock().expect("table lock")
}

/// GetItem's answer: `{"Item": …}` for an item found, `{}` for none.
pub(super) struct ItemAnswer<'a>(pub Option<&'a Item>);

impl Serialize for ItemAnswer<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(usize::from(self.0.is_some())))?;
        if let Some(item) = self.0 {
            m.serialize_entry("Item", item)?;
        }
        m.end()
    }
}

fn attributes(item: Option<Item>) -> Value {
    match item {
        Some(item) if !item.is_empty() => json!({"Attributes": item_to_json(&item)}),
        _ => json!({}),
    }
}

impl Table {
    fn take_write(&mut self, key: &PrimaryKey, bytes: usize) -> Result<(), DynamoError> {
        match &mut self.capacity {
            Some(c) => throttle(c.write(&key.0, write_units(bytes as u64))),
            None => Ok(()),
        }
    }

    fn take_read(
        &mut self,
        key: &PrimaryKey,
        bytes: usize,
        consistent: bool,
    ) -> Result<(), DynamoError> {
        match &mut self.capacity {
            Some(c) => throttle(c.read(&key.0, read_units(bytes as u64, consistent))),
            None => Ok(()),
        }
    }
}

impl Dynamo {
    // ---- tables --------------------------------------------------------------------

    pub(super) fn create_table(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let name = req.required_str("TableName")?;
        if name.len() < 3
            || name.len() > 255
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(invalid(format!(
                "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
            )));
        }
        let defs: BTreeMap<&str, KeyType> = req
            .field("AttributeDefinitions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("AttributeDefinitions must be provided"))?
            .iter()
            .map(|d| {
                let n = d.get("AttributeName").and_then(Value::as_str);
                let t = d
                    .get("AttributeType")
                    .and_then(Value::as_str)
                    .and_then(KeyType::parse);
                n.zip(t)
                    .ok_or_else(|| invalid("Invalid AttributeDefinitions"))
            })
            .collect::<Result<_, _>>()?;
        let mut hash = None;
        let mut range = None;
        for k in req
            .field("KeySchema")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("KeySchema must be provided"))?
        {
            let n = k
                .get("AttributeName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let ty = *defs.get(n).ok_or_else(|| {
                invalid("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions.")
            })?;
            let slot = match k.get("KeyType").and_then(Value::as_str) {
                Some("HASH") => &mut hash,
                Some("RANGE") => &mut range,
                _ => return Err(invalid("Invalid KeyType in KeySchema")),
            };
            if slot.replace((n.to_string(), ty)).is_some() {
                return Err(invalid(
                    "Invalid KeySchema: Too many key elements of one type",
                ));
            }
        }
        let hash = hash.ok_or_else(|| invalid("Invalid KeySchema: No Hash Key specified"))?;
        if defs.len() != 1 + usize::from(range.is_some()) {
            return Err(invalid(
                "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ));
        }
        let capacity = self.memory.as_ref().map(|m| Capacity::new(m, self.workers));
        let table = Table::new(name.to_string(), KeySchema { hash, range }, capacity);
        let description = table.describe();
        let mut tables = self.tables.write().expect("table map lock");
        if tables.contains_key(name) {
            return Err(DynamoError::ResourceInUse(format!(
                "Table already exists: {name}"
            )));
        }
        tables.insert(name.to_string(), Arc::new(Mutex::new(table)));
        Ok(json!({ "TableDescription": description }))
    }

    pub(super) fn describe_table(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let t = self.table(req.required_str("TableName")?)?;
        Ok(json!({ "Table": lock(&t).describe() }))
    }

    pub(super) fn list_tables(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let start = req.str("ExclusiveStartTableName")?;
        let limit = req.limit()?.unwrap_or(100).min(100);
        let tables = self.tables.read().expect("table map lock");
        let mut names = tables
            .keys()
            .filter(|n| start.is_none_or(|s| n.as_str() > s));
        let page: Vec<&String> = names.by_ref().take(limit).collect();
        let mut out = json!({ "TableNames": page });
        if names.next().is_some() {
            out["LastEvaluatedTableName"] = json!(page.last());
        }
        Ok(out)
    }

    pub(super) fn delete_table(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let name = req.required_str("TableName")?;
        let t = self
            .tables
            .write()
            .expect("table map lock")
            .remove(name)
            .ok_or(DynamoError::ResourceNotFound)?;
        let mut d = lock(&t).describe();
        d["TableStatus"] = json!("DELETING");
        Ok(json!({ "TableDescription": d }))
    }

    // ---- items ---------------------------------------------------------------------

    pub(super) fn put_item(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let t = self.table(req.required_str("TableName")?)?;
        let item = req.required_item("Item")?;
        let rv = req.return_values(&["NONE", "ALL_OLD"])?;
        let ex = Expressions::parse(req)?;
        check_size(&item)?;
        let mut table = lock(&t);
        let key = table.key_of(&item, false)?;
        ex.check_condition(table.get(&key))?;
        table.take_write(&key, item_size(&item))?;
        let old = table.put(key, item);
        Ok(attributes(old.filter(|_| rv == "ALL_OLD")))
    }

    /// GetItem, its answer made by `render` from the item found (projected) while the
    /// table's lock is held: the stored item is read in place, never copied. A throttled
    /// read discards what `render` made.
    pub(super) fn get_item_with<R>(
        &self,
        req: Request<'_>,
        render: impl FnOnce(Option<&Item>) -> R,
    ) -> Result<R, DynamoError> {
        let t = self.table(req.required_str("TableName")?)?;
        let key_attrs = req.required_item("Key")?;
        let consistent = req.bool("ConsistentRead")?.unwrap_or(false);
        let ex = Expressions::parse(req)?;
        let mut table = lock(&t);
        let key = table.key_of(&key_attrs, true)?;
        let found = table.get(&key);
        let size = found.map_or(0, item_size);
        let answer = render(found.map(|item| ex.project(item)).as_deref());
        table.take_read(&key, size, consistent)?;
        Ok(answer)
    }

    pub(super) fn get_item(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        self.get_item_with(req, |item| {
            serde_json::to_value(ItemAnswer(item)).expect("an item serializes")
        })
    }

    pub(super) fn update_item(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let t = self.table(req.required_str("TableName")?)?;
        let key_attrs = req.required_item("Key")?;
        let rv =
            req.return_values(&["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"])?;
        let ex = Expressions::parse(req)?;
        let mut table = lock(&t);
        let key = table.key_of(&key_attrs, true)?;
        let actions = ex.update.as_deref().unwrap_or_default();
        for a in actions {
            let (Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _)) =
                a;
            if let Some(PathElem::Attr(name)) = p.first() {
                if key_attrs.contains_key(name) {
                    return Err(invalid(format!(
                        "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
                    )));
                }
            }
        }
        let old = table.get(&key).cloned();
        ex.check_condition(old.as_ref())?;
        let mut new = old.clone().unwrap_or_else(|| key_attrs.clone());
        apply(&mut new, actions)?;
        check_size(&new)?;
        table.take_write(&key, item_size(&new))?;
        table.put(key, new.clone());
        let old = old.unwrap_or_default();
        Ok(attributes(match rv {
            "ALL_OLD" => Some(old),
            "UPDATED_OLD" => Some(changed(&old, &new)),
            "ALL_NEW" => Some(new),
            "UPDATED_NEW" => Some(changed(&new, &old)),
            _ => None,
        }))
    }

    pub(super) fn delete_item(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let t = self.table(req.required_str("TableName")?)?;
        let key_attrs = req.required_item("Key")?;
        let rv = req.return_values(&["NONE", "ALL_OLD"])?;
        let ex = Expressions::parse(req)?;
        let mut table = lock(&t);
        let key = table.key_of(&key_attrs, true)?;
        ex.check_condition(table.get(&key))?;
        let bytes = table.get(&key).map_or(0, item_size);
        table.take_write(&key, bytes)?;
        let old = table.delete(&key);
        Ok(attributes(old.filter(|_| rv == "ALL_OLD")))
    }

    // ---- reads of many items -------------------------------------------------------

    pub(super) fn query(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let t = self.table(req.required_str("TableName")?)?;
        if req.field("IndexName").is_some() {
            return Err(invalid("The table does not have the specified index"));
        }
        let ex = Expressions::parse(req)?;
        let forward = req.bool("ScanIndexForward")?.unwrap_or(true);
        let start = req.item("ExclusiveStartKey")?;
        let mut table = lock(&t);
        let key_cond = ex.key.as_ref().ok_or_else(|| {
            invalid("Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.")
        })?;
        let hash = partition_key(key_cond, &table.schema)?;
        let hash_key = table.hash_key(&hash)?;
        let start = start.map(|s| table.key_of(&s, true)).transpose()?;
        let mut items: Box<dyn Iterator<Item = _>> = if forward {
            Box::new(table.partition(&hash_key))
        } else {
            Box::new(table.partition(&hash_key).rev())
        };
        if let Some((_, start_range)) = &start {
            items = Box::new(items.skip_while(move |(r, _)| {
                if forward {
                    *r <= start_range
                } else {
                    *r >= start_range
                }
            }));
        }
        let mut matching = Vec::new();
        for (_, item) in items {
            if check(item, key_cond)? {
                matching.push(item);
            }
        }
        let page = Page::collect(&table, matching.into_iter(), req.limit()?, &ex)?;
        let key = (hash_key, None);
        table.take_read(
            &key,
            page.bytes,
            req.bool("ConsistentRead")?.unwrap_or(false),
        )?;
        page.answer(req)
    }

    pub(super) fn scan(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let t = self.table(req.required_str("TableName")?)?;
        let ex = Expressions::parse(req)?;
        let start = req.item("ExclusiveStartKey")?;
        let mut table = lock(&t);
        let start = start.map(|s| table.key_of(&s, true)).transpose()?;
        let items: Vec<&Item> = table
            .scan_after(start.as_ref())
            .map(|(_, item)| item)
            .collect();
        let page = Page::collect(&table, items.into_iter(), req.limit()?, &ex)?;
        let key = table
            .scan_after(None)
            .next()
            .map(|(k, _)| k)
            .unwrap_or_else(|| (super::table::KeyValue::S(String::new()), None));
        table.take_read(
            &key,
            page.bytes,
            req.bool("ConsistentRead")?.unwrap_or(false),
        )?;
        page.answer(req)
    }

    // ---- batches -------------------------------------------------------------------

    pub(super) fn batch_write_item(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let requests = req
            .field("RequestItems")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("RequestItems must be provided"))?;
        enum Write {
            Put(Item),
            Delete(Item),
        }
        let mut plan = Vec::new();
        let mut count = 0;
        for (name, list) in requests {
            let t = self.table(name)?;
            let list = list
                .as_array()
                .ok_or_else(|| wrong_shape("RequestItems", "lists"))?;
            let table = lock(&t);
            for w in list {
                count += 1;
                let write = match (w.get("PutRequest"), w.get("DeleteRequest")) {
                    (Some(p), None) => {
                        let item = Request(p).required_item("Item")?;
                        check_size(&item)?;
                        table.key_of(&item, false)?;
                        Write::Put(item)
                    }
                    (None, Some(d)) => {
                        let key = Request(d).required_item("Key")?;
                        table.key_of(&key, true)?;
                        Write::Delete(key)
                    }
                    _ => {
                        return Err(invalid(
                            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                        ));
                    }
                };
                plan.push((name.clone(), t.clone(), w.clone(), write));
            }
        }
        if count == 0 || count > MAX_BATCH_WRITE {
            return Err(invalid(format!(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_WRITE} and greater than 0"
            )));
        }
        let mut unprocessed: Map<String, Value> = Map::new();
        let mut done = 0;
        for (name, t, raw, write) in plan {
            let mut table = lock(&t);
            let ok = match write {
                Write::Put(item) => {
                    let key = table.key_of(&item, false)?;
                    let ok = table.take_write(&key, item_size(&item)).is_ok();
                    if ok {
                        table.put(key, item);
                    }
                    ok
                }
                Write::Delete(k) => {
                    let key = table.key_of(&k, true)?;
                    let bytes = table.get(&key).map_or(0, item_size);
                    let ok = table.take_write(&key, bytes).is_ok();
                    if ok {
                        table.delete(&key);
                    }
                    ok
                }
            };
            if ok {
                done += 1;
            } else {
                unprocessed
                    .entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("a list")
                    .push(raw);
            }
        }
        if done == 0 {
            return Err(DynamoError::ProvisionedThroughputExceeded);
        }
        Ok(json!({ "UnprocessedItems": unprocessed }))
    }

    pub(super) fn batch_get_item(&self, req: Request<'_>) -> Result<Value, DynamoError> {
        let requests = req
            .field("RequestItems")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("RequestItems must be provided"))?;
        let total: usize = requests
            .values()
            .map(|r| r.get("Keys").and_then(Value::as_array).map_or(0, Vec::len))
            .sum();
        if total == 0 || total > MAX_BATCH_GET {
            return Err(invalid(format!(
                "Too many items requested for the BatchGetItem call (at most {MAX_BATCH_GET})"
            )));
        }
        let mut responses = Map::new();
        let mut unprocessed = Map::new();
        let mut served = 0;
        for (name, spec) in requests {
            let t = self.table(name)?;
            let spec_req = Request(spec);
            let ex = Expressions::parse(spec_req)?;
            let consistent = spec_req.bool("ConsistentRead")?.unwrap_or(false);
            let keys = spec
                .get("Keys")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("Keys must be provided"))?;
            let mut table = lock(&t);
            let mut found = Vec::new();
            let mut left = Vec::new();
            for k in keys {
                let key = table.key_of(&item_from_json(k)?, true)?;
                let item = table.get(&key).cloned();
                if table
                    .take_read(&key, item.as_ref().map_or(0, item_size), consistent)
                    .is_err()
                {
                    left.push(k.clone());
                    continue;
                }
                served += 1;
                if let Some(item) = item {
                    found.push(item_to_json(&ex.project(&item)));
                }
            }
            responses.insert(name.clone(), Value::Array(found));
            if !left.is_empty() {
                let mut spec = spec.clone();
                spec["Keys"] = Value::Array(left);
                unprocessed.insert(name.clone(), spec);
            }
        }
        if served == 0 {
            return Err(DynamoError::ProvisionedThroughputExceeded);
        }
        Ok(json!({ "Responses": responses, "UnprocessedKeys": unprocessed }))
    }
}

/// The partition key value a KeyConditionExpression fixes, after checking its shape:
/// `pk = :v`, optionally `AND` one sort-key condition (`=`, `<`, `<=`, `>`, `>=`,
/// `BETWEEN`, `begins_with`).
fn partition_key(cond: &Condition, schema: &KeySchema) -> Result<AttributeValue, DynamoError> {
    let bad = |msg: &str| invalid(format!("Invalid KeyConditionExpression: {msg}"));
    let parts = match cond {
        Condition::And(a, b) => vec![a.as_ref(), b.as_ref()],
        c => vec![c],
    };
    let attr = |o: &Operand| match o {
        Operand::Path(p) if p.len() == 1 => match &p[0] {
            PathElem::Attr(a) => Some(a.clone()),
            PathElem::Index(_) => None,
        },
        _ => None,
    };
    let is_value = |o: &Operand| matches!(o, Operand::Value(_));
    let mut hash = None;
    let mut range_seen = false;
    for part in parts {
        let (name, value) = match part {
            Condition::Compare(op, l, r) if is_value(r) => {
                let name = attr(l).ok_or_else(|| bad("Syntax error"))?;
                if name == schema.hash.0 && *op == CompareOp::Eq {
                    (name, Some(r))
                } else if *op == CompareOp::Ne {
                    return Err(bad("Unsupported operator in KeyConditionExpression: <>"));
                } else {
                    (name, None)
                }
            }
            Condition::Between(v, lo, hi) if is_value(lo) && is_value(hi) => {
                (attr(v).ok_or_else(|| bad("Syntax error"))?, None)
            }
            Condition::BeginsWith(v, p) if is_value(p) => {
                (attr(v).ok_or_else(|| bad("Syntax error"))?, None)
            }
            _ => return Err(bad("Invalid operator used in KeyConditionExpression")),
        };
        match value {
            Some(Operand::Value(v)) => {
                if hash.replace(v.clone()).is_some() {
                    return Err(bad(
                        "KeyConditionExpressions must only contain one condition per key",
                    ));
                }
            }
            _ => {
                if schema.range.as_ref().is_none_or(|r| r.0 != name) {
                    return Err(invalid(format!(
                        "Query condition missed key schema element: {}",
                        schema.range.as_ref().map_or(&schema.hash.0, |r| &r.0)
                    )));
                }
                if std::mem::replace(&mut range_seen, true) {
                    return Err(bad(
                        "KeyConditionExpressions must only contain one condition per key",
                    ));
                }
            }
        }
    }
    hash.ok_or_else(|| {
        invalid(format!(
            "Query condition missed key schema element: {}",
            schema.hash.0
        ))
    })
}

/// One page of a Query or Scan: `Limit` and 1 MB bound what is evaluated, the filter what
/// is returned.
struct Page {
    items: Vec<Item>,
    scanned: usize,
    bytes: usize,
    last: Option<Item>,
}

impl Page {
    fn collect<'i>(
        table: &Table,
        items: impl Iterator<Item = &'i Item>,
        limit: Option<usize>,
        ex: &Expressions,
    ) -> Result<Self, DynamoError> {
        let mut page = Page {
            items: Vec::new(),
            scanned: 0,
            bytes: 0,
            last: None,
        };
        let mut items = items.peekable();
        while let Some(item) = items.next() {
            page.scanned += 1;
            page.bytes += item_size(item);
            let keep = match &ex.filter {
                Some(f) => check(item, f)?,
                None => true,
            };
            if keep {
                page.items.push(ex.project(item).into_owned());
            }
            let full = limit.is_some_and(|l| page.scanned >= l) || page.bytes >= PAGE_BYTES;
            if full && items.peek().is_some() {
                page.last = Some(table.key_item(item));
                break;
            }
        }
        Ok(page)
    }

    fn answer(self, req: Request<'_>) -> Result<Value, DynamoError> {
        let mut out = json!({ "Count": self.items.len(), "ScannedCount": self.scanned });
        match req.str("Select")?.unwrap_or("ALL_ATTRIBUTES") {
            "COUNT" => {}
            "ALL_ATTRIBUTES" | "SPECIFIC_ATTRIBUTES" => {
                out["Items"] = Value::Array(self.items.iter().map(item_to_json).collect());
            }
            other => return Err(invalid(format!("Unsupported Select value: {other}"))),
        }
        if let Some(last) = self.last {
            out["LastEvaluatedKey"] = item_to_json(&last);
        }
        Ok(out)
    }
}
