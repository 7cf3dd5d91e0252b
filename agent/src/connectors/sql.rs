//! SQL text shared by the SQL connectors: identifier validation and quoting per dialect.
//! Values are bound parameters or COPY data, with one exception: Postgres reads by
//! `COPY (query) TO STDOUT`, which takes no parameters, so its cursor values (typed
//! `CursorValue`s: integers, escaped text, times, UUIDs; never text from a user's SQL) are
//! written as literals by `postgres::source::literal`.

use chrono::{DateTime, Utc};
use idra_core::model::Cursor;

use super::types::{Column, ColumnType};
use chrono::{NaiveDate, NaiveDateTime};

use super::values::{parse_uuid, Value};
use super::ConnectorError;

/// The commit-record table every SQL destination keeps next to the rows (see `Commit`).
pub const FENCE_TABLE: &str = "_idra_fence";

/// The table a full refresh loads into before swapping it into place.
pub fn load_table(table: &str) -> String {
    format!("{table}__idra_load")
}

/// Where the swap parks the replaced table until it is dropped.
pub fn old_table(table: &str) -> String {
    format!("{table}__idra_old")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
    SqlServer,
}

impl Dialect {
    fn quote_char(self) -> char {
        match self {
            Dialect::MySql => '`',
            _ => '"',
        }
    }

    /// Validates and quotes one identifier or a dotted `schema.table`.
    pub fn quote(self, ident: &str) -> Result<String, ConnectorError> {
        idra_core::model::validate_identifier("identifier", ident)
            .map_err(|_| ConnectorError::fatal(format!("`{ident}` is not a valid table or column name: use letters, digits, `_`, `$` or `-`, with `.` only between schema and table")))?;
        let (open, close) = match self {
            Dialect::SqlServer => ('[', ']'),
            _ => (self.quote_char(), self.quote_char()),
        };
        Ok(ident
            .split('.')
            .map(|part| format!("{open}{part}{close}"))
            .collect::<Vec<_>>()
            .join("."))
    }

    pub fn quote_all(self, idents: &[String]) -> Result<Vec<String>, ConnectorError> {
        idents.iter().map(|i| self.quote(i)).collect()
    }

    /// The n-th bound parameter (1-based).
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::SqlServer => format!("@P{n}"),
            _ => "?".into(),
        }
    }
}

/// The read query: rows after the cursor in (timestamp,) key order. `select` is the
/// select list (already quoted), `inner` the quoted table or `(custom query) AS src`, and
/// `extra` an optional constant condition (no values). With `settle`, rows whose timestamp
/// is not before a bound cutoff are left for later. Parameters: key; or timestamp,
/// timestamp, key; then the settle cutoff; then the limit.
#[derive(Debug, Clone, Copy)]
pub struct ReadQuery<'a> {
    /// The select list, already quoted.
    pub select: &'a str,
    /// The quoted table, or `(custom query) AS src`.
    pub inner: &'a str,
    pub key: &'a str,
    pub ts: Option<&'a str>,
    /// No cursor yet: read from the start.
    pub first: bool,
    /// A constant condition (no values).
    pub extra: Option<&'a str>,
    /// Bind a settle cutoff after the cursor parameters.
    pub settle: bool,
    /// SQL literals to write in place of the placeholders, in their order (the cursor's
    /// values, the cutoff, the limit), for a statement that takes no parameters (Postgres's
    /// `COPY (query) TO STDOUT`). None: placeholders.
    pub literals: Option<&'a [String]>,
}

