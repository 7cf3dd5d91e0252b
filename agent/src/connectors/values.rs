//! Row-at-a-time access to Arrow batches, for connectors that bind values one by one
//! (MySQL, SQLite). Postgres reads and writes columns in its binary format instead.

use std::sync::Arc;

use arrow_array::builder::*;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::types::{schema_of, Column, ColumnType};
use super::ConnectorError;

/// One value of any column type. Decimals are unscaled integers at the column's scale.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    Timestamp(NaiveDateTime),
    TimestampTz(DateTime<Utc>),
    Decimal(i128),
    Uuid([u8; 16]),
}

pub fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

pub fn micros_of_time(t: NaiveTime) -> i64 {
    (t - NaiveTime::MIN).num_microseconds().unwrap_or(0)
}

pub fn time_of_micros(us: i64) -> NaiveTime {
    NaiveTime::MIN + chrono::Duration::microseconds(us)
}

pub fn naive_of_micros(us: i64) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|d| d.naive_utc())
        .unwrap_or_default()
}

/// Builds a batch column by column, converting values to each column's type.
pub struct BatchBuilder {
    columns: Vec<Column>,
    builders: Vec<ColumnBuilder>,
    rows: usize,
}

pub enum ColumnBuilder {
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    TimestampTz(TimestampMicrosecondBuilder),
    Decimal(Decimal128Builder),
    Uuid(FixedSizeBinaryBuilder),
}

