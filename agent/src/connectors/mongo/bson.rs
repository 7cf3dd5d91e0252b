//! BSON values ↔ Idra's values, driven by the column type (declared or inferred).

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Decimal128, Document};

use crate::connectors::types::{Column, ColumnType, DEFAULT_DECIMAL};
use crate::connectors::values::{format_decimal, parse_decimal, parse_uuid, Value};
use crate::connectors::ConnectorError;

/// A BSON date (milliseconds since the epoch) as a chrono instant.
pub fn chrono_of(d: &mongodb::bson::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(d.timestamp_millis()).unwrap_or_default()
}

/// An instant as a BSON date; precision finer than a millisecond is cut.
pub fn bson_date(t: DateTime<Utc>) -> mongodb::bson::DateTime {
    mongodb::bson::DateTime::from_millis(t.timestamp_millis())
}

/// The column type a BSON value suggests (None for null).
pub fn type_of(b: &Bson) -> Option<ColumnType> {
    Some(match b {
        Bson::Null | Bson::Undefined => return None,
        Bson::Int32(_) => ColumnType::Int32,
        Bson::Int64(_) | Bson::Timestamp(_) => ColumnType::Int64,
        Bson::Double(_) => ColumnType::Float64,
        Bson::Boolean(_) => ColumnType::Bool,
        Bson::DateTime(_) => ColumnType::TimestampTz,
        Bson::Decimal128(_) => DEFAULT_DECIMAL,
        Bson::Binary(b) if b.subtype == BinarySubtype::Uuid && b.bytes.len() == 16 => {
            ColumnType::Uuid
        }
        Bson::Binary(_) => ColumnType::Bytes,
        Bson::Document(_) | Bson::Array(_) => ColumnType::Json,
        _ => ColumnType::Text,
    })
}

/// Columns for sampled documents: top-level fields in order of first appearance, typed by
/// what their values agree on (Int32 and Int64 widen to Int64, numbers to Float64, other
/// disagreements to text).
pub fn infer_columns(docs: &[Document]) -> Vec<Column> {
    let mut cols: Vec<(String, Option<ColumnType>)> = Vec::new();
    for doc in docs {
        for (name, value) in doc {
            let i = match cols.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    cols.push((name.clone(), None));
                    cols.len() - 1
                }
            };
            let Some(t) = type_of(value) else { continue };
            let slot = &mut cols[i].1;
            *slot = Some(match *slot {
                None => t,
                Some(old) if old == t => t,
                Some(a) if a.is_integer() && t.is_integer() => ColumnType::Int64,
                Some(a)
                    if (a.is_integer() || a == ColumnType::Float64)
                        && (t.is_integer() || t == ColumnType::Float64) =>
                {
                    ColumnType::Float64
                }
                Some(_) => ColumnType::Text,
            });
        }
    }
    cols.into_iter()
        .map(|(n, t)| Column::new(n, t.unwrap_or(ColumnType::Text), true))
        .collect()
}

fn extjson(b: &Bson) -> String {
    b.clone().into_relaxed_extjson().to_string()
}

fn bad(col: &Column, b: &Bson) -> ConnectorError {
    ConnectorError::fatal(format!(
        "field `{}` holds {} ({:?}), which is not a {}; declare the field with another type in the data source's `schema` option",
        col.name,
        extjson(b),
        b.element_type(),
        col.ty.name()
    ))
}

