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
/// default `latest`); an option that says otherwise is refused, not silently overridden.
#[test]
fn a_position_lost_to_retention_resumes_at_the_oldest_record() {
    let c = KafkaConfig::from_spec(&spec("b1:9092", &[], None)).unwrap();
    assert_eq!(
        c.consumer_config().get("auto.offset.reset"),
        Some("earliest")
    );
    let e = KafkaConfig::from_spec(&spec("b1:9092", &[("auto.offset.reset", "latest")], None))
        .err()
        .expect("refused");
    assert!(
        e.message.contains("`auto.offset.reset`") && e.message.contains("Idra sets"),
        "{e}"
    );
}

// --- Options are an allow-list of librdkafka properties: nothing that loads code, runs a
// command, reads a file on the agent's host or reaches the host's cloud credentials.

#[test]
fn properties_that_load_code_run_commands_or_read_host_files_are_refused() {
    for (name, value) in [
        // Code.
        ("plugin.library.paths", "/tmp/evil.so"),
        ("ssl.engine.location", "/tmp/evil.so"),
        ("ssl.engine.id", "evil"),
        ("ssl.providers", "/tmp/evil"),
        ("interceptors", "x"),
        // Callbacks are set through the C API; as properties they must not even be tried.
        ("oauthbearer_token_refresh_cb", "0x1"),
        ("log_cb", "0x1"),
        ("ssl.certificate.verify_cb", "0x1"),
        // Commands: kinit runs through a shell, with the principal and keytab pasted in.
        ("sasl.kerberos.kinit.cmd", "touch /tmp/idra-pwned"),
        ("sasl.kerberos.principal", "x; touch /tmp/idra-pwned"),
        ("sasl.kerberos.keytab", "/etc/krb5.keytab"),
        ("sasl.kerberos.service.name", "kafka"),
        ("sasl.kerberos.min.time.before.relogin", "1"),
        // Files on the agent's host.
        ("ssl.ca.location", "/etc/passwd"),
        ("ssl.certificate.location", "/etc/idra/etcd.crt"),
        ("ssl.key.location", "/etc/idra/etcd.key"),
        ("ssl.crl.location", "/etc/passwd"),
        ("ssl.keystore.location", "/etc/idra/keystore.p12"),
        ("ssl.ca.certificate.stores", "Root"),
        ("https.ca.location", "/etc/passwd"),
        ("sasl.oauthbearer.assertion.file", "/etc/shadow"),
        (
            "sasl.oauthbearer.assertion.private.key.file",
            "/etc/ssl/private/k.pem",
        ),
        (
            "sasl.oauthbearer.assertion.jwt.template.file",
            "/etc/passwd",
        ),
        ("offset.store.path", "/etc/cron.d/idra"),
        ("offset.store.method", "file"),
        // The host's cloud identity (Azure IMDS tokens sent to the brokers).
        (
            "sasl.oauthbearer.metadata.authentication.type",
            "azure_imds",
        ),
        // Brokers come from the connection string, which secrets are bound to.
        ("bootstrap.servers", "evil:9092"),
        ("metadata.broker.list", "evil:9092"),
        // Logs on the host.
        ("debug", "all"),
        ("no_such_property", "1"),
    ] {
        let e = KafkaConfig::from_spec(&spec("b:9092", &[(name, value)], None))
            .err()
            .unwrap_or_else(|| panic!("{name} = {value} was accepted"));
        assert!(e.message.contains(&format!("`{name}`")), "{name}: {e}");
        assert!(
            e.message.contains("allowed:") && e.message.contains("security.protocol"),
            "lists what is allowed: {e}"
        );
    }
}

#[test]
fn gssapi_is_refused_since_librdkafka_runs_kinit_through_a_shell() {
    for name in ["sasl.mechanisms", "sasl.mechanism"] {
        let e = KafkaConfig::from_spec(&spec("b:9092", &[(name, "GSSAPI")], None))
            .err()
            .unwrap_or_else(|| panic!("{name} = GSSAPI was accepted"));
        assert!(e.message.contains(&format!("`{name}`")), "{e}");
        assert!(e.message.contains("SCRAM-SHA-512"), "{e}");
    }
}

#[test]
fn safe_properties_reach_librdkafka() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    let options = [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanisms", "SCRAM-SHA-512"),
        ("sasl.username", "ann"),
        ("ssl.ca.pem", pem),
        ("ssl.certificate.pem", pem),
        ("ssl.endpoint.identification.algorithm", "https"),
        ("client.id", "idra-eu"),
        ("client.rack", "eu-west-1a"),
        ("socket.timeout.ms", "30000"),
        ("socket.keepalive.enable", "true"),
        ("message.max.bytes", "2000000"),
        ("linger.ms", "50"),
        ("batch.num.messages", "1000"),
        ("compression.type", "zstd"),
        ("fetch.max.bytes", "1048576"),
        ("isolation.level", "read_committed"),
    ];
    let c = KafkaConfig::from_spec(&spec("b:9092", &options, Some("pw"))).unwrap();
    for (name, value) in options {
        assert_eq!(c.client.get(name), Some(value), "{name}");
    }
    assert_eq!(c.client.get("sasl.password"), Some("pw"));
}