impl ColumnBuilder {
    fn new(ty: ColumnType, capacity: usize) -> Self {
        match ty {
            ColumnType::Int16 => Self::Int16(Int16Builder::with_capacity(capacity)),
            ColumnType::Int32 => Self::Int32(Int32Builder::with_capacity(capacity)),
            ColumnType::Int64 => Self::Int64(Int64Builder::with_capacity(capacity)),
            ColumnType::Float32 => Self::Float32(Float32Builder::with_capacity(capacity)),
            ColumnType::Float64 => Self::Float64(Float64Builder::with_capacity(capacity)),
            ColumnType::Bool => Self::Bool(BooleanBuilder::with_capacity(capacity)),
            ColumnType::Text | ColumnType::Json => {
                Self::Text(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            ColumnType::Bytes => Self::Bytes(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            ColumnType::Date => Self::Date(Date32Builder::with_capacity(capacity)),
            ColumnType::Time => Self::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            ColumnType::Timestamp => {
                Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            ColumnType::TimestampTz => Self::TimestampTz(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            ColumnType::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(precision, scale)
                    .expect("precision and scale were validated when the column was mapped"),
            ),
            ColumnType::Uuid => Self::Uuid(FixedSizeBinaryBuilder::with_capacity(capacity, 16)),
        }
    }

    pub fn append_null(&mut self) {
        match self {
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
            Self::Text(b) => b.append_null(),
            Self::Bytes(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b) | Self::TimestampTz(b) => b.append_null(),
            Self::Decimal(b) => b.append_null(),
            Self::Uuid(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Bytes(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b) | Self::TimestampTz(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Uuid(b) => Arc::new(b.finish()),
        }
    }
}

fn mismatch(col: &Column, v: &Value) -> ConnectorError {
    ConnectorError::fatal(format!(
        "column `{}` ({}) cannot hold the value {v:?}",
        col.name,
        col.ty.name()
    ))
}

impl BatchBuilder {
    pub fn new(columns: &[Column], capacity: usize) -> Self {
        Self {
            columns: columns.to_vec(),
            builders: columns
                .iter()
                .map(|c| ColumnBuilder::new(c.ty, capacity))
                .collect(),
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Direct access for connectors that decode straight into Arrow (Postgres).
    pub fn builder(&mut self, col: usize) -> &mut ColumnBuilder {
        &mut self.builders[col]
    }

    /// Marks the end of a row filled through [`Self::builder`] or [`Self::push`].
    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    pub fn push(&mut self, col: usize, v: Value) -> Result<(), ConnectorError> {
        let column = &self.columns[col];
        let b = &mut self.builders[col];
        if v == Value::Null {
            b.append_null();
            return Ok(());
        }
        let out_of_range = || {
            ConnectorError::fatal(format!(
                "value {v:?} is out of range for column `{}` ({})",
                column.name,
                column.ty.name()
            ))
        };
        match (b, &v) {
            (ColumnBuilder::Int16(b), Value::Int(i)) => {
                b.append_value(i16::try_from(*i).map_err(|_| out_of_range())?)
            }
            (ColumnBuilder::Int32(b), Value::Int(i)) => {
                b.append_value(i32::try_from(*i).map_err(|_| out_of_range())?)
            }
            (ColumnBuilder::Int64(b), Value::Int(i)) => b.append_value(*i),
            (ColumnBuilder::Int16(b), Value::Bool(x)) => b.append_value(*x as i16),
            (ColumnBuilder::Float32(b), Value::Float(f)) => b.append_value(*f as f32),
            (ColumnBuilder::Float32(b), Value::Int(i)) => b.append_value(*i as f32),
            (ColumnBuilder::Float64(b), Value::Float(f)) => b.append_value(*f),
            (ColumnBuilder::Float64(b), Value::Int(i)) => b.append_value(*i as f64),
            (ColumnBuilder::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (ColumnBuilder::Bool(b), Value::Int(i)) => b.append_value(*i != 0),
            (ColumnBuilder::Text(b), Value::Text(s)) => b.append_value(s),
            (ColumnBuilder::Text(b), Value::Int(i)) => b.append_value(i.to_string()),
            (ColumnBuilder::Text(b), Value::Float(f)) => b.append_value(f.to_string()),
            (ColumnBuilder::Text(b), Value::Bytes(x)) => b.append_value(String::from_utf8_lossy(x)),
            (ColumnBuilder::Bytes(b), Value::Bytes(x)) => b.append_value(x),
            (ColumnBuilder::Bytes(b), Value::Text(s)) => b.append_value(s.as_bytes()),
            (ColumnBuilder::Date(b), Value::Date(d)) => {
                b.append_value((*d - epoch()).num_days() as i32)
            }
            (ColumnBuilder::Time(b), Value::Time(t)) => b.append_value(micros_of_time(*t)),
            (ColumnBuilder::Timestamp(b), Value::Timestamp(t)) => {
                b.append_value(t.and_utc().timestamp_micros())
            }
            (ColumnBuilder::TimestampTz(b), Value::TimestampTz(t)) => {
                b.append_value(t.timestamp_micros())
            }
            (ColumnBuilder::TimestampTz(b), Value::Timestamp(t)) => {
                b.append_value(t.and_utc().timestamp_micros())
            }
            (ColumnBuilder::Timestamp(b), Value::TimestampTz(t)) => {
                b.append_value(t.timestamp_micros())
            }
            (ColumnBuilder::Decimal(b), Value::Decimal(d)) => b.append_value(*d),
            (ColumnBuilder::Decimal(b), Value::Int(i)) => {
                let ColumnType::Decimal { scale, .. } = column.ty else {
                    unreachable!()
                };
                b.append_value(rescale(*i as i128, 0, scale).ok_or_else(out_of_range)?)
            }
            (ColumnBuilder::Uuid(b), Value::Uuid(u)) => b
                .append_value(u)
                .map_err(|e| ConnectorError::fatal(e.to_string()))?,
            _ => return Err(mismatch(column, &v)),
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<RecordBatch, ConnectorError> {
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let schema = schema_of(&self.columns);
        if arrays.is_empty() {
            return Ok(RecordBatch::new_empty(schema));
        }
        RecordBatch::try_new(schema, arrays)
            .map_err(|e| ConnectorError::fatal(format!("building a batch: {e}")))
    }
}

/// Moves an unscaled decimal from scale `from` to scale `to` (None on overflow).
pub fn rescale(v: i128, from: i8, to: i8) -> Option<i128> {
    let diff = to as i32 - from as i32;
    if diff >= 0 {
        v.checked_mul(10i128.checked_pow(diff as u32)?)
    } else {
        Some(v / 10i128.checked_pow((-diff) as u32)?)
    }
}

/// Parses a decimal string ("-12.5", "3", "1e3" is refused) into an unscaled i128 at `scale`.
pub fn parse_decimal(s: &str, scale: i8) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let scale = scale.max(0) as usize;
    let mut unscaled: i128 = 0;
    for c in int.chars() {
        unscaled = unscaled
            .checked_mul(10)?
            .checked_add((c as u8 - b'0') as i128)?;
    }
    let frac_digits: Vec<u8> = frac.bytes().collect();
    for i in 0..scale {
        let d = frac_digits.get(i).map_or(0, |b| b - b'0');
        unscaled = unscaled.checked_mul(10)?.checked_add(d as i128)?;
    }
    Some(if neg { -unscaled } else { unscaled })
}

/// Formats an unscaled decimal: (12345, 2) → "123.45".
pub fn format_decimal(v: i128, scale: i8) -> String {
    if scale <= 0 {
        return rescale(v, scale, 0).unwrap_or(v).to_string();
    }
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if neg { "-" } else { "" })
}

pub fn format_uuid(u: &[u8]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// The value of `array` at `row` as its column type says.
pub fn value_at(array: &ArrayRef, ty: ColumnType, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match ty {
        ColumnType::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(row) as i64),
        ColumnType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(row) as i64),
        ColumnType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(row)),
        ColumnType::Float32 => Value::Float(array.as_primitive::<Float32Type>().value(row) as f64),
        ColumnType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(row)),
        ColumnType::Bool => Value::Bool(array.as_boolean().value(row)),
        ColumnType::Text | ColumnType::Json => {
            Value::Text(array.as_string::<i32>().value(row).to_string())
        }
        ColumnType::Bytes => Value::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        ColumnType::Date => Value::Date(
            epoch() + chrono::Duration::days(array.as_primitive::<Date32Type>().value(row) as i64),
        ),
        ColumnType::Time => Value::Time(time_of_micros(
            array.as_primitive::<Time64MicrosecondType>().value(row),
        )),
        ColumnType::Timestamp => Value::Timestamp(naive_of_micros(
            array.as_primitive::<TimestampMicrosecondType>().value(row),
        )),
        ColumnType::TimestampTz => Value::TimestampTz(
            naive_of_micros(array.as_primitive::<TimestampMicrosecondType>().value(row)).and_utc(),
        ),
        ColumnType::Decimal { .. } => {
            Value::Decimal(array.as_primitive::<Decimal128Type>().value(row))
        }
        ColumnType::Uuid => {
            let mut u = [0u8; 16];
            u.copy_from_slice(array.as_fixed_size_binary().value(row));
            Value::Uuid(u)
        }
    }
}

/// One non-null value of each type with awkward edges (beyond f64 integers, escapes,
/// microseconds), for round-trip tests of every connector.
pub fn sample(ty: ColumnType) -> Value {
    match ty {
        ColumnType::Int16 => Value::Int(-12),
        ColumnType::Int32 => Value::Int(70_000),
        ColumnType::Int64 => Value::Int(9_007_199_254_740_993),
        ColumnType::Float32 => Value::Float(1.5),
        ColumnType::Float64 => Value::Float(-2.25e-7),
        ColumnType::Bool => Value::Bool(true),
        ColumnType::Text => Value::Text("naïve \"quoted\"\n".into()),
        ColumnType::Bytes => Value::Bytes(vec![0, 255, 7]),
        ColumnType::Date => Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
        ColumnType::Time => Value::Time(NaiveTime::from_hms_micro_opt(23, 59, 1, 5).unwrap()),
        ColumnType::Timestamp => Value::Timestamp(
            NaiveDate::from_ymd_opt(1999, 12, 31)
                .unwrap()
                .and_hms_micro_opt(1, 2, 3, 456_789)
                .unwrap(),
        ),
        ColumnType::TimestampTz => Value::TimestampTz(
            NaiveDate::from_ymd_opt(2024, 6, 1)
                .unwrap()
                .and_hms_micro_opt(12, 0, 0, 1)
                .unwrap()
                .and_utc(),
        ),
        ColumnType::Decimal { .. } => Value::Decimal(123_456_789_012),
        ColumnType::Json => Value::Text(r#"{"a":[1,2]}"#.into()),
        ColumnType::Uuid => {
            Value::Uuid(parse_uuid("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_and_format() {
        assert_eq!(parse_decimal("123.45", 2), Some(12345));
        assert_eq!(parse_decimal("-0.5", 2), Some(-50));
        assert_eq!(parse_decimal("7", 3), Some(7000));
        assert_eq!(parse_decimal("1.239", 2), Some(123));
        assert_eq!(parse_decimal("abc", 2), None);
        assert_eq!(format_decimal(12345, 2), "123.45");
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(7, 0), "7");
    }

    #[test]
    fn uuids_round_trip() {
        let s = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(format_uuid(&parse_uuid(s).unwrap()), s);
    }

    #[test]
    fn builder_converts_and_checks_ranges() {
        let cols = vec![
            Column::new("a", ColumnType::Int16, true),
            Column::new("t", ColumnType::Text, true),
        ];
        let mut b = BatchBuilder::new(&cols, 2);
        b.push(0, Value::Int(7)).unwrap();
        b.push(1, Value::Text("x".into())).unwrap();
        b.end_row();
        assert!(b.push(0, Value::Int(70_000)).is_err());
        b.push(0, Value::Null).unwrap();
        b.push(1, Value::Null).unwrap();
        b.end_row();
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            value_at(batch.column(0), ColumnType::Int16, 0),
            Value::Int(7)
        );
        assert_eq!(value_at(batch.column(1), ColumnType::Text, 1), Value::Null);
    }
}
