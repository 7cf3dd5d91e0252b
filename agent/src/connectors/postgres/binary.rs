//! Postgres's binary wire format for values, used both ways: decoding result columns
//! straight into Arrow builders, and encoding Arrow columns as `COPY … (FORMAT binary)`.

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    Time64MicrosecondArray, TimestampMicrosecondArray,
};

use crate::connectors::types::{Column, ColumnType};
use crate::connectors::values::{BatchBuilder, ColumnBuilder, Value};
use crate::connectors::ConnectorError;

/// Days and microseconds between 1970-01-01 (Arrow) and 2000-01-01 (Postgres).
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;

fn bad(col: &Column, why: &str) -> ConnectorError {
    ConnectorError::fatal(format!("column `{}` ({}): {why}", col.name, col.ty.name()))
}

fn be<const N: usize>(col: &Column, b: &[u8]) -> Result<[u8; N], ConnectorError> {
    b.try_into().map_err(|_| {
        bad(
            col,
            &format!("expected {N} bytes from Postgres, got {}", b.len()),
        )
    })
}

/// Appends one binary value (None = NULL) of `col` to its builder. `text` says the value
/// arrived as text (columns Idra reads through a `::text` cast).
pub fn decode_into(
    b: &mut ColumnBuilder,
    col: &Column,
    raw: Option<&[u8]>,
    text: bool,
) -> Result<(), ConnectorError> {
    let Some(raw) = raw else {
        b.append_null();
        return Ok(());
    };
    if text {
        let s = std::str::from_utf8(raw).map_err(|_| bad(col, "value is not UTF-8"))?;
        return match b {
            ColumnBuilder::Text(t) => {
                t.append_value(s);
                Ok(())
            }
            _ => Err(bad(col, "text-cast column must map to text")),
        };
    }
    match b {
        ColumnBuilder::Int16(x) => x.append_value(i16::from_be_bytes(be(col, raw)?)),
        ColumnBuilder::Int32(x) => x.append_value(i32::from_be_bytes(be(col, raw)?)),
        ColumnBuilder::Int64(x) => x.append_value(i64::from_be_bytes(be(col, raw)?)),
        ColumnBuilder::Float32(x) => x.append_value(f32::from_be_bytes(be(col, raw)?)),
        ColumnBuilder::Float64(x) => x.append_value(f64::from_be_bytes(be(col, raw)?)),
        ColumnBuilder::Bool(x) => x.append_value(raw.first().copied().unwrap_or(0) != 0),
        ColumnBuilder::Text(x) => {
            // jsonb's binary form is a version byte (1) followed by the text.
            let body = if col.ty == ColumnType::Json && raw.first() == Some(&1) && col_is_jsonb(raw)
            {
                &raw[1..]
            } else {
                raw
            };
            x.append_value(std::str::from_utf8(body).map_err(|_| bad(col, "value is not UTF-8"))?)
        }
        ColumnBuilder::Bytes(x) => x.append_value(raw),
        ColumnBuilder::Date(x) => {
            x.append_value(i32::from_be_bytes(be(col, raw)?).saturating_add(PG_EPOCH_DAYS))
        }
        ColumnBuilder::Time(x) => x.append_value(i64::from_be_bytes(be(col, raw)?)),
        ColumnBuilder::Timestamp(x) | ColumnBuilder::TimestampTz(x) => {
            x.append_value(i64::from_be_bytes(be(col, raw)?).saturating_add(PG_EPOCH_MICROS))
        }
        ColumnBuilder::Decimal(x) => {
            let ColumnType::Decimal { scale, .. } = col.ty else {
                unreachable!()
            };
            x.append_value(decode_numeric(raw, scale).ok_or_else(|| {
                bad(
                    col,
                    "numeric value does not fit (NaN, infinity, or more than 38 digits)",
                )
            })?)
        }
        ColumnBuilder::Uuid(x) => x.append_value(raw).map_err(|e| bad(col, &e.to_string()))?,
    }
    Ok(())
}

// A JSON text never starts with byte 0x01, so a leading 1 is jsonb's version byte.
fn col_is_jsonb(raw: &[u8]) -> bool {
    raw.first() == Some(&1)
}

