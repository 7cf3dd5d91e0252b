//! Pure-logic tests of the SQLite connector. Tests against real files:
//! agent/tests/sql_connectors.rs.

use super::destination::sqlite_type;
use super::source::map_type;
use crate::connectors::types::ColumnType;

#[test]
fn declared_types_round_trip() {
    for ty in [
        ColumnType::Int16,
        ColumnType::Int32,
        ColumnType::Int64,
        ColumnType::Float32,
        ColumnType::Float64,
        ColumnType::Bool,
        ColumnType::Text,
        ColumnType::Bytes,
        ColumnType::Date,
        ColumnType::Time,
        ColumnType::Timestamp,
        ColumnType::TimestampTz,
        ColumnType::Decimal {
            precision: 12,
            scale: 2,
        },
        ColumnType::Json,
        ColumnType::Uuid,
    ] {
        assert_eq!(map_type(&sqlite_type(ty)), ty, "{}", sqlite_type(ty));
    }
    assert_eq!(map_type("varchar(20)"), ColumnType::Text);
    assert_eq!(map_type(""), ColumnType::Text);
}
