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

    /// Runs one operation on a JSON body.
    pub fn call(&self, op: Operation, body: &[u8]) -> Result<Value, DynamoError> {
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
        self.call_json(op, &body)
    }

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
