//! The Kafka connector against librdkafka's in-process mock cluster and against Tansu, a
//! Kafka-protocol broker started by scripts/start-kafka.sh on 127.0.0.1:19094
//! (`IDRA_TEST_KAFKA` points elsewhere): the compliance harness and a Postgres → Kafka →
//! Postgres round trip through the engine on each.

mod support;

use std::collections::BTreeMap;

use idra_agent::connectors::{self, ConnectionSpec};
use idra_core::model::{ConnectorKind, SyncMode, WriteMode};
use idra_core::secret::Secret;
use rdkafka::mocking::MockCluster;
use support::compliance::{self, Peer};
use support::{create_source, insert_rows, minute, sync, unique, Db, Harness};

fn spec(brokers: &str, options: &[(&str, &str)], password: Option<&str>) -> ConnectionSpec {
    ConnectionSpec {
        kind: ConnectorKind::Kafka,
        connection_string: brokers.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: password
            .map(|p| BTreeMap::from([("password".to_string(), Secret::new(p))]))
            .unwrap_or_default(),
    }
}

/// The real broker's bootstrap address.
fn tansu() -> String {
    std::env::var("IDRA_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:19094".into())
}

/// Producer settings for Tansu 0.6.0's in-memory storage, which mishandles batches of more
/// than one record: its ListOffsets answers the last batch's *first* offset + 1 as the high
/// watermark (tansu-storage src/dynostore.rs `list_offsets`), and a fetch from an offset
/// inside a batch skips the rest of that batch (`fetch` keeps only batches starting at or
/// after the offset). One record per batch keeps both right; real Kafka and the mock
/// cluster run with librdkafka's normal batching.
const TANSU_PRODUCER: [(&str, &str); 1] = [("batch.num.messages", "1")];

/// A SASL login the brokers do not accept. The mock cluster has no SASL, so this is the
/// client side of a refused login (the connection is dropped); a broker with SASL users is
/// not available here.
fn bad(brokers: &str) -> ConnectionSpec {
    spec(
        brokers,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "idra"),
        ],
        Some("wrong"),
    )
}

#[tokio::test]
async fn kafka_passes_the_compliance_harness_on_the_mock_cluster() {
    let cluster = MockCluster::new(3).unwrap();
    let brokers = cluster.bootstrap_servers();
    let peer = Peer {
        label: "kafka (mock)",
        source: spec(&brokers, &[], None),
        destination: spec(&brokers, &[("new_topic_partitions", "3")], None),
        bad_credentials: Some(bad(&brokers)),
        // The mock cluster has no CreateTopics: the topics exist before the connector
        // looks (creating one is covered against the real broker).
        fresh: Box::new(|| {
            let t = unique("topic");
            cluster.create_topic(&t, 3, 1).unwrap();
            t
        }),
        declare_schema: true,
        exact_types: true,
        millisecond_timestamps: false,
    };
    compliance::check_all(&peer).await;
}

#[tokio::test]
async fn kafka_passes_the_compliance_harness_on_a_real_broker() {
    let brokers = tansu();
    let destination: Vec<_> = [("new_topic_partitions", "3")]
        .into_iter()
        .chain(TANSU_PRODUCER)
        .collect();
    let peer = Peer {
        label: "kafka (Tansu)",
        source: spec(&brokers, &[], None),
        destination: spec(&brokers, &destination, None),
        bad_credentials: Some(bad(&brokers)),
        // The destination creates each topic (CreateTopics) on its first write.
        fresh: Box::new(|| unique("topic")),
        declare_schema: true,
        exact_types: true,
        millisecond_timestamps: false,
    };
    compliance::check_all(&peer).await;
}

#[tokio::test]
async fn postgres_to_kafka_to_postgres_ends_equal_on_the_mock_cluster() {
    let cluster = MockCluster::new(1).unwrap();
    let topic = unique("orders");
    cluster.create_topic(&topic, 4, 1).unwrap();
    round_trip(&cluster.bootstrap_servers(), &topic, &[]).await;
}

#[tokio::test]
async fn postgres_to_kafka_to_postgres_ends_equal_on_a_real_broker() {
    // The topic is created by the destination with 4 partitions.
    round_trip(&tansu(), &unique("orders"), &TANSU_PRODUCER).await;
}

/// Rows from Postgres into `topic` and back into a new Postgres table, equal at the end;
/// then new rows travel alone (the Kafka offsets resume per partition).
async fn round_trip(brokers: &str, topic: &str, producer: &[(&str, &str)]) {
    let pg = Db::pg();
    let src = unique("pg_src");
    create_source(&pg, &src).await;
    insert_rows(&pg, &src, 1, 120, minute).await;
    let kafka = |options: &[(&str, &str)]| spec(brokers, options, None);

    let mut out = Harness::new(
        sync(
            "pg_to_kafka",
            &src,
            topic,
            SyncMode::ById,
            WriteMode::Insert,
        ),
        &pg,
        &pg,
    );
    let producing: Vec<_> = [("new_topic_partitions", "4")]
        .iter()
        .chain(producer)
        .copied()
        .collect();
    out.runner.job.destination = kafka(&producing);
    out.runner.run_once().await.unwrap();

    // Back into Postgres with the types declared as the source has them.
    let source = connectors::open_source(&pg.spec()).unwrap();
    let columns = source
        .columns(&idra_agent::connectors::ReadSpec {
            table: Some(src.clone()),
            query: None,
            key: "id".into(),
            timestamp: None,
            settle_before: None,
            snapshot: false,
        })
        .await
        .unwrap();
    let schema = columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.ty.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let dst = unique("pg_back");
    let mut back = Harness::new(
        sync(
            "kafka_to_pg",
            topic,
            &dst,
            SyncMode::ById,
            WriteMode::Upsert,
        ),
        &pg,
        &pg,
    );
    back.runner.job.source = kafka(&[("schema", &schema)]);
    back.sync_until(&pg, &dst, 120).await;
    assert_eq!(
        pg.rows(&dst).await,
        pg.rows(&src).await,
        "the round trip changed the rows"
    );

    // New rows: only they travel, and the Kafka offsets resume per partition.
    insert_rows(&pg, &src, 121, 130, minute).await;
    out.runner.run_once().await.unwrap();
    back.sync_until(&pg, &dst, 130).await;
    assert_eq!(pg.rows(&dst).await, pg.rows(&src).await);
    pg.drop_table(&src).await;
    pg.drop_table(&dst).await;
}
