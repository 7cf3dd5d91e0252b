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
