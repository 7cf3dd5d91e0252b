//! Object bodies: a batch as JSON lines, CSV (header row) or Parquet, and back.

use std::io::{Read, Write};

use arrow_array::{RecordBatch, RecordBatchReader};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value as Json;

use crate::connectors::json::{decode_records, decode_value, encode_rows, infer_columns};
use crate::connectors::types::{columns_of, schema_of, Column, ColumnType};
use crate::connectors::values::BatchBuilder;
use crate::connectors::ConnectorError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
    Parquet,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" | "jsonlines" => Some(Self::JsonLines),
            "csv" => Some(Self::Csv),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }

    pub fn extension(self, gzip: bool) -> &'static str {
        match (self, gzip) {
            (Self::JsonLines, false) => "jsonl",
            (Self::JsonLines, true) => "jsonl.gz",
            (Self::Csv, false) => "csv",
            (Self::Csv, true) => "csv.gz",
            (Self::Parquet, _) => "parquet",
        }
    }

    /// The format and compression an object's name says (None: not a data object).
    pub fn of_key(key: &str) -> Option<(Self, bool)> {
        let (stem, gzip) = match key.strip_suffix(".gz") {
            Some(s) => (s, true),
            None => (key, false),
        };
        let ext = stem.rsplit_once('.')?.1;
        Self::parse(ext).map(|f| (f, gzip))
    }
}

fn io_err(e: impl std::fmt::Display, what: &str) -> ConnectorError {
    ConnectorError::fatal(format!("{what}: {e}"))
}

pub fn encode(batch: &RecordBatch, format: Format, gzip: bool) -> Result<Vec<u8>, ConnectorError> {
    let columns = columns_of(&batch.schema())?;
    let body = match format {
        Format::JsonLines => {
            let mut out = Vec::new();
            for record in encode_rows(batch, &columns) {
                serde_json::to_writer(&mut out, &record)
                    .map_err(|e| io_err(e, "encoding JSON lines"))?;
                out.push(b'\n');
            }
            out
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(columns.iter().map(|c| c.name.as_str()))
                .map_err(|e| io_err(e, "encoding CSV"))?;
            for record in encode_rows(batch, &columns) {
                let cells = columns.iter().map(|c| match &record[&c.name] {
                    Json::Null => String::new(),
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                });
                w.write_record(cells)
                    .map_err(|e| io_err(e, "encoding CSV"))?;
            }
            w.into_inner().map_err(|e| io_err(e, "encoding CSV"))?
        }
        Format::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build();
            let mut out = Vec::new();
            let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))
                .map_err(|e| io_err(e, "encoding Parquet"))?;
            w.write(batch).map_err(|e| io_err(e, "encoding Parquet"))?;
            w.close().map_err(|e| io_err(e, "encoding Parquet"))?;
            out
        }
    };
    if !gzip {
        return Ok(body);
    }
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).map_err(|e| io_err(e, "compressing"))?;
    gz.finish().map_err(|e| io_err(e, "compressing"))
}

fn gunzip(body: &[u8], key: &str) -> Result<Vec<u8>, ConnectorError> {
    let mut out = Vec::new();
    GzDecoder::new(body)
        .read_to_end(&mut out)
        .map_err(|e| io_err(e, &format!("object `{key}` is not valid gzip")))?;
    Ok(out)
}

/// CSV cells as JSON values: what parses as a JSON number, boolean, object or array is
/// that; an empty cell is NULL; anything else is a string.
fn csv_records(body: &[u8], key: &str) -> Result<Vec<Json>, ConnectorError> {
    let mut r = csv::Reader::from_reader(body);
    let header: Vec<String> = r
        .headers()
        .map_err(|e| io_err(e, &format!("object `{key}`: CSV header")))?
        .iter()
        .map(String::from)
        .collect();
    let mut out = Vec::new();
    for row in r.records() {
        let row = row.map_err(|e| io_err(e, &format!("object `{key}`")))?;
        let obj: serde_json::Map<String, Json> = header
            .iter()
            .zip(row.iter())
            .map(|(h, cell)| {
                let v = if cell.is_empty() {
                    Json::Null
                } else {
                    match serde_json::from_str::<Json>(cell) {
                        Ok(
                            v
                            @ (Json::Number(_) | Json::Bool(_) | Json::Object(_) | Json::Array(_)),
                        ) => v,
                        _ => Json::String(cell.to_string()),
                    }
                };
                (h.clone(), v)
            })
            .collect();
        out.push(Json::Object(obj));
    }
    Ok(out)
}

