//! Rows as JSON records, for the connectors that carry messages or documents (HTTP API,
//! RabbitMQ, Kafka, S3 JSON lines): a batch encoded as objects, objects decoded into a batch
//! with declared or inferred columns.
//!
//! Encoding is lossless for every column type: decimals travel as strings (a JSON number
//! would round them through f64), bytes as base64, timestamps as RFC 3339 with microseconds.

use arrow_array::RecordBatch;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::{Map, Value as Json};

use super::types::{Column, ColumnType};
use super::values::{
    format_decimal, format_uuid, parse_decimal, parse_uuid, value_at, BatchBuilder, Value,
};
use super::ConnectorError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One cell as JSON.
pub fn encode_value(v: Value, ty: ColumnType) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => Json::from(i),
        // NaN and infinities have no JSON number: carried as strings, as Postgres prints them.
        Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(f.to_string())),
        Value::Bool(b) => Json::Bool(b),
        Value::Text(s) if ty == ColumnType::Json => {
            serde_json::from_str(&s).unwrap_or(Json::String(s))
        }
        Value::Text(s) => Json::String(s),
        Value::Bytes(b) => Json::String(B64.encode(b)),
        Value::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
        Value::Time(t) => Json::String(t.format("%H:%M:%S%.6f").to_string()),
        Value::Timestamp(t) => Json::String(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        Value::TimestampTz(t) => Json::String(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        Value::Decimal(d) => match ty {
            ColumnType::Decimal { scale, .. } => Json::String(format_decimal(d, scale)),
            _ => Json::String(d.to_string()),
        },
        Value::Uuid(u) => Json::String(format_uuid(&u)),
    }
}

/// Every row of `batch` as a JSON object keyed by column name.
pub fn encode_rows(batch: &RecordBatch, columns: &[Column]) -> Vec<Map<String, Json>> {
    (0..batch.num_rows())
        .map(|row| {
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        c.name.clone(),
                        encode_value(value_at(batch.column(i), c.ty, row), c.ty),
                    )
                })
                .collect()
        })
        .collect()
}

fn bad(col: &Column, j: &Json, expect: &str) -> ConnectorError {
    let mut shown = j.to_string();
    if shown.len() > 80 {
        shown.truncate(80);
        shown.push('…');
    }
    ConnectorError::fatal(format!(
        "field `{}` is {shown}, not {expect} as its declared type {} needs; fix the data or declare the field with another type in the data source's `schema` option",
        col.name,
        col.ty.name()
    ))
}

fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

fn parse_timestamptz(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z")
                .map(|t| t.with_timezone(&Utc))
                .ok()
        })
        // A timestamp without an offset is taken as UTC.
        .or_else(|| parse_timestamp(s).map(|t| t.and_utc()))
}

