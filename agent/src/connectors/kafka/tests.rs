//! Pure-logic tests of the Kafka connector. Against librdkafka's mock cluster and a real
//! Kafka-protocol broker: agent/tests/kafka_connector.rs.

use std::collections::BTreeMap;

use idra_core::model::ConnectorKind;
use idra_core::secret::Secret;

use super::config::KafkaConfig;
use super::source::records_of;
use crate::connectors::ConnectionSpec;

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

#[test]
fn librdkafka_properties_pass_through_and_secrets_become_properties() {
    let c = KafkaConfig::from_spec(&spec(
        "b1:9092,b2:9092",
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.username", "ann"),
            ("partitions", "0, 2"),
        ],
        Some("pw"),
    ))
    .unwrap();
    assert_eq!(c.client.get("bootstrap.servers"), Some("b1:9092,b2:9092"));
    assert_eq!(c.client.get("security.protocol"), Some("SASL_SSL"));
    assert_eq!(c.client.get("sasl.password"), Some("pw"));
    assert_eq!(
        c.client.get("partitions"),
        None,
        "Idra's own options stay out of librdkafka"
    );
    assert_eq!(c.partitions, Some(vec![0, 2]));
    let consumer = c.consumer_config();
    assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
    assert_eq!(c.producer_config().get("enable.idempotence"), Some("true"));
}

#[test]
fn bad_options_name_the_option() {
    for (k, v, expect) in [
        ("partitions", "0,x", "`partitions`"),
        ("wait_ms", "soon", "`wait_ms`"),
        ("Bad Key", "1", "librdkafka property"),
        ("schema", "id", "schema"),
    ] {
        let e = KafkaConfig::from_spec(&spec("b:9092", &[(k, v)], None))
            .err()
            .unwrap();
        assert!(e.message.contains(expect), "{k}: {e}");
    }
    let e = KafkaConfig::from_spec(&spec("kafka://b:9092", &[], None))
        .err()
        .unwrap();
    assert!(e.message.starts_with("connection_string:"), "{e}");
}

#[test]
fn record_values_are_json_objects_and_tombstones_are_skipped() {
    assert_eq!(
        records_of(Some(br#"{"id":1}"#), "t", 0, 5).unwrap().len(),
        1
    );
    assert!(records_of(None, "t", 0, 5).unwrap().is_empty());
    let e = records_of(Some(b"\x00\x01"), "orders", 3, 42).unwrap_err();
    assert!(e.message.contains("partition 3 offset 42"), "{e}");
}

/// A position below the low watermark (retention deleted those records) must resume at the
/// oldest retained record, not jump to the end and skip every retained one (librdkafka's
/// default `latest`), even when the user's options say otherwise.
#[test]
fn a_position_lost_to_retention_resumes_at_the_oldest_record() {
    let c =
        KafkaConfig::from_spec(&spec("b1:9092", &[("auto.offset.reset", "latest")], None)).unwrap();
    assert_eq!(
        c.consumer_config().get("auto.offset.reset"),
        Some("earliest")
    );
}
