//! The RabbitMQ connector against the real broker on 127.0.0.1:5672 (guest/guest; started
//! by scripts/start-databases.sh, `IDRA_TEST_AMQP` points elsewhere).

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use idra_agent::connectors::types::{Column, ColumnType};
use idra_agent::connectors::values::{BatchBuilder, Value};
use idra_agent::connectors::{self, Commit, ConnectionSpec, ReadSpec, WriteRequest};
use idra_core::model::{ConnectorKind, Cursor, WriteMode};
use idra_core::secret::Secret;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use support::compliance::{self, Peer};
use support::unique;

fn amqp_url() -> String {
    std::env::var("IDRA_TEST_AMQP").unwrap_or_else(|_| "amqp://guest@127.0.0.1:5672/%2f".into())
}

fn spec(password: &str, options: &[(&str, &str)]) -> ConnectionSpec {
    ConnectionSpec {
        kind: ConnectorKind::RabbitMq,
        connection_string: amqp_url(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: BTreeMap::from([("password".to_string(), Secret::new(password))]),
    }
}

fn raw_url() -> String {
    amqp_url().replacen("guest@", "guest:guest@", 1)
}

/// Deletes the queues a test declared, so the broker does not collect them.
struct Queues(Arc<Mutex<Vec<String>>>);

impl Queues {
    fn new() -> Self {
        Self(Arc::default())
    }
    fn fresh(&self) -> Box<dyn Fn() -> String> {
        let names = self.0.clone();
        Box::new(move || {
            let q = unique("idra_q");
            names.lock().unwrap().push(q.clone());
            q
        })
    }
    async fn delete(&self) {
        let conn = Connection::connect(&raw_url(), ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let names = self.0.lock().unwrap().clone();
        for q in names {
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
}

#[tokio::test]
async fn rabbitmq_passes_the_compliance_harness() {
    let queues = Queues::new();
    let peer = Peer {
        label: "rabbitmq",
        source: spec("guest", &[("wait_ms", "300")]),
        destination: spec("guest", &[]),
        bad_credentials: Some(spec("not-the-password", &[])),
        fresh: queues.fresh(),
        declare_schema: true,
        exact_types: true,
        millisecond_timestamps: false,
    };
    compliance::check_all(&peer).await;
    queues.delete().await;
}

fn batch(from: i64, to: i64) -> arrow_array::RecordBatch {
    let columns = vec![
        Column::new("id", ColumnType::Int64, false),
        Column::new("name", ColumnType::Text, true),
    ];
    let mut b = BatchBuilder::new(&columns, 8);
    for id in from..=to {
        b.push(0, Value::Int(id)).unwrap();
        b.push(1, Value::Text(format!("n{id}"))).unwrap();
        b.end_row();
    }
    b.finish().unwrap()
}

async fn publish(spec: &ConnectionSpec, queue: &str, from: i64, to: i64) -> Result<(), String> {
    let dest = connectors::open_destination(spec).unwrap();
    let rows = batch(from, to);
    let keys = vec!["id".to_string()];
    dest.ensure_table(queue, &[], &keys, false)
        .await
        .map_err(|e| e.message.clone())?;
    dest.write(WriteRequest {
        table: queue,
        keys: &keys,
        mode: WriteMode::Insert,
        rows: &rows,
        commit: &Commit {
            sync_id: "t".into(),
            fence: 0,
            cursor: Cursor::Id { last_id: to },
        },
    })
    .await
    .map_err(|e| e.message)
}

fn read_spec(queue: &str) -> ReadSpec {
    ReadSpec {
        table: Some(queue.into()),
        query: None,
        key: "id".into(),
        timestamp: None,
        settle_before: None,
        snapshot: false,
    }
}

#[tokio::test]
async fn deliveries_are_acknowledged_only_after_the_commit() {
    let queues = Queues::new();
    let q = (queues.fresh())();
    let s = spec(
        "guest",
        &[("wait_ms", "300"), ("schema", "id bigint, name text")],
    );
    publish(&s, &q, 1, 5).await.unwrap();

    // Read but never acknowledged (the run crashed before its offset commit): the broker
    // hands the same messages to the next consumer.
    let first = connectors::open_source(&s).unwrap();
    let cols = first.columns(&read_spec(&q)).await.unwrap();
    let read = first
        .read(&read_spec(&q), &cols, &Cursor::Start, 10)
        .await
        .unwrap();
    assert_eq!(read.rows.num_rows(), 5);
    drop(first);
    let second = connectors::open_source(&s).unwrap();
    let again = second
        .read(&read_spec(&q), &cols, &Cursor::Start, 10)
        .await
        .unwrap();
    assert_eq!(
        again.rows.num_rows(),
        5,
        "unacknowledged messages were lost"
    );

    // Acknowledged through the batch's end: gone for good.
    second.acknowledge(&again.end).await.unwrap();
    drop(second);
    let third = connectors::open_source(&s).unwrap();
    let none = third
        .read(&read_spec(&q), &cols, &Cursor::Start, 10)
        .await
        .unwrap();
    assert_eq!(none.rows.num_rows(), 0, "acknowledged messages came back");
    queues.delete().await;
}

#[tokio::test]
async fn unroutable_messages_and_bad_messages_stop_with_a_reason() {
    let queues = Queues::new();
    // A named exchange with nothing bound under this routing key: refused, not dropped.
    let to_exchange = spec("guest", &[("exchange", "amq.direct")]);
    let e = publish(&to_exchange, &unique("nobody_listens"), 1, 2)
        .await
        .unwrap_err();
    assert!(e.contains("no queue is bound"), "{e}");
    let e = publish(
        &spec("guest", &[("exchange", "no_such_exchange")]),
        "k",
        1,
        1,
    )
    .await
    .unwrap_err();
    assert!(e.contains("no_such_exchange"), "{e}");

    // A message that is not JSON stops the source with the delivery named.
    let q = (queues.fresh())();
    let conn = Connection::connect(&raw_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.basic_publish(
        "".into(),
        q.as_str().into(),
        BasicPublishOptions::default(),
        b"oops",
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let s = spec("guest", &[("wait_ms", "300"), ("schema", "id bigint")]);
    let source = connectors::open_source(&s).unwrap();
    let cols = source.columns(&read_spec(&q)).await.unwrap();
    let e = source
        .read(&read_spec(&q), &cols, &Cursor::Start, 10)
        .await
        .unwrap_err();
    assert!(
        !e.is_retryable() && e.message.contains("not a JSON object"),
        "{e}"
    );
    queues.delete().await;
}
