//! Bad input to the DynamoDB API gets the error the real service sends, with its headers,
//! and the server keeps serving.

mod common;

use serde_json::{Value, json};

struct Answer {
    status: u16,
    body: Value,
}

async fn call(addr: std::net::SocketAddr, target: &str, body: &str) -> Answer {
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/"))
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.0")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert!(res.headers().contains_key("x-amzn-requestid"));
    let crc: u32 = res.headers()["x-amz-crc32"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = res.bytes().await.unwrap();
    assert_eq!(
        crc,
        crc32fast::hash(&bytes),
        "x-amz-crc32 is the CRC32 of the body as sent"
    );
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap(),
    }
}

fn error_name(a: &Answer) -> &str {
    a.body["__type"]
        .as_str()
        .unwrap()
        .rsplit('#')
        .next()
        .unwrap()
}

#[tokio::test]
async fn bad_requests_get_the_service_errors() {
    let server = common::start(common::system()).await;
    let addr = server.addr;
    let create = json!({
        "TableName": "t",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST"
    });
    let created = call(addr, "DynamoDB_20120810.CreateTable", &create.to_string()).await;
    // Table names need three characters: "t" is invalid.
    assert_eq!(created.status, 400, "{}", created.body);
    assert_eq!(error_name(&created), "ValidationException");
    let create = create.to_string().replace("\"t\"", "\"tab\"");
    assert_eq!(
        call(addr, "DynamoDB_20120810.CreateTable", &create)
            .await
            .status,
        200
    );

    let big = "x".repeat(401 * 1024);
    let cases: Vec<(&str, String, &str)> = vec![
        ("DynamoDB_20120810.PutItem", "{not json".into(), "SerializationException"),
        ("DynamoDB_20120810.Frobnicate", "{}".into(), "UnknownOperationException"),
        ("Kinesis_20131202.PutRecord", "{}".into(), "UnknownOperationException"),
        ("DynamoDB_20120810.PutItem",
         json!({"TableName": "tab", "Item": {"pk": {"S": "a"}, "big": {"S": big}}}).to_string(),
         "ValidationException"),
        ("DynamoDB_20120810.PutItem",
         json!({"TableName": "tab", "Item": {"pk": {"S": "a"}}, "ConditionExpression": "attribute_exists(pk"}).to_string(),
         "ValidationException"),
        ("DynamoDB_20120810.UpdateItem",
         json!({"TableName": "tab", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET x = :v"}).to_string(),
         "ValidationException"),
        ("DynamoDB_20120810.PutItem",
         json!({"TableName": "tab", "Item": {"pk": {"N": "1"}}}).to_string(),
         "ValidationException"),
        ("DynamoDB_20120810.PutItem",
         json!({"TableName": "tab", "Item": {"pk": {"S": 5}}}).to_string(),
         "SerializationException"),
        ("DynamoDB_20120810.PutItem",
         json!({"TableName": "tab", "Item": {"pk": {"S": "a"}, "n": {"N": "twelve"}}}).to_string(),
         "ValidationException"),
        ("DynamoDB_20120810.GetItem",
         json!({"TableName": "tab", "Key": {"pk": {"S": "a"}, "extra": {"S": "b"}}}).to_string(),
         "ValidationException"),
        ("DynamoDB_20120810.GetItem",
         json!({"TableName": "missing", "Key": {"pk": {"S": "a"}}}).to_string(),
         "ResourceNotFoundException"),
        ("DynamoDB_20120810.PutItem",
         json!({"TableName": "tab", "Item": {"pk": {"S": "a"}},
                "ExpressionAttributeValues": {":unused": {"S": "x"}}}).to_string(),
         "ValidationException"),
        ("DynamoDB_20120810.UpdateItem",
         json!({"TableName": "tab", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET pk = :v",
                "ExpressionAttributeValues": {":v": {"S": "b"}}}).to_string(),
         "ValidationException"),
    ];
    for (target, body, want) in cases {
        let a = call(addr, target, &body).await;
        assert_eq!(a.status, 400, "{target}: {}", a.body);
        assert_eq!(
            error_name(&a),
            want,
            "{target} {}: {}",
            &body[..body.len().min(120)],
            a.body
        );
    }
    // Still serving, and nothing of the rejected writes was stored.
    let scan = call(addr, "DynamoDB_20120810.Scan", r#"{"TableName":"tab"}"#).await;
    assert_eq!(scan.status, 200);
    assert_eq!(scan.body["Count"], 0);
}