/// One JSON field as a value of `col`'s type.
pub fn decode_value(j: &Json, col: &Column) -> Result<Value, ConnectorError> {
    if j.is_null() {
        return Ok(Value::Null);
    }
    let text = j.as_str();
    let v = match col.ty {
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => j
            .as_i64()
            .or_else(|| text.and_then(|s| s.trim().parse().ok()))
            .map(Value::Int)
            .ok_or_else(|| bad(col, j, "an integer"))?,
        ColumnType::Float32 | ColumnType::Float64 => j
            .as_f64()
            .or_else(|| text.and_then(|s| s.trim().parse().ok()))
            .map(Value::Float)
            .ok_or_else(|| bad(col, j, "a number"))?,
        ColumnType::Bool => j
            .as_bool()
            .or_else(|| text.and_then(|s| s.parse().ok()))
            .map(Value::Bool)
            .ok_or_else(|| bad(col, j, "true or false"))?,
        ColumnType::Text => Value::Text(match text {
            Some(s) => s.to_string(),
            None => j.to_string(),
        }),
        ColumnType::Json => Value::Text(j.to_string()),
        ColumnType::Bytes => Value::Bytes(
            text.and_then(|s| B64.decode(s).ok())
                .ok_or_else(|| bad(col, j, "base64 text"))?,
        ),
        ColumnType::Date => text
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(Value::Date)
            .ok_or_else(|| bad(col, j, "a date (YYYY-MM-DD)"))?,
        ColumnType::Time => text
            .and_then(|s| NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok())
            .map(Value::Time)
            .ok_or_else(|| bad(col, j, "a time (HH:MM:SS)"))?,
        ColumnType::Timestamp => text
            .and_then(parse_timestamp)
            .map(Value::Timestamp)
            .ok_or_else(|| bad(col, j, "a timestamp (YYYY-MM-DDTHH:MM:SS)"))?,
        ColumnType::TimestampTz => text
            .and_then(parse_timestamptz)
            .map(Value::TimestampTz)
            .ok_or_else(|| bad(col, j, "an RFC 3339 timestamp"))?,
        ColumnType::Decimal { scale, .. } => {
            let s = match j {
                Json::Number(n) => n.to_string(),
                _ => text.unwrap_or_default().to_string(),
            };
            parse_decimal(s.trim(), scale)
                .map(Value::Decimal)
                .ok_or_else(|| bad(col, j, "a decimal number"))?
        }
        ColumnType::Uuid => text
            .and_then(parse_uuid)
            .map(Value::Uuid)
            .ok_or_else(|| bad(col, j, "a UUID"))?,
    };
    Ok(v)
}

/// The records one message carries: a JSON object, or an array of objects. Err holds the
/// start of the body, for the caller's message naming where the message sits.
pub fn message_records(body: &[u8]) -> Result<Vec<Json>, String> {
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(o)) => Ok(vec![Json::Object(o)]),
        Ok(Json::Array(a)) if a.iter().all(Json::is_object) => Ok(a),
        _ => Err(String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned()),
    }
}

/// JSON objects as a batch of `columns`: a missing field is NULL, extra fields are ignored.
pub fn decode_records(records: &[Json], columns: &[Column]) -> Result<RecordBatch, ConnectorError> {
    let mut b = BatchBuilder::new(columns, records.len());
    for (n, record) in records.iter().enumerate() {
        let obj = record.as_object().ok_or_else(|| {
            ConnectorError::fatal(format!(
                "record {n} is not a JSON object ({}); each record must be an object of fields",
                kind_of(record)
            ))
        })?;
        for (i, col) in columns.iter().enumerate() {
            let v = decode_value(obj.get(&col.name).unwrap_or(&Json::Null), col)?;
            b.push(i, v)?;
        }
        b.end_row();
    }
    b.finish()
}

fn kind_of(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn type_of(j: &Json) -> Option<ColumnType> {
    Some(match j {
        Json::Null => return None,
        Json::Bool(_) => ColumnType::Bool,
        Json::Number(n) if n.is_i64() => ColumnType::Int64,
        Json::Number(_) => ColumnType::Float64,
        Json::String(s) if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => ColumnType::Date,
        Json::String(s) if DateTime::parse_from_rfc3339(s).is_ok() => ColumnType::TimestampTz,
        Json::String(_) => ColumnType::Text,
        Json::Array(_) | Json::Object(_) => ColumnType::Json,
    })
}

/// Columns for `records` when none are declared: every field in order of first appearance
/// (within a record, in the order serde_json's map keeps), typed by what all its non-null values agree on (integers and floats widen to float;
/// any other disagreement is text). All nullable.
pub fn infer_columns(records: &[Json]) -> Vec<Column> {
    let mut columns: Vec<(String, Option<ColumnType>)> = Vec::new();
    for record in records {
        let Some(obj) = record.as_object() else {
            continue;
        };
        for (name, value) in obj {
            let idx = match columns.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    columns.push((name.clone(), None));
                    columns.len() - 1
                }
            };
            let Some(t) = type_of(value) else { continue };
            let slot = &mut columns[idx].1;
            *slot = Some(match *slot {
                None => t,
                Some(old) if old == t => t,
                Some(ColumnType::Int64) if t == ColumnType::Float64 => ColumnType::Float64,
                Some(ColumnType::Float64) if t == ColumnType::Int64 => ColumnType::Float64,
                Some(ColumnType::Date) if t == ColumnType::TimestampTz => ColumnType::TimestampTz,
                Some(ColumnType::TimestampTz) if t == ColumnType::Date => ColumnType::TimestampTz,
                Some(_) => ColumnType::Text,
            });
        }
    }
    columns
        .into_iter()
        .map(|(name, ty)| Column::new(name, ty.unwrap_or(ColumnType::Text), true))
        .collect()
}