pub fn read_query(d: Dialect, q: &ReadQuery<'_>) -> Result<String, ConnectorError> {
    let ReadQuery {
        select,
        inner,
        key,
        ts,
        first,
        extra,
        settle,
        literals,
    } = *q;
    let param = |n: usize| -> Result<String, ConnectorError> {
        match literals {
            None => Ok(d.param(n)),
            Some(l) => l.get(n - 1).cloned().ok_or_else(|| {
                ConnectorError::fatal(format!("read query: no value for parameter {n}"))
            }),
        }
    };
    let k = d.quote(key)?;
    // SQLite keeps timestamps as text in whatever format the writer chose, so equal
    // instants can differ as strings: compare and order them through one normal form,
    // applied to the column and to the bound cursor alike.
    let norm = |e: String| match d {
        Dialect::Sqlite => format!("strftime('%Y-%m-%d %H:%M:%f', {e})"),
        _ => e,
    };
    let (cond, order, next) = match (ts, first) {
        (None, true) => (None, k.clone(), 1),
        (None, false) => (Some(format!("{k} > {}", param(1)?)), k.clone(), 2),
        (Some(ts), true) => {
            let t = norm(d.quote(ts)?);
            (None, format!("{t}, {k}"), 1)
        }
        (Some(ts), false) => {
            let t = norm(d.quote(ts)?);
            let (p1, p2) = (norm(param(1)?), norm(param(2)?));
            (
                Some(format!(
                    "({t} > {p1} OR ({t} = {p2} AND {k} > {p3}))",
                    p3 = param(3)?
                )),
                format!("{t}, {k}"),
                4,
            )
        }
    };
    let mut next = next;
    let mut conds: Vec<String> = cond.into_iter().chain(extra.map(String::from)).collect();
    if let (true, Some(ts)) = (settle, ts) {
        conds.push(format!("{} < {}", norm(d.quote(ts)?), norm(param(next)?)));
        next += 1;
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    Ok(match d {
        Dialect::SqlServer => format!(
            "SELECT TOP ({}) {select} FROM {inner}{filter} ORDER BY {order}",
            param(next)?
        ),
        _ => format!(
            "SELECT {select} FROM {inner}{filter} ORDER BY {order} LIMIT {}",
            param(next)?
        ),
    })
}

/// What a read selects from: the quoted table, or the custom query as `(…) AS src`.
pub fn from_clause(d: Dialect, spec: &super::ReadSpec) -> Result<String, ConnectorError> {
    match (&spec.table, &spec.query) {
        (_, Some(q)) => subquery(q),
        (Some(t), None) => d.quote(t),
        (None, None) => Err(ConnectorError::fatal(
            "the sync names neither a source table nor a query",
        )),
    }
}

/// `(query) AS src`, refusing what cannot be a single SELECT.
pub fn subquery(query: &str) -> Result<String, ConnectorError> {
    let q = query.trim().trim_end_matches(';').trim();
    if q.contains(';') {
        return Err(ConnectorError::fatal(
            "the custom query must be a single SELECT statement (no `;` inside)",
        ));
    }
    if !q.to_ascii_lowercase().starts_with("select") && !q.to_ascii_lowercase().starts_with("with")
    {
        return Err(ConnectorError::fatal(
            "the custom query must start with SELECT or WITH",
        ));
    }
    Ok(format!("({q}) AS src"))
}

/// `INSERT INTO t (cols) VALUES (?, …), (?, …)` for `rows` rows, with the dialect's
/// upsert clause when `upsert_keys` is given.
pub fn insert_sql(
    d: Dialect,
    table: &str,
    columns: &[String],
    rows: usize,
    upsert_keys: Option<&[String]>,
) -> Result<String, ConnectorError> {
    if d == Dialect::SqlServer && upsert_keys.is_some() {
        return Err(ConnectorError::fatal(
            "SQL Server upserts are MERGE statements (sqlserver::tsql::merge_sql)",
        ));
    }
    let cols = d.quote_all(columns)?;
    let mut n = 0;
    let mut tuples = Vec::with_capacity(rows);
    for _ in 0..rows {
        let ps: Vec<String> = (0..columns.len())
            .map(|_| {
                n += 1;
                d.param(n)
            })
            .collect();
        tuples.push(format!("({})", ps.join(", ")));
    }
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        d.quote(table)?,
        cols.join(", "),
        tuples.join(", ")
    );
    if let Some(keys) = upsert_keys {
        let updates: Vec<String> = columns
            .iter()
            .zip(&cols)
            .filter(|(name, _)| !keys.contains(name))
            .map(|(_, q)| match d {
                Dialect::MySql => format!("{q} = VALUES({q})"),
                _ => format!("{q} = excluded.{q}"),
            })
            .collect();
        match d {
            Dialect::MySql if updates.is_empty() => {
                // Nothing to update: a no-op assignment keeps the statement valid.
                let k = d.quote(&keys[0])?;
                sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {k} = {k}"));
            }
            Dialect::MySql => {
                sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", ")))
            }
            _ => {
                let k = d.quote_all(keys)?.join(", ");
                if updates.is_empty() {
                    sql.push_str(&format!(" ON CONFLICT ({k}) DO NOTHING"));
                } else {
                    sql.push_str(&format!(
                        " ON CONFLICT ({k}) DO UPDATE SET {}",
                        updates.join(", ")
                    ));
                }
            }
        }
    }
    Ok(sql)
}

