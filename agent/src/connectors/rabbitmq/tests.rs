//! Pure-logic tests of the RabbitMQ connector. Against the real broker:
//! agent/tests/rabbitmq_connector.rs.

use std::collections::BTreeMap;

use idra_core::model::ConnectorKind;
use idra_core::secret::Secret;

use super::config::RabbitConfig;
use super::source::records_of;
use crate::connectors::ConnectionSpec;

fn spec(url: &str, options: &[(&str, &str)], password: Option<&str>) -> ConnectionSpec {
    ConnectionSpec {
        kind: ConnectorKind::RabbitMq,
        connection_string: url.into(),
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
fn the_password_is_never_shown() {
    let c = RabbitConfig::from_spec(&spec("amqp://guest@127.0.0.1:5672/%2f", &[], Some("pa ss")))
        .unwrap();
    assert_eq!(c.display, "amqp://guest@127.0.0.1:5672/%2f");
    let e = RabbitConfig::from_spec(&spec("amqp://127.0.0.1/", &[], Some("x")))
        .err()
        .unwrap();
    assert!(e.message.contains("user"), "{e}");
}

#[test]
fn options_are_checked() {
    for (k, v, expect) in [
        ("prefetch", "70000", "`prefetch`"),
        ("wait_ms", "soon", "`wait_ms`"),
        ("declare_queue", "yes", "`declare_queue`"),
        ("exchnage", "x", "known:"),
        ("schema", "id", "schema"),
    ] {
        let e = RabbitConfig::from_spec(&spec("amqp://g@h/", &[(k, v)], None))
            .err()
            .unwrap();
        assert!(e.message.contains(expect), "{k}: {e}");
    }
    let e = RabbitConfig::from_spec(&spec("http://h/", &[], None))
        .err()
        .unwrap();
    assert!(e.message.starts_with("connection_string:"), "{e}");
}

#[test]
fn messages_hold_an_object_or_an_array_of_objects() {
    assert_eq!(records_of(br#"{"id":1}"#, 1, "q").unwrap().len(), 1);
    assert_eq!(
        records_of(br#"[{"id":1},{"id":2}]"#, 1, "q").unwrap().len(),
        2
    );
    let e = records_of(b"not json", 7, "orders").unwrap_err();
    assert!(
        e.message.contains("message 7") && e.message.contains("`orders`"),
        "{e}"
    );
    assert!(records_of(b"[1]", 1, "q").is_err());
}

#[tokio::test]
async fn an_absent_broker_is_retried_not_blamed_on_the_password() {
    // Port 1 on localhost: nothing listens there.
    let c =
        RabbitConfig::from_spec(&spec("amqp://guest@127.0.0.1:1/%2f", &[], Some("guest"))).unwrap();
    let e = c.connect().await.err().unwrap();
    assert!(e.is_retryable(), "{e}");
}
