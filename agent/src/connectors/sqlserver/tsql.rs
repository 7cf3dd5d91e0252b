//! T-SQL text for the SQL Server connector and its type mapping. Identifiers are
//! validated and quoted with brackets (`sql::Dialect::SqlServer`); values are never part of
//! the text: they are bound as `@P1`, `@P2`…

use crate::connectors::sql::Dialect;
use crate::connectors::types::{Column, ColumnType, DEFAULT_DECIMAL};
use crate::connectors::ConnectorError;

pub const D: Dialect = Dialect::SqlServer;

/// The column type Idra creates for each of its types.
pub fn sqlserver_type(ty: ColumnType) -> String {
    match ty {
        ColumnType::Int16 => "SMALLINT".into(),
        ColumnType::Int32 => "INT".into(),
        ColumnType::Int64 => "BIGINT".into(),
        ColumnType::Float32 => "REAL".into(),
        ColumnType::Float64 => "FLOAT".into(),
        ColumnType::Bool => "BIT".into(),
        ColumnType::Text => "NVARCHAR(MAX)".into(),
        ColumnType::Json => "NVARCHAR(MAX)".into(),
        ColumnType::Bytes => "VARBINARY(MAX)".into(),
        ColumnType::Date => "DATE".into(),
        ColumnType::Time => "TIME(6)".into(),
        ColumnType::Timestamp => "DATETIME2(6)".into(),
        ColumnType::TimestampTz => "DATETIMEOFFSET(6)".into(),
        ColumnType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
        ColumnType::Uuid => "UNIQUEIDENTIFIER".into(),
    }
}

/// Key columns cannot be NVARCHAR(MAX) in an index: they get a bounded length.
fn key_type(ty: ColumnType) -> String {
    match ty {
        ColumnType::Text | ColumnType::Json => "NVARCHAR(450)".into(),
        ColumnType::Bytes => "VARBINARY(900)".into(),
        other => sqlserver_type(other),
    }
}

/// Idra's type for a `system_type_name` as `sp_describe_first_result_set` reports it
/// (`int`, `decimal(12,2)`, `nvarchar(50)`, `datetime2(7)`…).
pub fn map_type(system_type_name: &str) -> ColumnType {
    let t = system_type_name.trim().to_ascii_lowercase();
    let (base, args) = match t.split_once('(') {
        Some((b, a)) => (b.trim().to_string(), a.trim_end_matches(')').to_string()),
        None => (t.clone(), String::new()),
    };
    match base.as_str() {
        "tinyint" | "smallint" => ColumnType::Int16,
        "int" => ColumnType::Int32,
        "bigint" => ColumnType::Int64,
        "real" => ColumnType::Float32,
        "float" if args.parse::<u8>().is_ok_and(|n| n <= 24) => ColumnType::Float32,
        "float" => ColumnType::Float64,
        "bit" => ColumnType::Bool,
        "decimal" | "numeric" => {
            let mut parts = args.split(',').map(|p| p.trim().parse::<u8>());
            match (parts.next(), parts.next()) {
                (Some(Ok(precision)), Some(Ok(scale))) if precision <= 38 => ColumnType::Decimal {
                    precision,
                    scale: scale as i8,
                },
                (Some(Ok(precision)), None) if precision <= 38 => ColumnType::Decimal {
                    precision,
                    scale: 0,
                },
                _ => DEFAULT_DECIMAL,
            }
        }
        "money" => ColumnType::Decimal {
            precision: 19,
            scale: 4,
        },
        "smallmoney" => ColumnType::Decimal {
            precision: 10,
            scale: 4,
        },
        "binary" | "varbinary" | "image" | "timestamp" | "rowversion" => ColumnType::Bytes,
        "date" => ColumnType::Date,
        "time" => ColumnType::Time,
        "datetime" | "datetime2" | "smalldatetime" => ColumnType::Timestamp,
        "datetimeoffset" => ColumnType::TimestampTz,
        "uniqueidentifier" => ColumnType::Uuid,
        _ => ColumnType::Text,
    }
}

/// The columns of any SELECT, described by the server without running it.
pub fn describe_sql() -> &'static str {
    "EXEC sp_describe_first_result_set @tsql = @P1"
}

pub fn create_table_sql(
    table: &str,
    columns: &[Column],
    keys: &[String],
) -> Result<String, ConnectorError> {
    let mut defs = Vec::with_capacity(columns.len() + 1);
    for c in columns {
        let is_key = keys.contains(&c.name);
        let ty = if is_key {
            key_type(c.ty)
        } else {
            sqlserver_type(c.ty)
        };
        let null = if is_key || !c.nullable {
            " NOT NULL"
        } else {
            ""
        };
        defs.push(format!("{} {ty}{null}", D.quote(&c.name)?));
    }
    if !keys.is_empty() {
        defs.push(format!("PRIMARY KEY ({})", D.quote_all(keys)?.join(", ")));
    }
    Ok(format!(
        "CREATE TABLE {} ({})",
        D.quote(table)?,
        defs.join(", ")
    ))
}

