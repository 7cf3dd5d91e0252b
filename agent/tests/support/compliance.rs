//! The compliance harness every connector passes, whatever it talks to: the type table
//! round trip, an empty batch, resuming after a restart mid-stream (as source and as
//! destination, through the engine), and a clear error for bad credentials.
//!
//! A connector under test is a [`Peer`]: a destination that writes somewhere and a source
//! that reads back what was written there (same topic, queue, path, bucket…).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use idra_agent::connectors::types::{columns_of, schema_of, Column, ColumnType};
use idra_agent::connectors::values::{sample, value_at, BatchBuilder, Value};
use idra_agent::connectors::{self, Commit, ConnectionSpec, ReadSpec, WriteRequest};
use idra_agent::engine::{FileOffsets, Runner, SyncJob};
use idra_core::model::{Cursor, SyncMode, WriteMode};

use super::{create_source, insert_rows, minute, normalise, sync, unique, Db};

pub struct Peer<'a> {
    pub label: &'static str,
    pub source: ConnectionSpec,
    pub destination: ConnectionSpec,
    /// The same system reached with a wrong password, token or key (None: the system has
    /// no credentials, like a SQLite file).
    pub bad_credentials: Option<ConnectionSpec>,
    /// A new, empty table / topic / queue / path name for one check.
    pub fresh: Box<dyn Fn() -> String + 'a>,
    /// Whether the source must be told the fields (`schema` option) to read typed values.
    pub declare_schema: bool,
    /// Types read back exactly as written. Databases map some types onto their own (MariaDB
    /// keeps JSON as text, timestamptz as UTC DATETIME); for them values are compared in a
    /// normal form and the mapping is checked by their own type tests.
    pub exact_types: bool,
    /// The system keeps timestamps to the millisecond (BSON dates): the round trip expects
    /// the microseconds cut.
    pub millisecond_timestamps: bool,
}

/// `v` as a system keeping milliseconds stores it.
fn to_millis(v: Value) -> Value {
    use chrono::{DurationRound, TimeDelta};
    let ms = TimeDelta::milliseconds(1);
    match v {
        Value::Timestamp(t) => Value::Timestamp(t.duration_trunc(ms).unwrap()),
        Value::TimestampTz(t) => Value::TimestampTz(t.duration_trunc(ms).unwrap()),
        other => other,
    }
}

pub async fn check_all(peer: &Peer<'_>) {
    round_trip_of_the_type_table(peer).await;
    empty_batch(peer).await;
    resume_after_restart_as_source(peer).await;
    resume_after_restart_as_destination(peer).await;
    bad_credentials(peer).await;
}

/// `id` plus one column per type the engine carries.
fn type_table() -> (Vec<Column>, RecordBatch) {
    let mut columns = vec![Column::new("id", ColumnType::Int64, false)];
    for ty in ColumnType::ALL {
        let name: String = ty
            .name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        columns.push(Column::new(format!("c_{name}"), ty, true));
    }
    let mut b = BatchBuilder::new(&columns, 2);
    for id in 1..=2 {
        b.push(0, Value::Int(id)).unwrap();
        for (i, c) in columns.iter().enumerate().skip(1) {
            // Row 1 carries a value of every type, row 2 only NULLs.
            let v = if id == 1 { sample(c.ty) } else { Value::Null };
            b.push(i, v).unwrap();
        }
        b.end_row();
    }
    (columns.clone(), b.finish().unwrap())
}