/// A declared schema: `name type, name type, …` with the type names of [`ColumnType::name`]
/// and their usual SQL spellings (`bigint`, `text`, `timestamptz`, `numeric(12,2)`…).
pub fn parse_schema(declared: &str) -> Result<Vec<Column>, ConnectorError> {
    let mut out: Vec<Column> = Vec::new();
    // Split on commas outside parentheses (decimal(12,2) has one inside).
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in declared.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&declared[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&declared[start..]);
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let (name, ty) = part.split_once(char::is_whitespace).ok_or_else(|| {
            ConnectorError::fatal(format!(
                "schema: `{part}` needs a name and a type, e.g. `id bigint`"
            ))
        })?;
        let ty = parse_type(ty.trim()).ok_or_else(|| {
            ConnectorError::fatal(format!(
                "schema: `{}` is not a type Idra knows for field `{name}`; use one of smallint, integer, bigint, real, double, boolean, text, bytes, date, time, timestamp, timestamptz, decimal(p,s), json, uuid",
                ty.trim()
            ))
        })?;
        if out.iter().any(|c| c.name == name) {
            return Err(ConnectorError::fatal(format!(
                "schema: field `{name}` is declared twice"
            )));
        }
        out.push(Column::new(name, ty, true));
    }
    if out.is_empty() {
        return Err(ConnectorError::fatal(
            "schema: declare at least one field, e.g. `id bigint, name text`",
        ));
    }
    Ok(out)
}