/// Rows per multi-row INSERT: under the dialect's bound-parameter limit and a packet size
/// that every server accepts.
pub fn rows_per_insert(d: Dialect, columns: usize) -> usize {
    let (max_params, max_rows) = match d {
        Dialect::MySql => (60_000, 4_000),
        Dialect::Sqlite => (30_000, 4_000),
        Dialect::Postgres => (60_000, 4_000),
        // 2,100 parameters per request and 1,000 rows per VALUES list.
        Dialect::SqlServer => (2_000, 1_000),
    };
    (max_params / columns.max(1)).clamp(1, max_rows)
}

/// Refuses an existing destination table that lacks one of the columns Idra writes.
pub fn check_existing_columns(
    table: &str,
    columns: &[super::types::Column],
    existing: &[super::types::Column],
) -> Result<(), ConnectorError> {
    let missing: Vec<&str> = columns
        .iter()
        .filter(|c| !existing.iter().any(|e| e.name == c.name))
        .map(|c| c.name.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ConnectorError::fatal(format!(
        "destination table {table} has no column {}; add it, or drop the table and let Idra create it",
        missing.join(", ")
    )))
}

/// A commit record read back from `_idra_fence`.
pub fn commit_record(
    sync_id: &str,
    fence: i64,
    cursor_json: &str,
) -> Result<super::Commit, ConnectorError> {
    let cursor = serde_json::from_str(cursor_json).map_err(|e| {
        ConnectorError::fatal(format!(
            "_idra_fence holds a cursor Idra cannot read ({e}); delete its row for sync {sync_id} to start that table over"
        ))
    })?;
    Ok(super::Commit {
        sync_id: sync_id.to_string(),
        fence,
        cursor,
    })
}

/// A cursor bound as a read query expects it: one value per placeholder, each with the type
/// of the column it is compared with.
pub struct CursorParam {
    pub value: CursorValue,
    pub ty: ColumnType,
}

/// The values a cursor or a settle cutoff can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorValue {
    Int(i64),
    Text(String),
    Uuid([u8; 16]),
    Date(NaiveDate),
    Timestamp(NaiveDateTime),
    TimestampTz(DateTime<Utc>),
}

impl From<CursorValue> for Value {
    fn from(v: CursorValue) -> Value {
        match v {
            CursorValue::Int(i) => Value::Int(i),
            CursorValue::Text(s) => Value::Text(s),
            CursorValue::Uuid(u) => Value::Uuid(u),
            CursorValue::Date(d) => Value::Date(d),
            CursorValue::Timestamp(t) => Value::Timestamp(t),
            CursorValue::TimestampTz(t) => Value::TimestampTz(t),
        }
    }
}

/// The values a read query (see [`read_query`]) binds for `after`, in order: the last id
/// for an id cursor; the last timestamp twice and then the last key for a timestamp cursor.
/// Every SQL source binds these; only how its driver binds a value differs.
pub fn cursor_params(
    after: &Cursor,
    key: &Column,
    ts: Option<&Column>,
) -> Result<Vec<CursorParam>, ConnectorError> {
    let param = |value, ty| CursorParam { value, ty };
    match (after, ts) {
        (Cursor::Start, _) => Ok(Vec::new()),
        (Cursor::Id { last_id }, None) => Ok(vec![param(CursorValue::Int(*last_id), key.ty)]),
        (Cursor::Timestamp { last_ts, last_key }, Some(ts)) => {
            let at = time_param(*last_ts, ts.ty);
            Ok(vec![
                param(at.clone(), ts.ty),
                param(at, ts.ty),
                param(key_value(last_key, key)?, key.ty),
            ])
        }
        (Cursor::Timestamp { .. }, None) => Err(ConnectorError::fatal(
            "the offset is a timestamp cursor but the sync has no timestamp column; reset the sync's offset",
        )),
        (other, _) => Err(ConnectorError::fatal(format!(
            "the offset ({}) does not fit this sync's mode; reset the sync's offset",
            other.describe()
        ))),
    }
}

