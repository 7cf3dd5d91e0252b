//! Pure-logic tests of the SQL Server connector: the T-SQL it sends and its type mapping.
//! Against a real server (when `IDRA_TEST_MSSQL_URL` is set): agent/tests/sqlserver_connector.rs.

use std::collections::BTreeMap;

use idra_core::model::ConnectorKind;
use idra_core::secret::Secret;

use super::config::SqlServerConfig;
use super::tsql::{create_table_sql, map_type, max_position_sql, merge_sql, sqlserver_type, D};
use crate::connectors::sql::{insert_sql, read_query, rows_per_insert, ReadQuery};
use crate::connectors::types::{Column, ColumnType};
use crate::connectors::ConnectionSpec;

#[test]
fn every_type_maps_back_to_itself() {
    for ty in ColumnType::ALL {
        let created = sqlserver_type(ty);
        let expected = if ty == ColumnType::Json {
            ColumnType::Text
        } else {
            ty
        };
        assert_eq!(
            map_type(&created.to_ascii_lowercase()),
            expected,
            "{created}"
        );
    }
    assert_eq!(map_type("tinyint"), ColumnType::Int16);
    assert_eq!(
        map_type("money"),
        ColumnType::Decimal {
            precision: 19,
            scale: 4
        }
    );
    assert_eq!(map_type("float(24)"), ColumnType::Float32);
    assert_eq!(map_type("datetime"), ColumnType::Timestamp);
    assert_eq!(map_type("nvarchar(50)"), ColumnType::Text);
    assert_eq!(map_type("xml"), ColumnType::Text);
}

#[test]
fn identifiers_are_bracketed_and_checked() {
    assert_eq!(D.quote("sales.orders").unwrap(), "[sales].[orders]");
    assert!(D.quote("orders]; DROP TABLE x --").is_err());
}

#[test]
fn reads_use_top_and_bound_cursors() {
    let q = |ts: Option<&str>, first: bool| {
        read_query(
            D,
            &ReadQuery {
                select: "[id], [ts]",
                inner: "[orders]",
                key: "id",
                ts,
                first,
                extra: None,
                settle: false,
                literals: None,
            },
        )
        .unwrap()
    };
    assert_eq!(
        q(None, true),
        "SELECT TOP (@P1) [id], [ts] FROM [orders] ORDER BY [id]"
    );
    assert_eq!(
        q(None, false),
        "SELECT TOP (@P2) [id], [ts] FROM [orders] WHERE [id] > @P1 ORDER BY [id]"
    );
    assert_eq!(
        q(Some("ts"), false),
        "SELECT TOP (@P4) [id], [ts] FROM [orders] WHERE ([ts] > @P1 OR ([ts] = @P2 AND [id] > @P3)) ORDER BY [ts], [id]"
    );
}

#[test]
fn writes_are_bound_inserts_or_one_merge() {
    let cols = vec!["id".to_string(), "name".to_string()];
    assert_eq!(
        insert_sql(D, "dbo.orders", &cols, 2, None).unwrap(),
        "INSERT INTO [dbo].[orders] ([id], [name]) VALUES (@P1, @P2), (@P3, @P4)"
    );
    assert!(
        insert_sql(D, "orders", &cols, 1, Some(&cols[..1])).is_err(),
        "upserts are MERGEs"
    );
    assert_eq!(
        merge_sql("orders", &cols, 2, &cols[..1]).unwrap(),
        "MERGE INTO [orders] WITH (HOLDLOCK) AS t USING (VALUES (@P1, @P2), (@P3, @P4)) AS s ([id], [name]) ON t.[id] = s.[id] WHEN MATCHED THEN UPDATE SET t.[name] = s.[name] WHEN NOT MATCHED THEN INSERT ([id], [name]) VALUES (s.[id], s.[name]);"
    );
    // Only keys: nothing to update.
    let only_key = merge_sql("orders", &cols[..1], 1, &cols[..1]).unwrap();
    assert!(!only_key.contains("WHEN MATCHED"), "{only_key}");
    // Under 2,100 parameters and 1,000 rows per statement.
    assert_eq!(rows_per_insert(D, 2), 1000);
    assert_eq!(rows_per_insert(D, 40), 50);
}

#[test]
fn tables_are_created_with_bounded_keys() {
    let columns = vec![
        Column::new("code", ColumnType::Text, false),
        Column::new(
            "amount",
            ColumnType::Decimal {
                precision: 12,
                scale: 2,
            },
            true,
        ),
        Column::new("at", ColumnType::TimestampTz, true),
    ];
    assert_eq!(
        create_table_sql("prices", &columns, &["code".to_string()]).unwrap(),
        "CREATE TABLE [prices] ([code] NVARCHAR(450) NOT NULL, [amount] DECIMAL(12,2), [at] DATETIMEOFFSET(6), PRIMARY KEY ([code]))"
    );
    assert_eq!(
        max_position_sql("prices", "code", Some("at")).unwrap(),
        "SELECT TOP (1) [at], [code] FROM [prices] ORDER BY [at] DESC, [code] DESC"
    );
}

#[test]
fn connection_strings_keep_the_password_out() {
    let spec = |cs: &str, password: Option<&str>| ConnectionSpec {
        kind: ConnectorKind::SqlServer,
        connection_string: cs.into(),
        options: BTreeMap::new(),
        secrets: password
            .map(|p| BTreeMap::from([("password".to_string(), Secret::new(p))]))
            .unwrap_or_default(),
    };
    let c = SqlServerConfig::from_spec(&spec(
        "server=tcp:db.local,1433;user=sa;database=app",
        Some("pw"),
    ))
    .unwrap();
    assert_eq!(c.display, "db.local:1433");
    let e = SqlServerConfig::from_spec(&spec("server=tcp:db,1433;user=sa;password=x", None))
        .err()
        .unwrap();
    assert!(e.message.contains("Password"), "{e}");
}
