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
