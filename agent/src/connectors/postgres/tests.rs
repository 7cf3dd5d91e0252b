//! Pure-logic tests of the Postgres connector. Tests against a real server:
//! agent/tests/sql_connectors.rs.

use super::destination::pg_type;
use super::source::map_type;
use crate::connectors::types::ColumnType;

#[test]
fn every_idra_type_maps_back_to_itself() {
    for ty in ColumnType::ALL {
        let created = pg_type(ty);
        let (name, p, s) = match ty {
            ColumnType::Decimal { precision, scale } => (
                "numeric".to_string(),
                Some(precision as i32),
                Some(scale as i32),
            ),
            _ => (created.clone(), None, None),
        };
        assert_eq!(map_type(&name, p, s), ty, "{created}");
    }
}

#[test]
fn information_schema_names_map() {
    assert_eq!(map_type("character varying", None, None), ColumnType::Text);
    assert_eq!(
        map_type("timestamp with time zone", None, None),
        ColumnType::TimestampTz
    );
    assert_eq!(
        map_type("numeric", None, None),
        crate::connectors::types::DEFAULT_DECIMAL
    );
    // Types without a mapping are read as text.
    assert_eq!(map_type("inet", None, None), ColumnType::Text);
}

fn spec(cs: &str, options: &[(&str, &str)]) -> crate::connectors::ConnectionSpec {
    crate::connectors::ConnectionSpec {
        kind: idra_core::model::ConnectorKind::Postgres,
        connection_string: cs.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: Default::default(),
    }
}

#[test]
fn an_option_value_cannot_add_startup_settings() {
    use super::PostgresConfig;
    let url = "postgres://app@db/shop";
    assert!(PostgresConfig::from_spec(&spec(url, &[("statement_timeout", "60s")])).is_ok());
    for (name, value) in [
        ("statement_timeout", "0 -c search_path=evil"),
        ("application_name", "a\\ -c"),
        ("session_preload_libraries", "evil"),
        ("Dynamic_Library_Path", "/tmp"),
    ] {
        let e = PostgresConfig::from_spec(&spec(url, &[(name, value)]))
            .err()
            .unwrap();
        assert!(
            e.message.starts_with(&format!("options.{name}")),
            "{}",
            e.message
        );
    }
    let e = PostgresConfig::from_spec(&spec("postgres://db/shop?options=-c%20a%3Db", &[]))
        .err()
        .unwrap();
    assert!(e.message.starts_with("connection_string:"), "{}", e.message);
}
