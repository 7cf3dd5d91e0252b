//! Pure-logic tests of the MongoDB connector: BSON ↔ values for every type, inference, the
//! query a cursor turns into, configuration. Against a MongoDB-wire server (SecantusDB):
//! agent/tests/mongo_connector.rs.

use std::collections::BTreeMap;

use chrono::DurationRound;
use idra_core::model::{ConnectorKind, Cursor};
use idra_core::secret::Secret;
use mongodb::bson::{doc, oid::ObjectId, Bson};

use super::bson::{infer_columns, to_bson, to_value};
use super::config::MongoConfig;
use super::source::position;
use crate::connectors::types::{Column, ColumnType};
use crate::connectors::values::{sample, Value};
use crate::connectors::{ConnectionSpec, ReadSpec};

#[test]
fn every_type_round_trips_through_bson() {
    for ty in ColumnType::ALL {
        let col = Column::new("c", ty, true);
        let v = sample(ty);
        let b = to_bson(v.clone(), ty).unwrap();
        let expected = match v {
            // BSON dates keep milliseconds.
            Value::Timestamp(t) => Value::Timestamp(
                t.duration_trunc(chrono::TimeDelta::milliseconds(1))
                    .unwrap(),
            ),
            Value::TimestampTz(t) => Value::TimestampTz(
                t.duration_trunc(chrono::TimeDelta::milliseconds(1))
                    .unwrap(),
            ),
            other => other,
        };
        assert_eq!(to_value(&b, &col).unwrap(), expected, "{}", ty.name());
        assert_eq!(to_value(&Bson::Null, &col).unwrap(), Value::Null);
    }
    // JSON columns become documents, not strings.
    assert!(matches!(
        to_bson(Value::Text(r#"{"a":[1]}"#.into()), ColumnType::Json).unwrap(),
        Bson::Document(_)
    ));
    // Decimals keep every digit.
    let d = to_bson(
        Value::Decimal(123_456_789_012_345),
        ColumnType::Decimal {
            precision: 20,
            scale: 4,
        },
    )
    .unwrap();
    assert_eq!(d.to_string(), "12345678901.2345");
}

#[test]
fn inference_reads_bson_types() {
    let oid = ObjectId::new();
    let docs = vec![
        doc! { "_id": oid, "n": 1_i32, "big": 5_i64, "x": 1_i32, "tags": ["a"], "at": mongodb::bson::DateTime::now() },
        doc! { "_id": ObjectId::new(), "n": 2_i64, "x": 2.5, "note": "hi" },
    ];
    let cols: Vec<(String, ColumnType)> = infer_columns(&docs)
        .into_iter()
        .map(|c| (c.name, c.ty))
        .collect();
    assert_eq!(
        cols,
        vec![
            ("_id".into(), ColumnType::Text),
            ("n".into(), ColumnType::Int64),
            ("big".into(), ColumnType::Int64),
            ("x".into(), ColumnType::Float64),
            ("tags".into(), ColumnType::Json),
            ("at".into(), ColumnType::TimestampTz),
            ("note".into(), ColumnType::Text),
        ]
    );
    let id = Column::new("_id", ColumnType::Text, true);
    assert_eq!(
        to_value(&Bson::ObjectId(oid), &id).unwrap(),
        Value::Text(oid.to_hex())
    );
    let e = to_value(
        &Bson::String("x".into()),
        &Column::new("qty", ColumnType::Int32, true),
    )
    .unwrap_err();
    assert!(
        e.message.contains("`qty`") && e.message.contains("schema"),
        "{e}"
    );
}

fn spec(key: &str, ts: Option<&str>) -> ReadSpec {
    ReadSpec {
        table: Some("c".into()),
        query: None,
        key: key.into(),
        timestamp: ts.map(String::from),
        settle_before: None,
        snapshot: false,
    }
}

#[test]
fn cursors_become_filters_in_key_order() {
    let (f, s) = position(&spec("id", None), &Cursor::Id { last_id: 7 }).unwrap();
    assert_eq!(f, doc! { "id": { "$gt": 7_i64 } });
    assert_eq!(s, doc! { "id": 1 });
    let oid = ObjectId::new();
    let token = Bson::ObjectId(oid).into_relaxed_extjson().to_string();
    let (f, _) = position(&spec("_id", None), &Cursor::Token { token }).unwrap();
    assert_eq!(f, doc! { "_id": { "$gt": oid } });
    let last_ts = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let (f, s) = position(
        &spec("_id", Some("at")),
        &Cursor::Timestamp {
            last_ts,
            last_key: oid.to_hex(),
        },
    )
    .unwrap();
    let at = mongodb::bson::DateTime::from_millis(1_700_000_000_000);
    assert_eq!(
        f,
        doc! { "$or": [ { "at": { "$gt": at } }, { "at": at, "_id": { "$gt": oid } } ] }
    );
    assert_eq!(s, doc! { "at": 1, "_id": 1 });
    assert!(position(&spec("id", None), &Cursor::ObjectKey { key: "k".into() }).is_err());
}

#[test]
fn configuration_names_what_is_wrong() {
    let mk = |cs: &str, options: &[(&str, &str)], pw: Option<&str>| ConnectionSpec {
        kind: ConnectorKind::MongoDb,
        connection_string: cs.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: pw
            .map(|p| BTreeMap::from([("password".to_string(), Secret::new(p))]))
            .unwrap_or_default(),
    };
    let c = MongoConfig::from_spec(&mk(
        "mongodb://ann@h:27017/shop?authSource=admin",
        &[],
        Some("pw"),
    ))
    .unwrap();
    assert_eq!(c.database, "shop");
    assert!(!c.display.contains("pw"));
    for (cs, options, expect) in [
        ("mongodb://h:27017", vec![], "database"),
        ("postgres://h/db", vec![], "scheme"),
        (
            "mongodb://h/db",
            vec![("change_stream", "yes")],
            "`change_stream`",
        ),
        ("mongodb://h/db", vec![("collection", "x")], "known:"),
    ] {
        let e = MongoConfig::from_spec(&mk(cs, &options, None))
            .err()
            .unwrap();
        assert!(e.message.contains(expect), "{cs}: {e}");
    }
}