fn declaration(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.ty.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn reading(peer: &Peer<'_>, columns: &[Column]) -> ConnectionSpec {
    let mut spec = peer.source.clone();
    if peer.declare_schema {
        spec.options.insert("schema".into(), declaration(columns));
    }
    spec
}

fn read_spec(table: &str) -> ReadSpec {
    ReadSpec {
        table: Some(table.into()),
        query: None,
        key: "id".into(),
        timestamp: None,
        settle_before: None,
        snapshot: false,
    }
}

async fn write(spec: &ConnectionSpec, table: &str, batch: &RecordBatch, last_id: i64) {
    let dest = connectors::open_destination(spec).unwrap();
    let columns = columns_of(&batch.schema()).unwrap();
    dest.ensure_table(table, &columns, &["id".to_string()], false)
        .await
        .unwrap();
    dest.write(WriteRequest {
        table,
        keys: &["id".to_string()],
        mode: WriteMode::Insert,
        rows: batch,
        commit: &Commit {
            sync_id: "compliance".into(),
            fence: 0,
            cursor: Cursor::Id { last_id },
        },
    })
    .await
    .unwrap_or_else(|e| panic!("writing {table}: {e}"));
}

/// Reads `table` through a fresh source until `expected` rows came (or the deadline),
/// acknowledging as the engine does. Rows keyed by id.
async fn read_back(
    spec: &ConnectionSpec,
    table: &str,
    expected: usize,
) -> (Vec<Column>, BTreeMap<i64, Vec<Value>>, usize) {
    let source = connectors::open_source(spec).unwrap();
    let rs = read_spec(table);
    let columns = source.columns(&rs).await.unwrap();
    let mut rows = BTreeMap::new();
    let mut total = 0;
    let mut cursor = Cursor::Start;
    let deadline = Instant::now() + Duration::from_secs(30);
    while total < expected {
        let read = source.read(&rs, &columns, &cursor, 10).await.unwrap();
        let n = read.rows.num_rows();
        for r in 0..n {
            let values: Vec<Value> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| value_at(read.rows.column(i), c.ty, r))
                .collect();
            let Value::Int(id) = values[0] else {
                panic!("id is {:?}", values[0])
            };
            rows.insert(id, values);
        }
        total += n;
        if n > 0 {
            cursor = read.end;
            source.acknowledge(&cursor).await.unwrap();
        } else if !read.more {
            assert!(
                Instant::now() < deadline,
                "{table}: read {total} rows, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (columns, rows, total)
}

pub async fn round_trip_of_the_type_table(peer: &Peer<'_>) {
    let table = (peer.fresh)();
    let (columns, batch) = type_table();
    write(&peer.destination, &table, &batch, 2).await;
    let (got_columns, rows, total) = read_back(&reading(peer, &columns), &table, 2).await;
    assert_eq!(total, 2, "{}: rows read back", peer.label);
    for (i, c) in columns.iter().enumerate() {
        let j = got_columns
            .iter()
            .position(|g| g.name == c.name)
            .unwrap_or_else(|| panic!("{}: column {} not read back", peer.label, c.name));
        let mut expected = value_at(batch.column(i), c.ty, 0);
        if peer.millisecond_timestamps {
            expected = to_millis(expected);
        }
        if peer.exact_types {
            assert_eq!(
                got_columns[j].ty, c.ty,
                "{}: type of {}",
                peer.label, c.name
            );
            assert_eq!(rows[&1][j], expected, "{}: value of {}", peer.label, c.name);
        } else {
            assert_eq!(
                normalise(rows[&1][j].clone(), got_columns[j].ty),
                normalise(expected, c.ty),
                "{}: value of {}",
                peer.label,
                c.name
            );
        }
        if i > 0 {
            // Row 2 is id 2 with every other column NULL.
            assert_eq!(rows[&2][j], Value::Null, "{}: NULL {}", peer.label, c.name);
        }
    }
}

pub async fn empty_batch(peer: &Peer<'_>) {
    let table = (peer.fresh)();
    let columns = vec![
        Column::new("id", ColumnType::Int64, false),
        Column::new("name", ColumnType::Text, true),
    ];
    let empty = RecordBatch::new_empty(schema_of(&columns));
    write(&peer.destination, &table, &empty, 0).await;
    let source = connectors::open_source(&reading(peer, &columns)).unwrap();
    let rs = read_spec(&table);
    let cols = source.columns(&rs).await.unwrap();
    let read = source.read(&rs, &cols, &Cursor::Start, 10).await.unwrap();
    assert_eq!(
        read.rows.num_rows(),
        0,
        "{}: an empty batch delivered rows",
        peer.label
    );
    assert!(!read.more, "{}: nothing to read, yet more", peer.label);
}

fn rows_batch(from: i64, to: i64) -> RecordBatch {
    let columns = vec![
        Column::new("id", ColumnType::Int64, false),
        Column::new("name", ColumnType::Text, true),
    ];
    let mut b = BatchBuilder::new(&columns, (to - from + 1) as usize);
    for id in from..=to {
        b.push(0, Value::Int(id)).unwrap();
        b.push(1, Value::Text(format!("name {id}"))).unwrap();
        b.end_row();
    }
    b.finish().unwrap()
}

/// A runner whose shutdown is already requested stops after its first batch: the restart
/// mid-stream. The second runner (new connections, same offsets) must finish the copy.
fn runner(
    sync_config: idra_core::model::SyncConfig,
    source: ConnectionSpec,
    destination: ConnectionSpec,
    offsets: &Arc<FileOffsets>,
    stop_after_first_batch: bool,
) -> Runner {
    let (tx, rx) = tokio::sync::watch::channel(stop_after_first_batch);
    std::mem::forget(tx);
    Runner::new(
        SyncJob {
            sync: sync_config,
            source,
            destination,
            fence: 0,
            agent: None,
        },
        offsets.clone(),
        rx,
    )
}

pub async fn resume_after_restart_as_source(peer: &Peer<'_>) {
    let table = (peer.fresh)();
    for (from, to) in [(1, 10), (11, 20), (21, 25)] {
        write(&peer.destination, &table, &rows_batch(from, to), to).await;
    }
    let columns = columns_of(&rows_batch(1, 1).schema()).unwrap();
    let lite = Db::sqlite();
    let dst = unique("from_peer");
    let state = tempfile::tempdir().unwrap();
    let offsets = Arc::new(FileOffsets::open(state.path()).unwrap());
    let config = sync(
        "compliance_src",
        &table,
        &dst,
        SyncMode::ById,
        WriteMode::Insert,
    );
    let mut first = runner(
        config.clone(),
        reading(peer, &columns),
        lite.spec(),
        &offsets,
        true,
    );
    let report = first.run_once().await.unwrap();
    assert_eq!(
        report.rows, 10,
        "{}: the first run stops after one batch",
        peer.label
    );
    drop(first);
    let mut second = runner(
        config,
        reading(peer, &columns),
        lite.spec(),
        &offsets,
        false,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while lite.count(&dst).await < 25 {
        second.run_once().await.unwrap();
        assert!(
            Instant::now() < deadline,
            "{}: the copy never finished",
            peer.label
        );
    }
    assert_eq!(
        lite.count(&dst).await,
        25,
        "{}: rows after the restart",
        peer.label
    );
    assert_eq!(
        lite.duplicates(&dst).await,
        0,
        "{}: duplicates after the restart",
        peer.label
    );
}

pub async fn resume_after_restart_as_destination(peer: &Peer<'_>) {
    let lite = Db::sqlite();
    let src = unique("to_peer");
    create_source(&lite, &src).await;
    insert_rows(&lite, &src, 1, 25, minute).await;
    let source = connectors::open_source(&lite.spec()).unwrap();
    let columns = source.columns(&read_spec(&src)).await.unwrap();

    let table = (peer.fresh)();
    let state = tempfile::tempdir().unwrap();
    let offsets = Arc::new(FileOffsets::open(state.path()).unwrap());
    let config = sync(
        "compliance_dst",
        &src,
        &table,
        SyncMode::ById,
        WriteMode::Insert,
    );
    let mut first = runner(
        config.clone(),
        lite.spec(),
        peer.destination.clone(),
        &offsets,
        true,
    );
    assert_eq!(first.run_once().await.unwrap().rows, 10, "{}", peer.label);
    drop(first);
    let mut second = runner(
        config,
        lite.spec(),
        peer.destination.clone(),
        &offsets,
        false,
    );
    assert_eq!(second.run_once().await.unwrap().rows, 15, "{}", peer.label);

    let (_, rows, total) = read_back(&reading(peer, &columns), &table, 25).await;
    let ids: BTreeSet<i64> = rows.keys().copied().collect();
    assert_eq!(ids, (1..=25).collect(), "{}: ids delivered", peer.label);
    assert_eq!(
        total, 25,
        "{}: a clean restart delivers nothing twice",
        peer.label
    );
}

pub async fn bad_credentials(peer: &Peer<'_>) {
    let Some(bad) = &peer.bad_credentials else {
        return;
    };
    let source = connectors::open_source(bad).unwrap();
    let e = source
        .test_connection()
        .await
        .expect_err("wrong credentials were accepted");
    assert!(!e.is_retryable(), "{}: {e}", peer.label);
    let text = e.message.to_lowercase();
    assert!(
        text.contains("credential") || text.contains("password") || text.contains("access"),
        "{}: the error does not point at the credentials: {e}",
        peer.label
    );
    let dest = connectors::open_destination(bad).unwrap();
    let table = (peer.fresh)();
    let batch = rows_batch(1, 1);
    let columns = columns_of(&batch.schema()).unwrap();
    let result = async {
        dest.ensure_table(&table, &columns, &["id".to_string()], false)
            .await?;
        dest.write(WriteRequest {
            table: &table,
            keys: &["id".to_string()],
            mode: WriteMode::Insert,
            rows: &batch,
            commit: &Commit {
                sync_id: "compliance".into(),
                fence: 0,
                cursor: Cursor::Id { last_id: 1 },
            },
        })
        .await
    }
    .await;
    assert!(
        result.is_err(),
        "{}: a write with wrong credentials succeeded",
        peer.label
    );
}
