//! Upserts take one row per key per batch. A topic or a change stream can carry the same
//! key twice in one batch, and Postgres's `ON CONFLICT` ("cannot affect row a second time")
//! and SQL Server's `MERGE` refuse that; applying the rows in order would leave the last
//! one, so keep exactly that one.

use std::collections::HashMap;

use arrow_array::{RecordBatch, UInt32Array};

use crate::connectors::types::{columns_of, find};
use crate::connectors::values::value_at;
use crate::connectors::ConnectorError;

/// `batch` with only the last row of each key, in the order those rows came. The batch
/// itself when no key repeats (the common case costs one pass and no copy).
pub fn last_per_key(batch: &RecordBatch, keys: &[String]) -> Result<RecordBatch, ConnectorError> {
    let columns = columns_of(&batch.schema())?;
    let key_columns = keys
        .iter()
        .map(|k| find(&columns, k, "key").map(|(i, c)| (i, c.ty)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut last: HashMap<String, usize> = HashMap::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let key = key_columns
            .iter()
            .map(|(i, ty)| format!("{:?}", value_at(batch.column(*i), *ty, row)))
            .collect::<Vec<_>>()
            .join("\u{1f}");
        last.insert(key, row);
    }
    if last.len() == batch.num_rows() {
        return Ok(batch.clone());
    }
    let mut rows: Vec<u32> = last.into_values().map(|r| r as u32).collect();
    rows.sort_unstable();
    arrow_select::take::take_record_batch(batch, &UInt32Array::from(rows))
        .map_err(|e| ConnectorError::fatal(format!("keeping the last row per key: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Int64Array, StringArray};

    use super::*;
    use crate::connectors::types::{schema_of, Column, ColumnType};

    fn batch(ids: &[i64], names: &[&str]) -> RecordBatch {
        let schema = schema_of(&[
            Column::new("id", ColumnType::Int64, false),
            Column::new("name", ColumnType::Text, true),
        ]);
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_repeated_key_keeps_its_last_row_in_arrival_order() {
        let b = batch(&[1, 2, 1, 3, 2], &["a", "b", "c", "d", "e"]);
        let out = last_per_key(&b, &["id".into()]).unwrap();
        let ids = out.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let names = out
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(ids.values().to_vec(), vec![1, 3, 2]);
        assert_eq!(
            (0..names.len()).map(|i| names.value(i)).collect::<Vec<_>>(),
            vec!["c", "d", "e"]
        );
    }

    #[test]
    fn distinct_keys_are_left_alone() {
        let b = batch(&[1, 2, 3], &["a", "b", "c"]);
        assert_eq!(last_per_key(&b, &["id".into()]).unwrap(), b);
    }
}