/// One field as a value of `col`'s type.
pub fn to_value(b: &Bson, col: &Column) -> Result<Value, ConnectorError> {
    if matches!(b, Bson::Null | Bson::Undefined) {
        return Ok(Value::Null);
    }
    let text = match b {
        Bson::String(s) => Some(s.as_str()),
        _ => None,
    };
    let v = match col.ty {
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => match b {
            Bson::Int32(i) => Value::Int(*i as i64),
            Bson::Int64(i) => Value::Int(*i),
            Bson::Double(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Int(*f as i64),
            Bson::Timestamp(t) => Value::Int(((t.time as i64) << 32) | t.increment as i64),
            _ => Value::Int(
                text.and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(col, b))?,
            ),
        },
        ColumnType::Float32 | ColumnType::Float64 => match b {
            Bson::Double(f) => Value::Float(*f),
            Bson::Int32(i) => Value::Float(*i as f64),
            Bson::Int64(i) => Value::Float(*i as f64),
            Bson::Decimal128(d) => Value::Float(d.to_string().parse().map_err(|_| bad(col, b))?),
            _ => Value::Float(
                text.and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(col, b))?,
            ),
        },
        ColumnType::Bool => match b {
            Bson::Boolean(x) => Value::Bool(*x),
            _ => return Err(bad(col, b)),
        },
        ColumnType::Text => match b {
            Bson::String(s) => Value::Text(s.clone()),
            Bson::ObjectId(o) => Value::Text(o.to_hex()),
            other => Value::Text(extjson(other)),
        },
        ColumnType::Json => Value::Text(extjson(b)),
        ColumnType::Bytes => match b {
            Bson::Binary(bin) => Value::Bytes(bin.bytes.clone()),
            _ => return Err(bad(col, b)),
        },
        ColumnType::Uuid => match b {
            Bson::Binary(bin) if bin.bytes.len() == 16 => {
                let mut u = [0u8; 16];
                u.copy_from_slice(&bin.bytes);
                Value::Uuid(u)
            }
            _ => Value::Uuid(text.and_then(parse_uuid).ok_or_else(|| bad(col, b))?),
        },
        ColumnType::Date => match b {
            Bson::DateTime(d) => Value::Date(chrono_of(d).date_naive()),
            _ => Value::Date(
                text.and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                    .ok_or_else(|| bad(col, b))?,
            ),
        },
        ColumnType::Time => Value::Time(
            text.and_then(|s| NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok())
                .ok_or_else(|| bad(col, b))?,
        ),
        ColumnType::Timestamp => match b {
            Bson::DateTime(d) => Value::Timestamp(chrono_of(d).naive_utc()),
            _ => return Err(bad(col, b)),
        },
        ColumnType::TimestampTz => match b {
            Bson::DateTime(d) => Value::TimestampTz(chrono_of(d)),
            _ => Value::TimestampTz(
                text.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or_else(|| bad(col, b))?,
            ),
        },
        ColumnType::Decimal { scale, .. } => {
            let s = match b {
                Bson::Decimal128(d) => d.to_string(),
                Bson::Int32(i) => i.to_string(),
                Bson::Int64(i) => i.to_string(),
                Bson::Double(f) => f.to_string(),
                Bson::String(s) => s.clone(),
                _ => return Err(bad(col, b)),
            };
            Value::Decimal(parse_decimal(&s, scale).ok_or_else(|| bad(col, b))?)
        }
    };
    Ok(v)
}

/// One value as BSON. Dates and timestamps become BSON dates (milliseconds: finer
/// precision is cut), times strings, decimals Decimal128 with every digit, UUIDs binary
/// subtype 4, JSON columns documents or arrays.
pub fn to_bson(v: Value, ty: ColumnType) -> Result<Bson, ConnectorError> {
    Ok(match v {
        Value::Null => Bson::Null,
        Value::Int(i) => match ty {
            ColumnType::Int16 | ColumnType::Int32 => Bson::Int32(i as i32),
            _ => Bson::Int64(i),
        },
        Value::Float(f) => Bson::Double(f),
        Value::Bool(b) => Bson::Boolean(b),
        Value::Text(s) if ty == ColumnType::Json => {
            match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(j) => Bson::try_from(j).unwrap_or(Bson::String(s)),
                Err(_) => Bson::String(s),
            }
        }
        Value::Text(s) => Bson::String(s),
        Value::Bytes(b) => Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: b,
        }),
        Value::Uuid(u) => Bson::Binary(Binary {
            subtype: BinarySubtype::Uuid,
            bytes: u.to_vec(),
        }),
        Value::Date(d) => Bson::DateTime(bson_date(
            d.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
        )),
        Value::Time(t) => Bson::String(t.format("%H:%M:%S%.6f").to_string()),
        Value::Timestamp(t) => Bson::DateTime(bson_date(t.and_utc())),
        Value::TimestampTz(t) => Bson::DateTime(bson_date(t)),
        Value::Decimal(d) => {
            let ColumnType::Decimal { scale, .. } = ty else {
                return Ok(Bson::String(d.to_string()));
            };
            let s = format_decimal(d, scale);
            Bson::Decimal128(s.parse::<Decimal128>().map_err(|e| {
                ConnectorError::fatal(format!("decimal {s} does not fit BSON Decimal128: {e}"))
            })?)
        }
    })
}