/// Typed CSV values: a text column keeps the cell as written (a cell `12` is the text "12").
fn csv_batch(
    records: &[Json],
    body: &[u8],
    key: &str,
    columns: &[Column],
) -> Result<RecordBatch, ConnectorError> {
    let mut raw = csv::Reader::from_reader(body);
    let header: Vec<String> = raw
        .headers()
        .map_err(|e| io_err(e, &format!("object `{key}`: CSV header")))?
        .iter()
        .map(String::from)
        .collect();
    let mut b = BatchBuilder::new(columns, records.len());
    for (record, row) in records.iter().zip(raw.records()) {
        let row = row.map_err(|e| io_err(e, &format!("object `{key}`")))?;
        for (i, col) in columns.iter().enumerate() {
            let pos = header.iter().position(|h| h == &col.name);
            let v = match (col.ty, pos.and_then(|p| row.get(p))) {
                (_, None) | (_, Some("")) => crate::connectors::values::Value::Null,
                (ColumnType::Text, Some(cell)) => {
                    crate::connectors::values::Value::Text(cell.to_string())
                }
                (_, Some(_)) => decode_value(&record[&col.name], col)?,
            };
            b.push(i, v)?;
        }
        b.end_row();
    }
    b.finish()
}

/// An object's rows as `columns` (None: the object's own columns, inferred for text
/// formats). Parquet columns are matched by name and must have the declared type.
pub fn decode(
    body: &[u8],
    key: &str,
    format: Format,
    gzip: bool,
    columns: Option<&[Column]>,
) -> Result<RecordBatch, ConnectorError> {
    let body = if gzip {
        gunzip(body, key)?
    } else {
        body.to_vec()
    };
    match format {
        Format::JsonLines => {
            let mut records = Vec::new();
            for (n, line) in body.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                records.push(
                    serde_json::from_slice::<Json>(line).map_err(|e| {
                        io_err(e, &format!("object `{key}` line {}: not JSON", n + 1))
                    })?,
                );
            }
            let cols = columns
                .map(<[Column]>::to_vec)
                .unwrap_or_else(|| infer_columns(&records));
            decode_records(&records, &cols).map_err(|e| e.context(format!("object `{key}`")))
        }
        Format::Csv => {
            let records = csv_records(&body, key)?;
            let cols = columns
                .map(<[Column]>::to_vec)
                .unwrap_or_else(|| infer_columns(&records));
            csv_batch(&records, &body, key, &cols)
        }
        Format::Parquet => {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
                .map_err(|e| io_err(e, &format!("object `{key}` is not Parquet")))?
                .with_batch_size(65_536)
                .build()
                .map_err(|e| io_err(e, &format!("object `{key}`")))?;
            let file_schema = reader.schema();
            let mut batches = Vec::new();
            for b in reader {
                batches.push(b.map_err(|e| io_err(e, &format!("object `{key}`")))?);
            }
            let batch = arrow_select::concat::concat_batches(&file_schema, &batches)
                .map_err(|e| io_err(e, &format!("object `{key}`")))?;
            let Some(want) = columns else {
                return Ok(batch);
            };
            let have =
                columns_of(&file_schema).map_err(|e| e.context(format!("object `{key}`")))?;
            let mut arrays = Vec::with_capacity(want.len());
            for col in want {
                let i = have
                    .iter()
                    .position(|h| h.name == col.name)
                    .ok_or_else(|| {
                        ConnectorError::fatal(format!(
                            "object `{key}` has no column `{}`",
                            col.name
                        ))
                    })?;
                if have[i].ty != col.ty {
                    return Err(ConnectorError::fatal(format!(
                        "object `{key}`: column `{}` is {} but {} is declared; fix the `schema` option",
                        col.name,
                        have[i].ty.name(),
                        col.ty.name()
                    )));
                }
                arrays.push(batch.column(i).clone());
            }
            RecordBatch::try_new(schema_of(want), arrays)
                .map_err(|e| io_err(e, &format!("object `{key}`")))
        }
    }
}