/// `MERGE` of `rows` bound rows into `table` on the key columns: matched rows are updated,
/// the others inserted. Parameters row by row, column by column.
pub fn merge_sql(
    table: &str,
    columns: &[String],
    rows: usize,
    keys: &[String],
) -> Result<String, ConnectorError> {
    let cols = D.quote_all(columns)?;
    let mut n = 0;
    let tuples: Vec<String> = (0..rows)
        .map(|_| {
            let ps: Vec<String> = (0..columns.len())
                .map(|_| {
                    n += 1;
                    D.param(n)
                })
                .collect();
            format!("({})", ps.join(", "))
        })
        .collect();
    let on: Vec<String> = D
        .quote_all(keys)?
        .iter()
        .map(|k| format!("t.{k} = s.{k}"))
        .collect();
    let updates: Vec<String> = columns
        .iter()
        .zip(&cols)
        .filter(|(name, _)| !keys.contains(name))
        .map(|(_, q)| format!("t.{q} = s.{q}"))
        .collect();
    let matched = if updates.is_empty() {
        String::new()
    } else {
        format!(" WHEN MATCHED THEN UPDATE SET {}", updates.join(", "))
    };
    let values: Vec<String> = cols.iter().map(|c| format!("s.{c}")).collect();
    Ok(format!(
        "MERGE INTO {} WITH (HOLDLOCK) AS t USING (VALUES {}) AS s ({}) ON {}{matched} WHEN NOT MATCHED THEN INSERT ({}) VALUES ({});",
        D.quote(table)?,
        tuples.join(", "),
        cols.join(", "),
        on.join(" AND "),
        cols.join(", "),
        values.join(", ")
    ))
}

pub const FENCE_DDL: &str = "IF OBJECT_ID(N'_idra_fence', N'U') IS NULL CREATE TABLE [_idra_fence] ([sync_id] NVARCHAR(200) NOT NULL, [table_name] NVARCHAR(400) NOT NULL, [token] BIGINT NOT NULL, [cursor] NVARCHAR(MAX) NOT NULL, PRIMARY KEY ([sync_id], [table_name]))";

/// The highest token stored for a sync, locked until the transaction ends.
pub const FENCE_LOCK: &str =
    "SELECT MAX([token]) FROM [_idra_fence] WITH (UPDLOCK, HOLDLOCK) WHERE [sync_id] = @P1";

/// Writes the commit record of (sync, table): token and cursor.
pub const FENCE_RECORD: &str = "MERGE INTO [_idra_fence] WITH (HOLDLOCK) AS t USING (VALUES (@P1, @P2, @P3, @P4)) AS s ([sync_id], [table_name], [token], [cursor]) ON t.[sync_id] = s.[sync_id] AND t.[table_name] = s.[table_name] WHEN MATCHED THEN UPDATE SET t.[token] = s.[token], t.[cursor] = s.[cursor] WHEN NOT MATCHED THEN INSERT ([sync_id], [table_name], [token], [cursor]) VALUES (s.[sync_id], s.[table_name], s.[token], s.[cursor]);";

/// Raises every record of a sync to a new token (a takeover).
pub const FENCE_RAISE: &str = "UPDATE [_idra_fence] SET [token] = @P2 WHERE [sync_id] = @P1";

pub const FENCE_READ: &str =
    "SELECT [token], [cursor] FROM [_idra_fence] WHERE [sync_id] = @P1 AND [table_name] = @P2";

/// The greatest (timestamp,) key of `table`.
pub fn max_position_sql(
    table: &str,
    key: &str,
    ts: Option<&str>,
) -> Result<String, ConnectorError> {
    let k = D.quote(key)?;
    Ok(match ts {
        None => format!(
            "SELECT TOP (1) {k} FROM {} ORDER BY {k} DESC",
            D.quote(table)?
        ),
        Some(ts) => {
            let t = D.quote(ts)?;
            format!(
                "SELECT TOP (1) {t}, {k} FROM {} ORDER BY {t} DESC, {k} DESC",
                D.quote(table)?
            )
        }
    })
}

/// `OBJECT_ID` argument for a (possibly schema-qualified) table, as a bound string.
pub fn object_name(table: &str) -> Result<String, ConnectorError> {
    D.quote(table)
}
