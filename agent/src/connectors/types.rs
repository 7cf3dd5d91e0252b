//! Idra's column types: the one vocabulary every connector maps its own types to and from.
//! Each maps to one Arrow type; Arrow field metadata keeps what Arrow alone cannot say
//! (that a string is JSON, that 16 bytes are a UUID).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::ConnectorError;

pub const TYPE_KEY: &str = "idra.type";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    Text,
    Bytes,
    Date,
    /// Time of day, microseconds.
    Time,
    /// Timestamp without time zone, microseconds.
    Timestamp,
    /// Instant in UTC, microseconds.
    TimestampTz,
    /// Exact decimal; values are i128 scaled by 10^scale.
    Decimal {
        precision: u8,
        scale: i8,
    },
    Json,
    Uuid,
}

/// Unconstrained decimals (Postgres `numeric`, SQLite `NUMERIC`) are carried at this scale.
pub const DEFAULT_DECIMAL: ColumnType = ColumnType::Decimal {
    precision: 38,
    scale: 10,
};

impl ColumnType {
    /// One of each type (decimal at a sample precision), for tests and documentation.
    pub const ALL: [ColumnType; 15] = [
        ColumnType::Int16,
        ColumnType::Int32,
        ColumnType::Int64,
        ColumnType::Float32,
        ColumnType::Float64,
        ColumnType::Bool,
        ColumnType::Text,
        ColumnType::Bytes,
        ColumnType::Date,
        ColumnType::Time,
        ColumnType::Timestamp,
        ColumnType::TimestampTz,
        ColumnType::Decimal {
            precision: 12,
            scale: 2,
        },
        ColumnType::Json,
        ColumnType::Uuid,
    ];

    pub fn name(self) -> String {
        match self {
            ColumnType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            other => format!("{other:?}").to_ascii_lowercase(),
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(
            self,
            ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64
        )
    }

    pub fn is_temporal(self) -> bool {
        matches!(
            self,
            ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampTz
        )
    }

    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Int16 => DataType::Int16,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Text | ColumnType::Json => DataType::Utf8,
            ColumnType::Bytes => DataType::Binary,
            ColumnType::Date => DataType::Date32,
            ColumnType::Time => DataType::Time64(TimeUnit::Microsecond),
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            ColumnType::Uuid => DataType::FixedSizeBinary(16),
        }
    }

    pub fn from_field(field: &Field) -> Result<Self, ConnectorError> {
        match field.metadata().get(TYPE_KEY).map(String::as_str) {
            Some("json") => return Ok(ColumnType::Json),
            Some("uuid") => return Ok(ColumnType::Uuid),
            _ => {}
        }
        Ok(match field.data_type() {
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => ColumnType::Int16,
            DataType::Int32 | DataType::UInt16 => ColumnType::Int32,
            DataType::Int64 | DataType::UInt32 => ColumnType::Int64,
            DataType::Float16 | DataType::Float32 => ColumnType::Float32,
            DataType::Float64 => ColumnType::Float64,
            DataType::Boolean => ColumnType::Bool,
            DataType::Utf8 | DataType::LargeUtf8 => ColumnType::Text,
            DataType::Binary | DataType::LargeBinary => ColumnType::Bytes,
            DataType::FixedSizeBinary(16) => ColumnType::Uuid,
            DataType::Date32 => ColumnType::Date,
            DataType::Time64(_) => ColumnType::Time,
            DataType::Timestamp(_, None) => ColumnType::Timestamp,
            DataType::Timestamp(_, Some(_)) => ColumnType::TimestampTz,
            DataType::Decimal128(p, s) => ColumnType::Decimal {
                precision: *p,
                scale: *s,
            },
            other => {
                return Err(ConnectorError::fatal(format!(
                    "column `{}` has Arrow type {other}, which Idra does not map yet",
                    field.name()
                )))
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: ColumnType, nullable: bool) -> Self {
        Self {
            name: name.into(),
            ty,
            nullable,
        }
    }

    pub fn field(&self) -> Field {
        let mut meta = HashMap::new();
        match self.ty {
            ColumnType::Json => {
                meta.insert(TYPE_KEY.to_string(), "json".to_string());
            }
            ColumnType::Uuid => {
                meta.insert(TYPE_KEY.to_string(), "uuid".to_string());
            }
            _ => {}
        }
        Field::new(&self.name, self.ty.arrow(), self.nullable).with_metadata(meta)
    }
}

pub fn schema_of(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns.iter().map(Column::field).collect::<Vec<_>>(),
    ))
}

pub fn columns_of(schema: &Schema) -> Result<Vec<Column>, ConnectorError> {
    schema
        .fields()
        .iter()
        .map(|f| {
            Ok(Column::new(
                f.name(),
                ColumnType::from_field(f)?,
                f.is_nullable(),
            ))
        })
        .collect()
}

/// The column named `name`, or an error listing the ones that exist.
pub fn find<'a>(
    columns: &'a [Column],
    name: &str,
    role: &str,
) -> Result<(usize, &'a Column), ConnectorError> {
    columns
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == name)
        .ok_or_else(|| {
            ConnectorError::fatal(format!(
                "{role} column `{name}` does not exist; the columns are: {}",
                columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_survives_the_arrow_field_round_trip() {
        for ty in ColumnType::ALL {
            let c = Column::new("c", ty, true);
            assert_eq!(ColumnType::from_field(&c.field()).unwrap(), ty);
        }
    }

    #[test]
    fn missing_column_lists_the_real_ones() {
        let cols = vec![Column::new("id", ColumnType::Int64, false)];
        let err = find(&cols, "idd", "key").unwrap_err();
        assert!(
            err.message.contains("`idd`") && err.message.contains("id"),
            "{err}"
        );
    }
}
