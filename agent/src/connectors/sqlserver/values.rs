//! Values ↔ TDS: what a cell of each column type reads as, and how a value is bound.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use tiberius::numeric::Numeric;
use tiberius::{ColumnData, FromSql, Query};

use crate::connectors::types::{Column, ColumnType};
use crate::connectors::values::{rescale, Value};
use crate::connectors::ConnectorError;

fn mismatch(col: &Column, cd: &ColumnData<'static>) -> ConnectorError {
    ConnectorError::fatal(format!(
        "column `{}` ({}) cannot hold the SQL Server value {cd:?}",
        col.name,
        col.ty.name()
    ))
}

fn from<'a, T: FromSql<'a>>(
    cd: &'a ColumnData<'static>,
    col: &Column,
) -> Result<Option<T>, ConnectorError> {
    T::from_sql(cd).map_err(|_| mismatch(col, cd))
}

/// One cell as a value of `col`'s type.
pub fn value_of(cd: &ColumnData<'static>, col: &Column) -> Result<Value, ConnectorError> {
    let v = match (col.ty, cd) {
        (_, ColumnData::U8(Some(x))) => Some(Value::Int(*x as i64)),
        (ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64, _) => from::<i64>(cd, col)
            .or_else(|_| from::<i32>(cd, col).map(|o| o.map(i64::from)))
            .or_else(|_| from::<i16>(cd, col).map(|o| o.map(i64::from)))?
            .map(Value::Int),
        (ColumnType::Float32, _) => from::<f32>(cd, col)?.map(|f| Value::Float(f as f64)),
        (ColumnType::Float64, _) => from::<f64>(cd, col)?.map(Value::Float),
        (ColumnType::Bool, _) => from::<bool>(cd, col)?.map(Value::Bool),
        (ColumnType::Text | ColumnType::Json, _) => {
            from::<&str>(cd, col)?.map(|s| Value::Text(s.to_string()))
        }
        (ColumnType::Bytes, _) => from::<&[u8]>(cd, col)?.map(|b| Value::Bytes(b.to_vec())),
        (ColumnType::Uuid, _) => from::<uuid::Uuid>(cd, col)?.map(|u| Value::Uuid(*u.as_bytes())),
        (ColumnType::Date, _) => from::<NaiveDate>(cd, col)?.map(Value::Date),
        (ColumnType::Time, _) => from::<NaiveTime>(cd, col)?.map(Value::Time),
        (ColumnType::Timestamp, _) => from::<NaiveDateTime>(cd, col)?.map(Value::Timestamp),
        (ColumnType::TimestampTz, _) => from::<DateTime<Utc>>(cd, col)?.map(Value::TimestampTz),
        (ColumnType::Decimal { scale, .. }, _) => match from::<Numeric>(cd, col)? {
            None => None,
            Some(n) => Some(Value::Decimal(
                rescale(n.value(), n.scale() as i8, scale).ok_or_else(|| mismatch(col, cd))?,
            )),
        },
    };
    Ok(v.unwrap_or(Value::Null))
}

/// Binds `v` as the next parameter, typed by the column even when NULL.
pub fn bind(q: &mut Query<'_>, v: Value, ty: ColumnType) -> Result<(), ConnectorError> {
    match (v, ty) {
        (Value::Null, ColumnType::Int16) => q.bind(None::<i16>),
        (Value::Null, ColumnType::Int32) => q.bind(None::<i32>),
        (Value::Null, ColumnType::Int64) => q.bind(None::<i64>),
        (Value::Null, ColumnType::Float32) => q.bind(None::<f32>),
        (Value::Null, ColumnType::Float64) => q.bind(None::<f64>),
        (Value::Null, ColumnType::Bool) => q.bind(None::<bool>),
        (Value::Null, ColumnType::Bytes) => q.bind(None::<Vec<u8>>),
        (Value::Null, ColumnType::Uuid) => q.bind(None::<uuid::Uuid>),
        (Value::Null, ColumnType::Date) => q.bind(None::<NaiveDate>),
        (Value::Null, ColumnType::Time) => q.bind(None::<NaiveTime>),
        (Value::Null, ColumnType::Timestamp) => q.bind(None::<NaiveDateTime>),
        (Value::Null, ColumnType::TimestampTz) => q.bind(None::<DateTime<Utc>>),
        (Value::Null, ColumnType::Decimal { .. }) => q.bind(None::<Numeric>),
        (Value::Null, _) => q.bind(None::<String>),
        (Value::Int(i), ColumnType::Int16) => q.bind(i as i16),
        (Value::Int(i), ColumnType::Int32) => q.bind(i as i32),
        (Value::Int(i), _) => q.bind(i),
        (Value::Float(f), ColumnType::Float32) => q.bind(f as f32),
        (Value::Float(f), _) => q.bind(f),
        (Value::Bool(b), _) => q.bind(b),
        (Value::Text(s), _) => q.bind(s),
        (Value::Bytes(b), _) => q.bind(b),
        (Value::Uuid(u), _) => q.bind(uuid::Uuid::from_bytes(u)),
        (Value::Date(d), _) => q.bind(d),
        (Value::Time(t), _) => q.bind(t),
        (Value::Timestamp(t), _) => q.bind(t),
        (Value::TimestampTz(t), _) => q.bind(t),
        (Value::Decimal(d), ColumnType::Decimal { scale, .. }) => {
            q.bind(Numeric::new_with_scale(d, scale.max(0) as u8))
        }
        (Value::Decimal(d), _) => q.bind(Numeric::new_with_scale(d, 0)),
    }
    Ok(())
}
