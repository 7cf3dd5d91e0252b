//! Pure-logic tests of the MySQL connector. Tests against a real server:
//! agent/tests/sql_connectors.rs.

use super::destination::mysql_type;
use super::source::map_type;
use crate::connectors::types::ColumnType;

#[test]
fn created_types_map_back() {
    for (ty, expected) in [
        (ColumnType::Int16, ColumnType::Int16),
        (ColumnType::Int32, ColumnType::Int32),
        (ColumnType::Int64, ColumnType::Int64),
        (ColumnType::Float32, ColumnType::Float32),
        (ColumnType::Float64, ColumnType::Float64),
        (ColumnType::Text, ColumnType::Text),
        (ColumnType::Bytes, ColumnType::Bytes),
        (ColumnType::Date, ColumnType::Date),
        (ColumnType::Time, ColumnType::Time),
        (ColumnType::Timestamp, ColumnType::Timestamp),
        // DATETIME has no zone: an instant is stored as UTC and reads back as a timestamp.
        (ColumnType::TimestampTz, ColumnType::Timestamp),
        (ColumnType::Uuid, ColumnType::Text),
    ] {
        let created = mysql_type(ty, false).to_ascii_lowercase();
        let base = created.split('(').next().unwrap().to_string();
        assert_eq!(map_type(&base, &created, None, None), expected, "{created}");
    }
    assert_eq!(
        map_type("tinyint", "tinyint(1)", None, None),
        ColumnType::Bool
    );
    assert_eq!(
        map_type("decimal", "decimal(12,2)", Some(12), Some(2)),
        ColumnType::Decimal {
            precision: 12,
            scale: 2
        }
    );
    assert_eq!(mysql_type(ColumnType::Text, true), "VARCHAR(255)");
}
