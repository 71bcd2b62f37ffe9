//! DynamoDB errors, named as the service names them, with the status and `__type` an SDK
//! decodes into its typed exceptions.

use serde_json::json;

/// An error answer of the DynamoDB API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DynamoError {
    #[error("{0}")]
    Validation(String),
    #[error("Requested resource not found")]
    ResourceNotFound,
    #[error("{0}")]
    ResourceInUse(String),
    #[error("The conditional request failed")]
    ConditionalCheckFailed,
    #[error(
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
    )]
    ProvisionedThroughputExceeded,
    /// The body is not JSON, or not the JSON shape of the operation.
    #[error("{0}")]
    Serialization(String),
    #[error("")]
    UnknownOperation,
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    ServiceUnavailable(String),
}

impl DynamoError {
    /// The error's `__type`, as the SDKs match it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Validation(_) => "com.amazon.coral.validate#ValidationException",
            Self::ResourceNotFound => "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            Self::ResourceInUse(_) => "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            Self::ConditionalCheckFailed => {
                "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
            }
            Self::ProvisionedThroughputExceeded => {
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
            }
            Self::Serialization(_) => "com.amazon.coral.service#SerializationException",
            Self::UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            Self::Internal(_) => "com.amazonaws.dynamodb.v20120810#InternalServerError",
            Self::ServiceUnavailable(_) => "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Internal(_) => 500,
            Self::ServiceUnavailable(_) => 503,
            _ => 400,
        }
    }

    /// The JSON body of the error answer.
    pub fn body(&self) -> String {
        let message = self.to_string();
        if message.is_empty() {
            json!({"__type": self.type_name()}).to_string()
        } else {
            json!({"__type": self.type_name(), "message": message}).to_string()
        }
    }
}