/// An instant as a value of a column of type `ty` (the settle cutoff, a cursor's time).
pub fn time_param(t: DateTime<Utc>, ty: ColumnType) -> CursorValue {
    match ty {
        ColumnType::Date => CursorValue::Date(t.date_naive()),
        ColumnType::TimestampTz => CursorValue::TimestampTz(t),
        _ => CursorValue::Timestamp(t.naive_utc()),
    }
}

/// A timestamp cursor's key as a value of the key column.
fn key_value(last_key: &str, key: &Column) -> Result<CursorValue, ConnectorError> {
    if key.ty.is_integer() {
        let id = last_key.parse().map_err(|_| {
            ConnectorError::fatal(format!(
                "the offset's key `{last_key}` is not an integer; reset the sync's offset"
            ))
        })?;
        return Ok(CursorValue::Int(id));
    }
    if key.ty == ColumnType::Uuid {
        let u = parse_uuid(last_key).ok_or_else(|| {
            ConnectorError::fatal(format!(
                "the offset's key `{last_key}` is not a UUID; reset the sync's offset"
            ))
        })?;
        return Ok(CursorValue::Uuid(u));
    }
    Ok(CursorValue::Text(last_key.to_string()))
}

/// The error for a writer whose token is older than the destination's.
pub fn fenced_off(sync_id: &str, stored: i64, mine: i64) -> ConnectorError {
    ConnectorError::fatal(format!(
        "fenced off: the destination's _idra_fence record of sync {sync_id} holds token {stored}, newer than this agent's {mine}: another agent took the sync over and this one lost its lock, so nothing was written. If no other agent runs it (a store restored from a backup), an admin can hand the destination to this store: DELETE FROM _idra_fence WHERE sync_id = '{sync_id}' (the next run resumes from the Store's offset)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_take_the_placeholders_places_in_order() {
        let literals = [
            "E'a''b'".to_string(),
            "E'a''b'".into(),
            "(7)".into(),
            "100".into(),
        ];
        let q = read_query(
            Dialect::Postgres,
            &ReadQuery {
                select: "\"id\"",
                inner: "\"t\"",
                key: "id",
                ts: Some("ts"),
                first: false,
                extra: None,
                settle: false,
                literals: Some(&literals),
            },
        )
        .unwrap();
        assert_eq!(q, "SELECT \"id\" FROM \"t\" WHERE (\"ts\" > E'a''b' OR (\"ts\" = E'a''b' AND \"id\" > (7))) ORDER BY \"ts\", \"id\" LIMIT 100");
    }

    #[test]
    fn too_few_literals_is_an_error_not_a_placeholder() {
        let literals = ["(7)".to_string()];
        let q = ReadQuery {
            select: "\"id\"",
            inner: "\"t\"",
            key: "id",
            ts: None,
            first: false,
            extra: None,
            settle: false,
            literals: Some(&literals),
        };
        assert!(read_query(Dialect::Postgres, &q).is_err());
    }

    #[test]
    fn quoting_per_dialect() {
        assert_eq!(
            Dialect::Postgres.quote("public.orders").unwrap(),
            r#""public"."orders""#
        );
        assert_eq!(Dialect::MySql.quote("orders").unwrap(), "`orders`");
        assert!(Dialect::Postgres.quote("t\"; DROP TABLE x; --").is_err());
        assert!(Dialect::MySql.quote("a`b").is_err());
    }

    #[test]
    fn read_queries_bind_every_value() {
        let q = read_query(
            Dialect::Postgres,
            &ReadQuery {
                select: r#""id", "ts""#,
                inner: "\"t\"",
                key: "id",
                ts: Some("ts"),
                first: false,
                extra: None,
                settle: false,
                literals: None,
            },
        )
        .unwrap();
        assert_eq!(
            q,
            r#"SELECT "id", "ts" FROM "t" WHERE ("ts" > $1 OR ("ts" = $2 AND "id" > $3)) ORDER BY "ts", "id" LIMIT $4"#
        );
        let q = read_query(
            Dialect::MySql,
            &ReadQuery {
                select: "`id`",
                inner: "`t`",
                key: "id",
                ts: None,
                first: false,
                extra: None,
                settle: false,
                literals: None,
            },
        )
        .unwrap();
        assert_eq!(
            q,
            "SELECT `id` FROM `t` WHERE `id` > ? ORDER BY `id` LIMIT ?"
        );
        let q = read_query(
            Dialect::Sqlite,
            &ReadQuery {
                select: "*",
                inner: "\"t\"",
                key: "id",
                ts: Some("ts"),
                first: false,
                extra: None,
                settle: false,
                literals: None,
            },
        )
        .unwrap();
        assert!(
            q.contains(r#"strftime('%Y-%m-%d %H:%M:%f', "ts") > strftime('%Y-%m-%d %H:%M:%f', ?)"#),
            "{q}"
        );
        let q = read_query(
            Dialect::Postgres,
            &ReadQuery {
                select: "*",
                inner: "\"t\"",
                key: "id",
                ts: None,
                first: true,
                extra: Some("x"),
                settle: false,
                literals: None,
            },
        )
        .unwrap();
        assert_eq!(q, r#"SELECT * FROM "t" WHERE x ORDER BY "id" LIMIT $1"#);
    }

    #[test]
    fn inserts_upsert_per_dialect() {
        let cols = vec!["id".to_string(), "v".to_string()];
        let keys = vec!["id".to_string()];
        assert_eq!(
            insert_sql(Dialect::MySql, "t", &cols, 2, Some(&keys)).unwrap(),
            "INSERT INTO `t` (`id`, `v`) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE `v` = VALUES(`v`)"
        );
        assert_eq!(
            insert_sql(Dialect::Sqlite, "t", &cols, 1, Some(&keys)).unwrap(),
            r#"INSERT INTO "t" ("id", "v") VALUES (?, ?) ON CONFLICT ("id") DO UPDATE SET "v" = excluded."v""#
        );
        assert_eq!(
            insert_sql(Dialect::Sqlite, "t", &cols, 1, None).unwrap(),
            r#"INSERT INTO "t" ("id", "v") VALUES (?, ?)"#
        );
        assert!(rows_per_insert(Dialect::Sqlite, 10) * 10 <= 30_000);
    }

    #[test]
    fn a_settle_window_is_one_more_bound_parameter() {
        let q = read_query(
            Dialect::MySql,
            &ReadQuery {
                select: "*",
                inner: "`t`",
                key: "id",
                ts: Some("ts"),
                first: false,
                extra: None,
                settle: true,
                literals: None,
            },
        )
        .unwrap();
        assert_eq!(q, "SELECT * FROM `t` WHERE (`ts` > ? OR (`ts` = ? AND `id` > ?)) AND `ts` < ? ORDER BY `ts`, `id` LIMIT ?");
        let q = read_query(
            Dialect::Postgres,
            &ReadQuery {
                select: "*",
                inner: "t",
                key: "id",
                ts: Some("ts"),
                first: true,
                extra: None,
                settle: true,
                literals: None,
            },
        )
        .unwrap();
        assert_eq!(
            q,
            r#"SELECT * FROM t WHERE "ts" < $1 ORDER BY "ts", "id" LIMIT $2"#
        );
    }

    #[test]
    fn custom_queries_must_be_one_select() {
        assert!(subquery("select * from t;").is_ok());
        assert!(subquery("select 1; drop table t").is_err());
        assert!(subquery("delete from t").is_err());
    }
}