/// Decodes one binary value into a [`Value`] (for single cells: positions, commit records).
pub fn decode_value(col: &Column, raw: Option<&[u8]>) -> Result<Value, ConnectorError> {
    let mut b = crate::connectors::values::BatchBuilder::new(std::slice::from_ref(col), 1);
    decode_into(b.builder(0), col, raw, false)?;
    b.end_row();
    let batch = b.finish()?;
    Ok(crate::connectors::values::value_at(
        batch.column(0),
        col.ty,
        0,
    ))
}

/// Postgres numeric → unscaled i128 at `scale`.
pub fn decode_numeric(raw: &[u8], scale: i8) -> Option<i128> {
    if raw.len() < 8 {
        return None;
    }
    let ndigits = u16::from_be_bytes([raw[0], raw[1]]) as usize;
    let weight = i16::from_be_bytes([raw[2], raw[3]]) as i32;
    let sign = u16::from_be_bytes([raw[4], raw[5]]);
    if sign == NUMERIC_NAN || sign > NUMERIC_NEG {
        return None;
    }
    if raw.len() < 8 + ndigits * 2 {
        return None;
    }
    let mut acc: i128 = 0;
    for i in 0..ndigits {
        let d = u16::from_be_bytes([raw[8 + i * 2], raw[9 + i * 2]]) as i128;
        // Digit i is worth 10000^(weight - i); at our scale that is 10^(4(weight-i) + scale).
        let exp = 4 * (weight - i as i32) + scale as i32;
        if exp >= 0 {
            acc = acc.checked_add(d.checked_mul(10i128.checked_pow(exp as u32)?)?)?;
        } else if exp > -4 {
            acc = acc.checked_add(d / 10i128.pow((-exp) as u32))?;
        }
    }
    Some(if sign == NUMERIC_NEG { -acc } else { acc })
}