fn parse_type(t: &str) -> Option<ColumnType> {
    let t = t.to_ascii_lowercase().replace(' ', "");
    if let Some(args) = t
        .strip_prefix("decimal(")
        .or_else(|| t.strip_prefix("numeric("))
        .and_then(|r| r.strip_suffix(')'))
    {
        let (p, s) = args.split_once(',').unwrap_or((args, "0"));
        let precision: u8 = p.parse().ok().filter(|p| (1..=38).contains(p))?;
        let scale: i8 = s
            .parse()
            .ok()
            .filter(|s| (0..=precision as i8).contains(s))?;
        return Some(ColumnType::Decimal { precision, scale });
    }
    Some(match t.as_str() {
        "smallint" | "int16" => ColumnType::Int16,
        "int" | "integer" | "int32" => ColumnType::Int32,
        "bigint" | "int64" | "long" => ColumnType::Int64,
        "real" | "float32" => ColumnType::Float32,
        "double" | "float" | "float64" | "doubleprecision" => ColumnType::Float64,
        "bool" | "boolean" => ColumnType::Bool,
        "text" | "string" | "varchar" => ColumnType::Text,
        "bytes" | "bytea" | "binary" => ColumnType::Bytes,
        "date" => ColumnType::Date,
        "time" => ColumnType::Time,
        "timestamp" => ColumnType::Timestamp,
        "timestamptz" => ColumnType::TimestampTz,
        "json" | "jsonb" => ColumnType::Json,
        "uuid" => ColumnType::Uuid,
        "decimal" | "numeric" => super::types::DEFAULT_DECIMAL,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_round_trips_through_json() {
        for ty in ColumnType::ALL {
            let col = Column::new("c", ty, true);
            let v = crate::connectors::values::sample(ty);
            let j = encode_value(v.clone(), ty);
            // Through text, as it travels.
            let j: Json = serde_json::from_str(&j.to_string()).unwrap();
            assert_eq!(decode_value(&j, &col).unwrap(), v, "{}", ty.name());
            assert_eq!(decode_value(&Json::Null, &col).unwrap(), Value::Null);
        }
    }

    #[test]
    fn batches_round_trip_and_missing_fields_are_null() {
        let cols = vec![
            Column::new("id", ColumnType::Int64, false),
            Column::new(
                "amount",
                ColumnType::Decimal {
                    precision: 12,
                    scale: 2,
                },
                true,
            ),
        ];
        let records = vec![
            json!({"id": 1, "amount": "10.50"}),
            json!({"id": 2, "extra": true}),
        ];
        let batch = decode_records(&records, &cols).unwrap();
        let rows = encode_rows(&batch, &cols);
        assert_eq!(
            Json::Object(rows[0].clone()),
            json!({"id": 1, "amount": "10.50"})
        );
        assert_eq!(
            Json::Object(rows[1].clone()),
            json!({"id": 2, "amount": null})
        );
        assert_eq!(decode_records(&[], &cols).unwrap().num_rows(), 0);
    }

    #[test]
    fn wrong_values_name_the_field_and_the_fix() {
        let col = Column::new("qty", ColumnType::Int32, true);
        let e = decode_value(&json!("many"), &col).unwrap_err();
        assert!(
            e.message.contains("`qty`") && e.message.contains("schema"),
            "{}",
            e.message
        );
        let e = decode_records(&[json!([1, 2])], &[col]).unwrap_err();
        assert!(
            e.message.contains("record 0 is not a JSON object"),
            "{}",
            e.message
        );
    }

    #[test]
    fn inference_agrees_on_types_and_widens() {
        let records = vec![
            json!({"id": 1, "price": 2, "at": "2024-01-01T00:00:00Z", "tags": ["a"], "note": null}),
            json!({"id": 2, "price": 2.5, "at": "2024-01-02T00:00:00+02:00", "day": "2024-01-02", "note": 5}),
            json!({"id": 3, "price": 3, "day": "2024-01-03", "note": "x"}),
        ];
        let cols = infer_columns(&records);
        // Within a record the order is the JSON map's (insertion order or alphabetical,
        // depending on serde_json's features); a field first seen later comes after.
        assert_eq!(cols.last().unwrap().name, "day");
        let mut got: Vec<(&str, ColumnType)> =
            cols.iter().map(|c| (c.name.as_str(), c.ty)).collect();
        got.sort_by_key(|(n, _)| n.to_string());
        assert_eq!(
            got,
            vec![
                ("at", ColumnType::TimestampTz),
                ("day", ColumnType::Date),
                ("id", ColumnType::Int64),
                ("note", ColumnType::Text),
                ("price", ColumnType::Float64),
                ("tags", ColumnType::Json),
            ]
        );
    }

    #[test]
    fn declared_schemas_parse_with_sql_spellings() {
        let cols =
            parse_schema("id bigint, amount numeric(12, 2), at timestamptz, doc jsonb").unwrap();
        assert_eq!(
            cols[1].ty,
            ColumnType::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(cols[3].ty, ColumnType::Json);
        for ty in ColumnType::ALL {
            let c = parse_schema(&format!("x {}", ty.name())).unwrap();
            assert_eq!(c[0].ty, ty, "{}", ty.name());
        }
        for bad in [
            "",
            "id",
            "id sometype",
            "id int, id text",
            "d decimal(50,2)",
        ] {
            assert!(parse_schema(bad).is_err(), "{bad}");
        }
    }
}
