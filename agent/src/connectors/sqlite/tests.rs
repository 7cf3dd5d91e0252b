//! Pure-logic tests of the SQLite connector. Tests against real files:
//! agent/tests/sql_connectors.rs.

use super::destination::sqlite_type;
use super::source::map_type;
use crate::connectors::types::ColumnType;

#[test]
fn declared_types_round_trip() {
    for ty in ColumnType::ALL {
        assert_eq!(map_type(&sqlite_type(ty)), ty, "{}", sqlite_type(ty));
    }
    assert_eq!(map_type("varchar(20)"), ColumnType::Text);
    assert_eq!(map_type(""), ColumnType::Text);
}

// --- Options are pragmas: the name is allow-listed and the value parsed, so no option can
// smuggle SQL into the `PRAGMA k = v;` sqlx runs on every new connection.

use std::collections::BTreeMap;
use std::path::Path;

use idra_core::model::ConnectorKind;

use super::SqliteConfig;
use crate::connectors::{ConnectionSpec, ErrorKind};

fn spec(file: &Path, options: &[(&str, &str)]) -> ConnectionSpec {
    ConnectionSpec {
        kind: ConnectorKind::Sqlite,
        connection_string: format!("sqlite://{}", file.display()),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        secrets: BTreeMap::new(),
    }
}

/// What "Test connection" does: open the config, then a connection (which runs the pragmas).
async fn open(spec: &ConnectionSpec) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, String> {
    let config = SqliteConfig::from_spec(spec, true).map_err(|e| {
        assert_eq!(e.kind, ErrorKind::Fatal, "{e}");
        e.message
    })?;
    config.pool().acquire().await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_pragma_value_carrying_sql_is_refused_and_attaches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let planted = dir.path().join("planted.db");
    let attack = format!(
        "NORMAL; ATTACH DATABASE '{}' AS a; CREATE TABLE a.t(x)",
        planted.display()
    );
    let result = open(&spec(
        &dir.path().join("main.db"),
        &[("synchronous", &attack)],
    ))
    .await;
    assert!(
        !planted.exists(),
        "the option ran SQL: {} was created",
        planted.display()
    );
    let message = result.expect_err("the option is refused");
    assert!(message.contains("options.synchronous"), "{message}");
    assert!(
        message.contains("NORMAL") && message.contains("FULL"),
        "says what is allowed: {message}"
    );
    assert!(
        !message.contains("ATTACH") && !message.contains("planted"),
        "echoes the SQL: {message}"
    );
}

#[test]
fn every_pragma_refuses_a_value_outside_its_set_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.db");
    for name in [
        "journal_mode",
        "synchronous",
        "locking_mode",
        "auto_vacuum",
        "temp_store",
        "foreign_keys",
        "secure_delete",
        "busy_timeout",
        "cache_size",
        "mmap_size",
        "page_size",
        "wal_autocheckpoint",
        "journal_size_limit",
    ] {
        for bad in ["1; DROP TABLE x", "WAL -- x", "0x10", "", "NORMAL;"] {
            let message = SqliteConfig::from_spec(&spec(&file, &[(name, bad)]), true)
                .err()
                .unwrap_or_else(|| panic!("{name} = {bad:?} was accepted"))
                .message;
            assert!(message.contains(&format!("options.{name}")), "{message}");
            assert!(
                message.contains("must be"),
                "an allowed name, a refused value: {message}"
            );
            assert!(
                !message.contains("DROP") && !message.contains("--"),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn allowed_pragma_values_reach_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.db");
    let mut conn = open(&spec(
        &file,
        &[
            ("journal_mode", "wal"),
            ("synchronous", "Normal"),
            ("cache_size", "-4000"),
            ("busy_timeout", "2500"),
            ("foreign_keys", "off"),
            ("temp_store", "2"),
        ],
    ))
    .await
    .unwrap();
    let ask = |pragma: &'static str| format!("PRAGMA {pragma}");
    let text: String = sqlx::query_scalar(&ask("journal_mode"))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(text, "wal");
    for (pragma, want) in [
        ("synchronous", 1),
        ("cache_size", -4000),
        ("busy_timeout", 2500),
        ("foreign_keys", 0),
        ("temp_store", 2),
    ] {
        let got: i64 = sqlx::query_scalar(&ask(pragma))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(got, want, "PRAGMA {pragma}");
    }
    drop(conn);
    // The connector's own default (WAL) gives way to the option.
    let other = dir.path().join("other.db");
    let mut conn = open(&spec(&other, &[("journal_mode", "TRUNCATE")]))
        .await
        .unwrap();
    let text: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(text, "truncate");
}

#[test]
fn an_unknown_option_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.db");
    for name in ["writable_schema", "temp_store_directory", "bad name"] {
        let e = SqliteConfig::from_spec(&spec(&file, &[(name, "1")]), true)
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        assert_eq!(e.kind, ErrorKind::Fatal);
        assert!(
            e.message.contains(&format!("options.{name}")),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("pragma") && e.message.contains("journal_mode"),
            "lists the allowed: {}",
            e.message
        );
    }
}
