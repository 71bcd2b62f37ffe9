//! The DynamoDB API against the real AWS SDK for Rust: every operation round-trips, and
//! throttles and failed conditions surface as the SDK's typed errors.

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as Av, KeySchemaElement, KeyType, KeysAndAttributes,
    PutRequest, ReturnValue, ScalarAttributeType, WriteRequest,
};

async fn create(client: &Client, name: &str, sort: bool) {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        );
    if sort {
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("sk")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("sk")
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            );
    }
    req.send().await.expect("CreateTable");
}

fn s(v: &str) -> Av {
    Av::S(v.into())
}

fn n(v: i64) -> Av {
    Av::N(v.to_string())
}

#[tokio::test]
async fn tables_are_created_described_listed_and_deleted() {
    let server = common::start(common::system()).await;
    let client = common::dynamodb(server.addr).await;
    for name in ["alpha", "beta", "gamma"] {
        create(&client, name, name == "beta").await;
    }
    let d = client
        .describe_table()
        .table_name("beta")
        .send()
        .await
        .unwrap();
    let t = d.table().unwrap();
    assert_eq!(t.table_name(), Some("beta"));
    assert_eq!(t.key_schema().len(), 2);

    let page = client.list_tables().limit(2).send().await.unwrap();
    assert_eq!(page.table_names(), ["alpha", "beta"]);
    assert_eq!(page.last_evaluated_table_name(), Some("beta"));
    let rest = client
        .list_tables()
        .exclusive_start_table_name("beta")
        .send()
        .await
        .unwrap();
    assert_eq!(
        rest.table_names(),
        ["gamma", surge_mock::chat::MEMORY_TABLE],
        "chat memory lives here too"
    );

    let again = client
        .create_table()
        .table_name("alpha")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(again.is_resource_in_use_exception(), "{again:?}");

    client
        .delete_table()
        .table_name("gamma")
        .send()
        .await
        .unwrap();
    let gone = client
        .describe_table()
        .table_name("gamma")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(gone.is_resource_not_found_exception(), "{gone:?}");
}

