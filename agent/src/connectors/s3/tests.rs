//! Pure-logic tests of the S3 connector (configuration, object names, formats). Against an
//! in-process S3 server that checks signatures: agent/tests/s3_connector.rs.

use std::collections::BTreeMap;

use idra_core::model::ConnectorKind;
use idra_core::secret::Secret;

use super::config::S3Config;
use super::destination::object_key;
use super::formats::{decode, encode, Format};
use crate::connectors::types::{schema_of, Column, ColumnType};
use crate::connectors::values::{sample, value_at, BatchBuilder, Value};
use crate::connectors::ConnectionSpec;

fn spec(cs: &str, options: &[(&str, &str)]) -> ConnectionSpec {
    let mut o: BTreeMap<String, String> =
        BTreeMap::from([("access_key_id".to_string(), "AK".to_string())]);
    for (k, v) in options {
        o.insert(k.to_string(), v.to_string());
    }
    ConnectionSpec {
        kind: ConnectorKind::S3,
        connection_string: cs.into(),
        options: o,
        secrets: BTreeMap::from([("password".to_string(), Secret::new("sk"))]),
    }
}

#[test]
fn connection_strings_and_options() {
    let c = S3Config::from_spec(&spec(
        "s3://lake/raw/events/",
        &[("endpoint", "http://127.0.0.1:9000")],
    ))
    .unwrap();
    assert_eq!(
        (c.bucket.as_str(), c.prefix.as_str()),
        ("lake", "raw/events/")
    );
    assert!(
        c.path_style,
        "a custom endpoint means path-style addressing"
    );
    assert_eq!(c.folder("orders"), "raw/events/orders/");
    let c = S3Config::from_spec(&spec("s3://lake", &[])).unwrap();
    assert_eq!((c.prefix.as_str(), c.path_style), ("", false));
    for (cs, options, expect) in [
        ("lake/raw", vec![], "connection_string"),
        ("s3:///raw", vec![], "bucket"),
        ("s3://lake", vec![("format", "xml")], "`format`"),
        (
            "s3://lake",
            vec![("format", "parquet"), ("compression", "gzip")],
            "`compression`",
        ),
        ("s3://lake", vec![("endpoint", "not a url")], "`endpoint`"),
        ("s3://lake", vec![("acces_key", "x")], "known:"),
    ] {
        let e = S3Config::from_spec(&spec(cs, &options)).err().unwrap();
        assert!(e.message.contains(expect), "{cs} {options:?}: {e}");
    }
    let mut no_secret = spec("s3://lake", &[]);
    no_secret.secrets.clear();
    assert!(S3Config::from_spec(&no_secret)
        .err()
        .unwrap()
        .message
        .starts_with("password"));
}

#[test]
fn object_names_sort_in_write_order() {
    let a = object_key("p/t/s/", 9, Format::JsonLines, true);
    let b = object_key("p/t/s/", 10, Format::JsonLines, true);
    assert_eq!(a, "p/t/s/00000000000000000009.jsonl.gz");
    assert!(a < b);
    assert_eq!(Format::of_key(&a), Some((Format::JsonLines, true)));
    assert_eq!(
        Format::of_key("p/x.parquet"),
        Some((Format::Parquet, false))
    );
    assert_eq!(Format::of_key("p/_SUCCESS"), None);
}

#[test]
fn every_format_round_trips_every_type() {
    let mut columns = vec![Column::new("id", ColumnType::Int64, false)];
    for (i, ty) in ColumnType::ALL.into_iter().enumerate() {
        columns.push(Column::new(format!("c{i}"), ty, true));
    }
    let mut b = BatchBuilder::new(&columns, 2);
    for id in 1..=2 {
        b.push(0, Value::Int(id)).unwrap();
        for (i, c) in columns.iter().enumerate().skip(1) {
            b.push(i, if id == 1 { sample(c.ty) } else { Value::Null })
                .unwrap();
        }
        b.end_row();
    }
    let batch = b.finish().unwrap();
    for (format, gzip) in [
        (Format::JsonLines, false),
        (Format::JsonLines, true),
        (Format::Csv, true),
        (Format::Parquet, false),
    ] {
        let body = encode(&batch, format, gzip).unwrap();
        let back = decode(&body, "k", format, gzip, Some(&columns)).unwrap();
        assert_eq!(back.schema(), schema_of(&columns), "{format:?}");
        for (i, c) in columns.iter().enumerate() {
            for row in 0..2 {
                assert_eq!(
                    value_at(back.column(i), c.ty, row),
                    value_at(batch.column(i), c.ty, row),
                    "{format:?} gzip={gzip} {} row {row}",
                    c.ty.name()
                );
            }
        }
    }
}
