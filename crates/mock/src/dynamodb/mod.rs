//! The DynamoDB API (JSON 1.0 protocol, `X-Amz-Target: DynamoDB_20120810.<Op>`), in memory.
//!
//! [`Dynamo::call`] takes an operation name and a body and gives back the answer body or a
//! typed [`DynamoError`]; the HTTP layer adds `x-amzn-RequestId` and `x-amz-crc32`. The
//! chat pipeline calls the same operations in-process for conversation memory, so its
//! reads and writes meet the same capacity limits as an SDK's.
//!
//! Tables live in this process only: with `--workers N` each worker holds its own, so the
//! HTTP API is consistent per connection (use one worker for SDK tests).

mod capacity;
pub mod error;
mod eval;
pub mod expr;
mod ops;
mod table;
pub mod types;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use surge_profile::system::Memory;

pub use error::DynamoError;
pub use types::{AttributeValue, Item};

use table::Table;

/// The operations the mock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateTable,
    DescribeTable,
    ListTables,
    DeleteTable,
    PutItem,
    GetItem,
    UpdateItem,
    DeleteItem,
    Query,
    Scan,
    BatchWriteItem,
    BatchGetItem,
}

impl Operation {
    pub const ALL: [Operation; 12] = [
        Self::CreateTable,
        Self::DescribeTable,
        Self::ListTables,
        Self::DeleteTable,
        Self::PutItem,
        Self::GetItem,
        Self::UpdateItem,
        Self::DeleteItem,
        Self::Query,
        Self::Scan,
        Self::BatchWriteItem,
        Self::BatchGetItem,
    ];

    /// The operation named by an `X-Amz-Target` header.
    pub fn from_target(target: &str) -> Result<Self, DynamoError> {
        let name = target
            .strip_prefix("DynamoDB_20120810.")
            .ok_or(DynamoError::UnknownOperation)?;
        Self::ALL
            .into_iter()
            .find(|op| op.name() == name)
            .ok_or(DynamoError::UnknownOperation)
    }

    /// Where this operation stands in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::CreateTable => "CreateTable",
            Self::DescribeTable => "DescribeTable",
            Self::ListTables => "ListTables",
            Self::DeleteTable => "DeleteTable",
            Self::PutItem => "PutItem",
            Self::GetItem => "GetItem",
            Self::UpdateItem => "UpdateItem",
            Self::DeleteItem => "DeleteItem",
            Self::Query => "Query",
            Self::Scan => "Scan",
            Self::BatchWriteItem => "BatchWriteItem",
            Self::BatchGetItem => "BatchGetItem",
        }
    }
}

/// All tables of this process, and the capacity model new tables get.
pub struct Dynamo {
    tables: RwLock<BTreeMap<String, Arc<Mutex<Table>>>>,
    memory: Option<Memory>,
    workers: u32,
}

impl Dynamo {
    /// Tables throttle per `memory` (divided by `workers`); `None` never throttles.
    pub fn new(memory: Option<Memory>, workers: u32) -> Self {
        Self {
            tables: RwLock::new(BTreeMap::new()),
            memory,
            workers,
        }
    }

    /// Runs one operation on a JSON body and appends its answer's JSON to `out`, which an
    /// error leaves as it was.
    pub fn call(&self, op: Operation, body: &[u8], out: &mut Vec<u8>) -> Result<(), DynamoError> {
        let body: Value = serde_json::from_slice(body).map_err(|e| {
            DynamoError::Serialization(format!(
                "Start of structure or map found where not expected: {e}"
            ))
        })?;
        if !body.is_object() {
            return Err(DynamoError::Serialization(
                "Start of structure or map expected".into(),
            ));
        }
        let mark = out.len();
        let written = match op {
            // The hot read: its item is written from the table, not first made a JSON tree.
            Operation::GetItem => self.get_item_with(ops::Request(&body), |item| {
                serde_json::to_writer(&mut *out, &ops::ItemAnswer(item))
            }),
            _ => self
                .call_json(op, &body)
                .map(|answer| serde_json::to_writer(&mut *out, &answer)),
        };
        match written {
            Ok(w) => {
                w.expect("JSON writes to memory");
                Ok(())
            }
            Err(e) => {
                out.truncate(mark);
                Err(e)
            }
        }
    }

    /// Runs one operation in process (the chat pipeline's memory), its answer as JSON.
    pub fn call_json(&self, op: Operation, body: &Value) -> Result<Value, DynamoError> {
        let req = ops::Request(body);
        match op {
            Operation::CreateTable => self.create_table(req),
            Operation::DescribeTable => self.describe_table(req),
            Operation::ListTables => self.list_tables(req),
            Operation::DeleteTable => self.delete_table(req),
            Operation::PutItem => self.put_item(req),
            Operation::GetItem => self.get_item(req),
            Operation::UpdateItem => self.update_item(req),
            Operation::DeleteItem => self.delete_item(req),
            Operation::Query => self.query(req),
            Operation::Scan => self.scan(req),
            Operation::BatchWriteItem => self.batch_write_item(req),
            Operation::BatchGetItem => self.batch_get_item(req),
        }
    }

    fn table(&self, name: &str) -> Result<Arc<Mutex<Table>>, DynamoError> {
        self.tables
            .read()
            .expect("table map lock")
            .get(name)
            .cloned()
            .ok_or(DynamoError::ResourceNotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamo(partition_reads: &str) -> Dynamo {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/local.toml");
        let mut m = surge_profile::Profile::load(path).unwrap().system.memory;
        m.partition_reads = partition_reads.parse().unwrap();
        let d = Dynamo::new(Some(m), 1);
        let create =
            br#"{"TableName": "turns", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"}"#;
        d.call(Operation::CreateTable, create, &mut Vec::new())
            .unwrap();
        let put = br#"{"TableName": "turns", "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}}"#;
        d.call(Operation::PutItem, put, &mut Vec::new()).unwrap();
        d
    }

    const GET: &[u8] =
        br#"{"TableName": "turns", "Key": {"pk": {"S": "a"}}, "ConsistentRead": true}"#;

    #[test]
    fn get_item_writes_the_item_as_the_json_path_answers_it() {
        let d = dynamo("1000/s");
        let mut out = b"<before>".to_vec();
        d.call(Operation::GetItem, GET, &mut out).unwrap();
        let tree = d
            .call_json(Operation::GetItem, &serde_json::from_slice(GET).unwrap())
            .unwrap();
        assert_eq!(
            out,
            [b"<before>".as_slice(), tree.to_string().as_bytes()].concat()
        );
        assert_eq!(
            tree,
            serde_json::json!({"Item": {"pk": {"S": "a"}, "n": {"N": "1"}}})
        );
        let missing = br#"{"TableName": "turns", "Key": {"pk": {"S": "b"}}}"#;
        let mut out = Vec::new();
        d.call(Operation::GetItem, missing, &mut out).unwrap();
        assert_eq!(out, b"{}");
    }

    #[test]
    fn a_throttled_get_item_leaves_the_answer_buffer_as_it_was() {
        let d = dynamo("2/s");
        let mut throttled = None;
        for attempt in 0..50 {
            let mut out = b"<before>".to_vec();
            if let Err(e) = d.call(Operation::GetItem, GET, &mut out) {
                throttled = Some((attempt, e, out));
                break;
            }
        }
        let (attempt, e, out) = throttled.expect("a partition of 2 reads/s throttles");
        assert!(attempt >= 1, "the first read is served");
        assert_eq!(e, DynamoError::ProvisionedThroughputExceeded);
        assert_eq!(out, b"<before>");
    }
}