#[tokio::test]
async fn items_of_every_type_round_trip_and_update() {
    let server = common::start(common::system()).await;
    let client = common::dynamodb(server.addr).await;
    create(&client, "items", false).await;
    let item: HashMap<String, Av> = [
        ("pk", s("user-1")),
        ("n", n(42)),
        ("b", Av::B(Blob::new(vec![0u8, 1, 255]))),
        ("t", Av::Bool(true)),
        ("z", Av::Null(true)),
        ("m", Av::M([("nested".to_string(), s("ワンピース"))].into())),
        ("l", Av::L(vec![n(1), s("two")])),
        ("ss", Av::Ss(vec!["a".into(), "b".into()])),
        ("ns", Av::Ns(vec!["1".into(), "2.5".into()])),
        (
            "bs",
            Av::Bs(vec![Blob::new(vec![1u8]), Blob::new(vec![2u8])]),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    client
        .put_item()
        .table_name("items")
        .set_item(Some(item.clone()))
        .send()
        .await
        .unwrap();
    let got = client
        .get_item()
        .table_name("items")
        .key("pk", s("user-1"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.item(), Some(&item));

    let projected = client
        .get_item()
        .table_name("items")
        .key("pk", s("user-1"))
        .projection_expression("#m.nested, l[1]")
        .expression_attribute_names("#m", "m")
        .send()
        .await
        .unwrap();
    let p = projected.item().unwrap();
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p["l"], Av::L(vec![s("two")]));

    let updated = client
        .update_item()
        .table_name("items")
        .key("pk", s("user-1"))
        .update_expression(
            "SET visits = if_not_exists(visits, :zero) + :one, l = list_append(l, :more) REMOVE t ADD n :one, ss :c",
        )
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":more", Av::L(vec![s("three")]))
        .expression_attribute_values(":c", Av::Ss(vec!["c".into()]))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    let a = updated.attributes().unwrap();
    assert_eq!(a["visits"], n(1));
    assert_eq!(a["n"], n(43));
    assert_eq!(a["l"], Av::L(vec![n(1), s("two"), s("three")]));
    assert!(!a.contains_key("t"));
    assert_eq!(a["ss"].as_ss().unwrap().len(), 3);

    let old = client
        .update_item()
        .table_name("items")
        .key("pk", s("user-1"))
        .update_expression("SET n = n - :one")
        .expression_attribute_values(":one", n(1))
        .return_values(ReturnValue::UpdatedOld)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.attributes().unwrap(),
        &HashMap::from([("n".to_string(), n(43))])
    );

    let deleted = client
        .delete_item()
        .table_name("items")
        .key("pk", s("user-1"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.attributes().unwrap()["n"], n(42));
    let none = client
        .get_item()
        .table_name("items")
        .key("pk", s("user-1"))
        .send()
        .await
        .unwrap();
    assert!(none.item().is_none());
}

#[tokio::test]
async fn query_and_scan_page_filter_and_project() {
    let server = common::start(common::system()).await;
    let client = common::dynamodb(server.addr).await;
    create(&client, "turns", true).await;
    for user in ["a", "b"] {
        for i in 0..10 {
            client
                .put_item()
                .table_name("turns")
                .item("pk", s(user))
                .item("sk", n(i))
                .item("text", s(&format!("turn {i}")))
                .item("even", Av::Bool(i % 2 == 0))
                .send()
                .await
                .unwrap();
        }
    }
    let query = |cond: &'static str| {
        client
            .query()
            .table_name("turns")
            .key_condition_expression(cond)
            .expression_attribute_values(":u", s("a"))
    };
    let sks = |items: &[HashMap<String, Av>]| -> Vec<i64> {
        items
            .iter()
            .map(|i| i["sk"].as_n().unwrap().parse().unwrap())
            .collect()
    };
    let all = query("pk = :u").send().await.unwrap();
    assert_eq!(sks(all.items()), (0..10).collect::<Vec<_>>());
    let cases: [(&str, Vec<i64>); 6] = [
        ("pk = :u AND sk = :x", vec![3]),
        ("pk = :u AND sk < :x", vec![0, 1, 2]),
        ("pk = :u AND sk <= :x", vec![0, 1, 2, 3]),
        ("pk = :u AND sk > :x", vec![4, 5, 6, 7, 8, 9]),
        ("pk = :u AND sk >= :x", vec![3, 4, 5, 6, 7, 8, 9]),
        ("pk = :u AND sk BETWEEN :x AND :y", vec![3, 4, 5]),
    ];
    for (cond, want) in cases {
        let mut q = query(cond).expression_attribute_values(":x", n(3));
        if cond.contains("BETWEEN") {
            q = q.expression_attribute_values(":y", n(5));
        }
        assert_eq!(sks(q.send().await.unwrap().items()), want, "{cond}");
    }
    let back = query("pk = :u")
        .scan_index_forward(false)
        .limit(3)
        .send()
        .await
        .unwrap();
    assert_eq!(sks(back.items()), vec![9, 8, 7]);

    // Pagination: pages of 4 until no LastEvaluatedKey.
    let mut seen = Vec::new();
    let mut start = None;
    for _ in 0..10 {
        let page = query("pk = :u")
            .limit(4)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        seen.extend(sks(page.items()));
        match page.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => break,
        }
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());

    let filtered = query("pk = :u")
        .filter_expression("even = :t")
        .expression_attribute_values(":t", Av::Bool(true))
        .projection_expression("sk")
        .send()
        .await
        .unwrap();
    assert_eq!(sks(filtered.items()), vec![0, 2, 4, 6, 8]);
    assert_eq!((filtered.count(), filtered.scanned_count()), (5, 10));
    assert!(filtered.items().iter().all(|i| i.len() == 1));

    let bad = client
        .query()
        .table_name("turns")
        .key_condition_expression("sk = :x")
        .expression_attribute_values(":x", n(1))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(bad.code(), Some("ValidationException"), "{bad:?}");

    let mut scanned = 0;
    let mut start = None;
    for _ in 0..20 {
        let page = client
            .scan()
            .table_name("turns")
            .limit(3)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        scanned += page.items().len();
        match page.last_evaluated_key() {
            Some(k) => start = Some(k.clone()),
            None => break,
        }
    }
    assert_eq!(scanned, 20);
}

#[tokio::test]
async fn begins_with_on_string_sort_keys() {
    let server = common::start(common::system()).await;
    let client = common::dynamodb(server.addr).await;
    client
        .create_table()
        .table_name("sessions")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for sk in ["msg#1", "msg#2", "summary"] {
        client
            .put_item()
            .table_name("sessions")
            .item("pk", s("s1"))
            .item("sk", s(sk))
            .send()
            .await
            .unwrap();
    }
    let q = client
        .query()
        .table_name("sessions")
        .key_condition_expression("pk = :p AND begins_with(sk, :pre)")
        .expression_attribute_values(":p", s("s1"))
        .expression_attribute_values(":pre", s("msg#"))
        .send()
        .await
        .unwrap();
    assert_eq!(q.count(), 2);
}