/// Unscaled i128 at `scale` → Postgres numeric: base-10000 digits, most significant first,
/// aligned so the decimal point falls between two of them. Computed by division (no
/// string formatting: this runs for every numeric value a copy writes).
pub fn encode_numeric(v: i128, scale: i8, out: &mut Vec<u8>) {
    let scale = scale.max(0) as u32;
    // Scaling by 10^pad makes the fractional digits fill whole groups; done on the first
    // group alone, so a 38-digit value cannot overflow.
    let pad = (4 - scale % 4) % 4;
    let rest = v.unsigned_abs();
    let first_base = 10u128.pow(4 - pad);
    // At most 11 groups of 4 digits for 39 digits; on the stack, least significant first.
    let mut groups = [0u16; 12];
    groups[0] = ((rest % first_base) * 10u128.pow(pad)) as u16;
    let mut len = 1;
    let mut rest = rest / first_base;
    // Most values fit 64 bits, whose division is far cheaper than 128-bit division.
    while rest > u64::MAX as u128 {
        groups[len] = (rest % 10_000) as u16;
        rest /= 10_000;
        len += 1;
    }
    let mut small = rest as u64;
    while small > 0 {
        groups[len] = (small % 10_000) as u16;
        small /= 10_000;
        len += 1;
    }
    // The fraction is the first (scale + pad) / 4 groups.
    let frac_groups = ((scale + pad) / 4) as i32;
    let trailing_zeros = groups[..len].iter().take_while(|g| **g == 0).count();
    let digits = &groups[trailing_zeros..len];
    let weight = if digits.is_empty() {
        0
    } else {
        len as i32 - frac_groups - 1
    };
    let sign = if v < 0 && !digits.is_empty() {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    out.extend_from_slice(&(digits.len() as u16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as u16).to_be_bytes());
    for g in digits.iter().rev() {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
pub const COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// Appends the rows of `batch` as binary COPY tuples (no header or trailer).
pub fn encode_rows(
    batch: &RecordBatch,
    columns: &[Column],
    rows: std::ops::Range<usize>,
    out: &mut Vec<u8>,
) -> Result<(), ConnectorError> {
    // Each column is downcast once here, not once per value.
    let encoders: Vec<(Encoder, Option<&_>)> = columns
        .iter()
        .zip(batch.columns())
        .map(|(col, array)| (Encoder::new(col, array), array.nulls()))
        .collect();
    let ncols = columns.len() as i16;
    for row in rows {
        out.extend_from_slice(&ncols.to_be_bytes());
        for (encoder, nulls) in &encoders {
            if nulls.is_some_and(|n| n.is_null(row)) {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            // The value goes straight after a length placeholder, filled in once known.
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            encoder.encode(row, out);
            let len = (out.len() - at - 4) as i32;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

/// One column of a batch as its concrete Arrow array, ready to encode values from.
enum Encoder<'a> {
    Int16(&'a Int16Array),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Float32(&'a Float32Array),
    Float64(&'a Float64Array),
    Bool(&'a BooleanArray),
    /// Destination json columns are jsonb: version byte, then the text.
    Json(&'a StringArray),
    Text(&'a StringArray),
    Bytes(&'a BinaryArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray),
    Decimal(&'a Decimal128Array, i8),
    Uuid(&'a FixedSizeBinaryArray),
}

impl<'a> Encoder<'a> {
    fn new(col: &Column, a: &'a ArrayRef) -> Self {
        match col.ty {
            ColumnType::Int16 => Self::Int16(a.as_primitive()),
            ColumnType::Int32 => Self::Int32(a.as_primitive()),
            ColumnType::Int64 => Self::Int64(a.as_primitive()),
            ColumnType::Float32 => Self::Float32(a.as_primitive()),
            ColumnType::Float64 => Self::Float64(a.as_primitive()),
            ColumnType::Bool => Self::Bool(a.as_boolean()),
            ColumnType::Json => Self::Json(a.as_string()),
            ColumnType::Text => Self::Text(a.as_string()),
            ColumnType::Bytes => Self::Bytes(a.as_binary()),
            ColumnType::Date => Self::Date(a.as_primitive()),
            ColumnType::Time => Self::Time(a.as_primitive()),
            ColumnType::Timestamp | ColumnType::TimestampTz => Self::Timestamp(a.as_primitive()),
            ColumnType::Decimal { scale, .. } => Self::Decimal(a.as_primitive(), scale),
            ColumnType::Uuid => Self::Uuid(a.as_fixed_size_binary()),
        }
    }

    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        match self {
            Self::Int16(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
            Self::Int32(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
            Self::Int64(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
            Self::Float32(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
            Self::Float64(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
            Self::Bool(a) => out.push(a.value(row) as u8),
            Self::Json(a) => {
                out.push(1);
                out.extend_from_slice(a.value(row).as_bytes())
            }
            Self::Text(a) => out.extend_from_slice(a.value(row).as_bytes()),
            Self::Bytes(a) => out.extend_from_slice(a.value(row)),
            Self::Date(a) => out.extend_from_slice(&(a.value(row) - PG_EPOCH_DAYS).to_be_bytes()),
            Self::Time(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
            Self::Timestamp(a) => {
                out.extend_from_slice(&(a.value(row) - PG_EPOCH_MICROS).to_be_bytes())
            }
            Self::Decimal(a, scale) => encode_numeric(a.value(row), *scale, out),
            Self::Uuid(a) => out.extend_from_slice(a.value(row)),
        }
    }
}

/// Reads the output of `COPY (…) TO STDOUT (FORMAT binary)` into a batch, from chunks
/// of any size: a tuple split across chunks waits for the rest. Reading rows this way
/// rather than as query results costs the agent about a third less CPU per row.
pub struct CopyReader<'a> {
    columns: &'a [Column],
    /// The start of a tuple that the last chunk cut off.
    pending: Vec<u8>,
    header_read: bool,
    trailer_read: bool,
}

/// The signature, flags and header-extension length that open binary COPY data.
const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl<'a> CopyReader<'a> {
    pub fn new(columns: &'a [Column]) -> Self {
        Self {
            columns,
            pending: Vec::new(),
            header_read: false,
            trailer_read: false,
        }
    }

    /// Appends every complete tuple of `chunk` (after what an earlier chunk left) to `b`.
    pub fn feed(&mut self, chunk: &[u8], b: &mut BatchBuilder) -> Result<(), ConnectorError> {
        if self.pending.is_empty() {
            let used = self.parse(chunk, b)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut data = std::mem::take(&mut self.pending);
            data.extend_from_slice(chunk);
            let used = self.parse(&data, b)?;
            data.drain(..used);
            self.pending = data;
        }
        Ok(())
    }

    /// Checks that the data ended where COPY ends it, with nothing cut off.
    pub fn finish(&self) -> Result<(), ConnectorError> {
        if self.trailer_read && self.pending.is_empty() {
            Ok(())
        } else {
            Err(ConnectorError::retryable(
                "the rows from Postgres ended early (the connection was cut mid-read); the run will read them again",
            ))
        }
    }

    /// Parses what is complete in `data`; returns how many bytes it used.
    fn parse(&mut self, data: &[u8], b: &mut BatchBuilder) -> Result<usize, ConnectorError> {
        let mut pos = 0;
        if !self.header_read {
            let Some(end) = header_end(data)? else {
                return Ok(0);
            };
            pos = end;
            self.header_read = true;
        }
        while !self.trailer_read && data.len() >= pos + 2 {
            let fields = i16::from_be_bytes([data[pos], data[pos + 1]]);
            if fields == -1 {
                self.trailer_read = true;
                pos += 2;
                break;
            }
            if fields as usize != self.columns.len() {
                return Err(ConnectorError::fatal(format!(
                    "Postgres sent rows of {fields} columns for a read of {}",
                    self.columns.len()
                )));
            }
            let Some(end) = self.tuple_end(data, pos + 2)? else {
                break;
            };
            self.append_tuple(&data[pos + 2..end], b)?;
            pos = end;
        }
        Ok(pos)
    }

    /// Where the tuple whose fields start at `start` ends, if `data` holds all of it.
    fn tuple_end(&self, data: &[u8], start: usize) -> Result<Option<usize>, ConnectorError> {
        let mut p = start;
        for _ in self.columns {
            let Some(len) = data.get(p..p + 4) else {
                return Ok(None);
            };
            let len = i32::from_be_bytes(len.try_into().expect("four bytes"));
            p += 4;
            if len >= 0 {
                p += len as usize;
            } else if len != -1 {
                return Err(ConnectorError::fatal(
                    "Postgres sent a negative value length",
                ));
            }
        }
        Ok((p <= data.len()).then_some(p))
    }

    /// Decodes one complete tuple's fields into the builders.
    fn append_tuple(&self, mut fields: &[u8], b: &mut BatchBuilder) -> Result<(), ConnectorError> {
        for (i, col) in self.columns.iter().enumerate() {
            let len = i32::from_be_bytes(fields[..4].try_into().expect("four bytes"));
            fields = &fields[4..];
            let value = if len < 0 {
                None
            } else {
                let (value, rest) = fields.split_at(len as usize);
                fields = rest;
                Some(value)
            };
            let text = matches!(col.ty, ColumnType::Text | ColumnType::Json);
            decode_into(b.builder(i), col, value, text)?;
        }
        b.end_row();
        Ok(())
    }
}

/// Where the COPY header ends, once `data` holds all of it.
fn header_end(data: &[u8]) -> Result<Option<usize>, ConnectorError> {
    let fixed = COPY_SIGNATURE.len() + 8;
    if data.len() < fixed {
        return Ok(None);
    }
    if !data.starts_with(COPY_SIGNATURE) {
        return Err(ConnectorError::fatal(
            "Postgres's COPY output does not start with the binary signature",
        ));
    }
    let at = COPY_SIGNATURE.len() + 4;
    let extension = u32::from_be_bytes(data[at..at + 4].try_into().expect("four bytes")) as usize;
    let end = fixed + extension;
    Ok((data.len() >= end).then_some(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int64Type;

    fn copy_data(rows: &[[Option<i64>; 2]]) -> Vec<u8> {
        let mut out = COPY_HEADER.to_vec();
        for row in rows {
            out.extend_from_slice(&2i16.to_be_bytes());
            for v in row {
                match v {
                    Some(v) => {
                        out.extend_from_slice(&8i32.to_be_bytes());
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
        }
        out.extend_from_slice(COPY_TRAILER);
        out
    }

    fn two_columns() -> Vec<Column> {
        vec![
            Column::new("id", ColumnType::Int64, false),
            Column::new("n", ColumnType::Int64, true),
        ]
    }

    #[test]
    fn copy_reader_reassembles_tuples_cut_at_every_byte() {
        let rows = [
            [Some(1), Some(-7)],
            [Some(2), None],
            [Some(3), Some(i64::MAX)],
        ];
        let data = copy_data(&rows);
        let columns = two_columns();
        for cut in 1..data.len() {
            let mut b = BatchBuilder::new(&columns, 4);
            let mut reader = CopyReader::new(&columns);
            reader.feed(&data[..cut], &mut b).unwrap();
            reader.feed(&data[cut..], &mut b).unwrap();
            reader.finish().unwrap();
            let batch = b.finish().unwrap();
            assert_eq!(batch.num_rows(), 3, "cut at {cut}");
            let n = batch.column(1).as_primitive::<Int64Type>();
            assert_eq!((n.value(0), n.is_null(1), n.value(2)), (-7, true, i64::MAX));
        }
    }

    #[test]
    fn copy_reader_refuses_data_cut_before_the_trailer() {
        let data = copy_data(&[[Some(1), Some(2)]]);
        let columns = two_columns();
        let mut b = BatchBuilder::new(&columns, 4);
        let mut reader = CopyReader::new(&columns);
        reader.feed(&data[..data.len() - 3], &mut b).unwrap();
        let e = reader.finish().unwrap_err();
        assert!(e.is_retryable(), "{}", e.message);
    }

    #[test]
    fn copy_reader_refuses_rows_of_another_width() {
        let data = copy_data(&[[Some(1), Some(2)]]);
        let columns = vec![Column::new("id", ColumnType::Int64, false)];
        let mut b = BatchBuilder::new(&columns, 4);
        let e = CopyReader::new(&columns).feed(&data, &mut b).unwrap_err();
        assert!(e.message.contains("2 columns"), "{}", e.message);
    }

    #[test]
    fn numeric_round_trips_through_the_wire_format() {
        for (v, scale) in [
            (12345i128, 2i8),
            (-5, 2),
            (0, 2),
            (100_000_000, 0),
            (1, 10),
            (-987654321987654321, 4),
            (10000, 0),
            (5, 5),
            (50, 2),
            (1_000_000, 2),
            (99_999_999_999_999_999_999_999_999_999_999_999_999, 0),
            (-99_999_999_999_999_999_999_999_999_999_999_999_999, 38),
            (10i128.pow(37), 3),
        ] {
            let mut buf = Vec::new();
            encode_numeric(v, scale, &mut buf);
            assert_eq!(
                decode_numeric(&buf, scale),
                Some(v),
                "{v} scale {scale}: {buf:?}"
            );
        }
    }

    #[test]
    fn numeric_matches_postgres_layout() {
        // 123.45 = digits [123, 4500], weight 0, dscale 2 (what Postgres sends).
        let mut buf = Vec::new();
        encode_numeric(12345, 2, &mut buf);
        assert_eq!(buf, vec![0, 2, 0, 0, 0, 0, 0, 2, 0, 123, 17, 148]);
        // 0.00005 = [5000] at weight -2; 100.00 = [100] at weight 0 (no trailing zero groups).
        let mut buf = Vec::new();
        encode_numeric(5, 5, &mut buf);
        assert_eq!(buf, vec![0, 1, 255, 254, 0, 0, 0, 5, 19, 136]);
        let mut buf = Vec::new();
        encode_numeric(10_000, 2, &mut buf);
        assert_eq!(buf, vec![0, 1, 0, 0, 0, 0, 0, 2, 0, 100]);
        let mut buf = Vec::new();
        encode_numeric(12345, 2, &mut buf);
        // Decoding a value with more fractional digits than the column scale truncates.
        assert_eq!(decode_numeric(&buf, 1), Some(1234));
    }

    #[test]
    fn copy_header_is_the_documented_signature() {
        assert_eq!(&COPY_HEADER[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(COPY_HEADER.len(), 19);
    }
}