#[tokio::test]
async fn batches_write_and_read() {
    let server = common::start(common::system()).await;
    let client = common::dynamodb(server.addr).await;
    create(&client, "batch", false).await;
    let writes: Vec<WriteRequest> = (0..25)
        .map(|i| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .item("pk", s(&format!("k{i}")))
                        .item("v", n(i))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();
    let out = client
        .batch_write_item()
        .request_items("batch", writes)
        .send()
        .await
        .unwrap();
    assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
    let keys = KeysAndAttributes::builder()
        .set_keys(Some(
            (0..30)
                .map(|i| HashMap::from([("pk".to_string(), s(&format!("k{i}")))]))
                .collect(),
        ))
        .build()
        .unwrap();
    let got = client
        .batch_get_item()
        .request_items("batch", keys)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.responses().unwrap()["batch"].len(),
        25,
        "k25..k29 do not exist"
    );
}

#[tokio::test]
async fn a_failed_condition_is_a_typed_error_and_changes_nothing() {
    let server = common::start(common::system()).await;
    let client = common::dynamodb(server.addr).await;
    create(&client, "cond", false).await;
    let put = |v: i64| {
        client
            .put_item()
            .table_name("cond")
            .item("pk", s("only"))
            .item("v", n(v))
            .condition_expression("attribute_not_exists(pk) OR (v < :v AND NOT v = :v)")
            .expression_attribute_values(":v", n(v))
    };
    put(1).send().await.unwrap();
    put(2).send().await.unwrap();
    let err = put(2).send().await.unwrap_err().into_service_error();
    assert!(err.is_conditional_check_failed_exception(), "{err:?}");
    let got = client
        .get_item()
        .table_name("cond")
        .key("pk", s("only"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap()["v"], n(2));
}

#[tokio::test]
async fn throttles_surface_as_provisioned_throughput_exceeded() {
    let mut sys = common::system();
    // 1 write unit per second of previous peak → 2 WRU/s, a bucket of two 1 KB writes.
    sys.memory.previous_peak_writes = "1/s".parse().unwrap();
    sys.memory.previous_peak_reads = "1/s".parse().unwrap();
    let server = common::start(sys).await;
    let client = common::dynamodb(server.addr).await;
    create(&client, "hot", false).await;
    let mut throttled = None;
    for i in 0..10 {
        match client
            .put_item()
            .table_name("hot")
            .item("pk", s(&format!("k{i}")))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                throttled = Some(e.into_service_error());
                break;
            }
        }
    }
    let e = throttled.expect("a 2 WRU/s table throttles within 10 writes");
    assert!(e.is_provisioned_throughput_exceeded_exception(), "{e:?}");

    // A batch under throttling leaves its writes unprocessed (or fails whole).
    let writes: Vec<WriteRequest> = (0..5)
        .map(|i| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .item("pk", s(&format!("b{i}")))
                        .build()
                        .unwrap(),
                )
                .build()
        })
        .collect();
    match client
        .batch_write_item()
        .request_items("hot", writes)
        .send()
        .await
    {
        Ok(out) => assert!(!out.unprocessed_items().unwrap()["hot"].is_empty()),
        Err(e) => assert!(
            e.into_service_error()
                .is_provisioned_throughput_exceeded_exception()
        ),
    }
}

#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let server = common::start(common::system()).await;
    let client = common::dynamodb(server.addr).await;
    create(&client, "counters", false).await;
    let (writers, each) = (16, 25);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    client
                        .update_item()
                        .table_name("counters")
                        .key("pk", s("shared"))
                        .update_expression(
                            "ADD hits :one SET log = list_append(if_not_exists(log, :empty), :me)",
                        )
                        .expression_attribute_values(":one", n(1))
                        .expression_attribute_values(":empty", Av::L(vec![]))
                        .expression_attribute_values(":me", Av::L(vec![s(&format!("{w}-{i}"))]))
                        .send()
                        .await
                        .unwrap();
                    client
                        .put_item()
                        .table_name("counters")
                        .item("pk", s(&format!("w{w}-{i}")))
                        .item("writer", n(w))
                        .send()
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let shared = client
        .get_item()
        .table_name("counters")
        .key("pk", s("shared"))
        .send()
        .await
        .unwrap();
    let item = shared.item().unwrap();
    assert_eq!(item["hits"], n(writers * each));
    let mut log: Vec<String> = item["log"]
        .as_l()
        .unwrap()
        .iter()
        .map(|v| v.as_s().unwrap().clone())
        .collect();
    log.sort();
    log.dedup();
    assert_eq!(
        log.len() as i64,
        writers * each,
        "every append kept, none twice"
    );
    let count = client
        .scan()
        .table_name("counters")
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(count.count() as i64, writers * each + 1);
}
