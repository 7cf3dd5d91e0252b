//! The SQL connectors against the real servers: Postgres and MariaDB on 127.0.0.1 (started
//! before the tests; see README) and SQLite files.

mod support;

use idra_agent::connectors::types::ColumnType;
use idra_core::model::{ConnectorKind, SyncMode, WriteMode};
use sqlx::Connection;
use support::*;

/// 15 rows share one timestamp, so a batch of 10 ends inside the run of equal timestamps.
fn shared_ts(id: i64) -> String {
    if id <= 15 {
        "2024-01-01 00:00:00".into()
    } else {
        minute(id)
    }
}

async fn every_mode(src: Db, dst: Db) {
    let s = unique(&format!("src_{}", src.label()));
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 25, shared_ts).await;

    // By id, insert: then new rows only.
    let d = unique("d_id");
    let mut h = Harness::new(
        sync("by_id", &s, &d, SyncMode::ById, WriteMode::Insert),
        &src,
        &dst,
    );
    h.sync_until(&dst, &d, 25).await;
    insert_rows(&src, &s, 26, 30, minute).await;
    h.sync_until(&dst, &d, 30).await;
    assert_eq!(dst.duplicates(&d).await, 0);
    assert_eq!(dst.rows(&d).await, src.rows(&s).await, "by id: contents");

    // By timestamp, upsert: every row sharing the timestamp arrives, and an update that
    // moves a row's timestamp forward is copied again.
    let d = unique("d_ts");
    let mut h = Harness::new(
        sync("by_ts", &s, &d, SyncMode::ByTimestamp, WriteMode::Upsert),
        &src,
        &dst,
    );
    h.sync_until(&dst, &d, 30).await;
    src.exec(&format!(
        "UPDATE {s} SET name = 'changed', ts = '2024-01-02 00:00:00' WHERE id = 3"
    ))
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        h.runner.run_once().await.unwrap();
        if dst.rows(&d).await == src.rows(&s).await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the update never reached the destination"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(dst.count(&d).await, 30);

    // Last destination id: the cursor is the destination's max id.
    let d = unique("d_lid");
    let mut h = Harness::new(
        sync(
            "last_dest_id",
            &s,
            &d,
            SyncMode::LastDestinationId,
            WriteMode::Insert,
        ),
        &src,
        &dst,
    );
    h.sync_until(&dst, &d, 30).await;
    insert_rows(&src, &s, 31, 35, minute).await;
    h.sync_until(&dst, &d, 35).await;
    assert_eq!(dst.duplicates(&d).await, 0);

    // Last destination timestamp.
    let d = unique("d_lts");
    let mut h = Harness::new(
        sync(
            "last_dest_ts",
            &s,
            &d,
            SyncMode::LastDestinationTimestamp,
            WriteMode::Upsert,
        ),
        &src,
        &dst,
    );
    h.sync_until(&dst, &d, 35).await;
    insert_rows(&src, &s, 36, 40, |id| {
        format!("2024-01-03 00:00:{:02}", id % 60)
    })
    .await;
    h.sync_until(&dst, &d, 40).await;
    assert_eq!(
        dst.rows(&d).await,
        src.rows(&s).await,
        "last destination timestamp: contents"
    );

    // Full refresh, overwrite: a deleted source row disappears.
    let d = unique("d_full");
    let mut h = Harness::new(
        sync(
            "full_overwrite",
            &s,
            &d,
            SyncMode::FullRefreshOverwrite,
            WriteMode::Insert,
        ),
        &src,
        &dst,
    );
    h.sync_until(&dst, &d, 40).await;
    src.exec(&format!("DELETE FROM {s} WHERE id = 1")).await;
    h.sync_until(&dst, &d, 39).await;
    assert_eq!(
        dst.rows(&d).await,
        src.rows(&s).await,
        "full refresh: contents"
    );

    // Full refresh, append (with upsert, so re-appending keeps one row per key).
    let d = unique("d_append");
    let mut h = Harness::new(
        sync(
            "full_append",
            &s,
            &d,
            SyncMode::FullRefreshAppend,
            WriteMode::Upsert,
        ),
        &src,
        &dst,
    );
    h.sync_until(&dst, &d, 39).await;
    h.sync_until(&dst, &d, 39).await;
    assert_eq!(dst.duplicates(&d).await, 0);
}

macro_rules! pairs {
    ($($name:ident: $src:expr => $dst:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            every_mode($src, $dst).await;
        }
    )*};
}

pairs!(
    modes_pg_to_pg: Db::pg() => Db::pg(),
    modes_pg_to_mysql: Db::pg() => Db::mysql(),
    modes_pg_to_sqlite: Db::pg() => Db::sqlite(),
    modes_mysql_to_pg: Db::mysql() => Db::pg(),
    modes_mysql_to_mysql: Db::mysql() => Db::mysql(),
    modes_mysql_to_sqlite: Db::mysql() => Db::sqlite(),
    modes_sqlite_to_pg: Db::sqlite() => Db::pg(),
    modes_sqlite_to_mysql: Db::sqlite() => Db::mysql(),
    modes_sqlite_to_sqlite: Db::sqlite() => Db::sqlite(),
);

// ---- Types: one row of every type and one row of NULLs, per pair ----

async fn create_types_table(db: &Db, t: &str) {
    db.drop_table(t).await;
    let (ddl, values) = match db.kind {
        ConnectorKind::Postgres => (
            "id bigint PRIMARY KEY, c_smallint smallint, c_int integer, c_bigint bigint, c_numeric numeric(12,2), c_real real, \
             c_double double precision, c_bool boolean, c_char char(5), c_varchar varchar(20), c_text text, c_bytes bytea, \
             c_date date, c_time time, c_ts timestamp, c_tstz timestamptz, c_json jsonb, c_uuid uuid",
            "1, -3, 123456, 9007199254740993, 12345.67, 1.5, 2.25, true, 'ab', 'héllo', 'multi\nline ''quoted''', '\\x0102ff'::bytea, \
             '2024-02-29', '13:14:15.123456', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.123456+00', '{\"a\": [1, 2]}', \
             '0f8fad5b-d9cb-469f-a165-70867728950e'",
        ),
        ConnectorKind::Mysql => (
            "id BIGINT PRIMARY KEY, c_smallint SMALLINT, c_int INT, c_bigint BIGINT, c_numeric DECIMAL(12,2), c_real FLOAT, \
             c_double DOUBLE, c_bool BOOLEAN, c_char CHAR(5), c_varchar VARCHAR(20), c_text TEXT, c_bytes BLOB, \
             c_date DATE, c_time TIME(6), c_ts DATETIME(6), c_tstz TIMESTAMP(6) NULL, c_json JSON, c_uuid CHAR(36)",
            "1, -3, 123456, 9007199254740993, 12345.67, 1.5, 2.25, true, 'ab', 'héllo', 'multi\nline ''quoted''', X'0102FF', \
             '2024-02-29', '13:14:15.123456', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.123456', '{\"a\": [1, 2]}', \
             '0f8fad5b-d9cb-469f-a165-70867728950e'",
        ),
        _ => (
            "id INTEGER PRIMARY KEY, c_smallint SMALLINT, c_int INT, c_bigint BIGINT, c_numeric DECIMAL(12,2), c_real FLOAT, \
             c_double DOUBLE, c_bool BOOLEAN, c_char CHAR(5), c_varchar VARCHAR(20), c_text TEXT, c_bytes BLOB, \
             c_date DATE, c_time TIME, c_ts TIMESTAMP, c_tstz TIMESTAMPTZ, c_json JSON, c_uuid UUID",
            "1, -3, 123456, 9007199254740993, '12345.67', 1.5, 2.25, 1, 'ab', 'héllo', 'multi\nline ''quoted''', X'0102FF', \
             '2024-02-29', '13:14:15.123456', '2024-02-29 13:14:15.123456', '2024-02-29T13:14:15.123456Z', '{\"a\": [1, 2]}', \
             '0f8fad5b-d9cb-469f-a165-70867728950e'",
        ),
    };
    db.exec(&format!("CREATE TABLE {t} ({ddl})")).await;
    db.exec(&format!("INSERT INTO {t} VALUES ({values})")).await;
    db.exec(&format!("INSERT INTO {t} (id) VALUES (2)")).await;
}

/// The type a destination gives a column of source type `ty` (see each connector's TYPES.md).
fn expected_type(dst: ConnectorKind, ty: ColumnType) -> ColumnType {
    match (dst, ty) {
        // DATETIME has no zone; MariaDB's JSON is LONGTEXT; UUIDs are CHAR(36).
        (ConnectorKind::Mysql, ColumnType::TimestampTz) => ColumnType::Timestamp,
        (ConnectorKind::Mysql, ColumnType::Json | ColumnType::Uuid) => ColumnType::Text,
        _ => ty,
    }
}

async fn types_round_trip(src: Db, dst: Db) {
    let s = unique("types");
    create_types_table(&src, &s).await;
    let d = unique("types_copy");
    let mut h = Harness::new(
        sync("types", &s, &d, SyncMode::ById, WriteMode::Insert),
        &src,
        &dst,
    );
    h.sync_until(&dst, &d, 2).await;
    let src_types = src.column_types(&s).await;
    let dst_types = dst.column_types(&d).await;
    for ((name, sty), (dname, dty)) in src_types.iter().zip(&dst_types) {
        assert_eq!(name, dname);
        assert_eq!(
            *dty,
            expected_type(dst.kind, *sty),
            "{} → {}: column {name} ({sty:?})",
            src.label(),
            dst.label()
        );
    }
    let (a, b) = (src.rows(&s).await, dst.rows(&d).await);
    for (row_a, row_b) in a.iter().zip(&b) {
        for ((name, _), (va, vb)) in src_types.iter().zip(row_a.iter().zip(row_b)) {
            assert_eq!(va, vb, "{} → {}: column {name}", src.label(), dst.label());
        }
    }
    assert_eq!(a.len(), b.len());
    assert!(
        b[1][1..].iter().all(|v| v == "NULL"),
        "NULLs stay NULL: {:?}",
        b[1]
    );
}

macro_rules! type_pairs {
    ($($name:ident: $src:expr => $dst:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            types_round_trip($src, $dst).await;
        }
    )*};
}

type_pairs!(
    types_pg_to_pg: Db::pg() => Db::pg(),
    types_pg_to_mysql: Db::pg() => Db::mysql(),
    types_pg_to_sqlite: Db::pg() => Db::sqlite(),
    types_mysql_to_pg: Db::mysql() => Db::pg(),
    types_mysql_to_mysql: Db::mysql() => Db::mysql(),
    types_mysql_to_sqlite: Db::mysql() => Db::sqlite(),
    types_sqlite_to_pg: Db::sqlite() => Db::pg(),
    types_sqlite_to_mysql: Db::sqlite() => Db::mysql(),
    types_sqlite_to_sqlite: Db::sqlite() => Db::sqlite(),
);

// ---- Bad configurations: a clear error, and nothing written ----

async fn table_exists(db: &Db, table: &str) -> bool {
    let sql = match db.kind {
        ConnectorKind::Postgres => format!("SELECT CAST(COUNT(*) AS BIGINT) FROM information_schema.tables WHERE table_name = '{table}'"),
        ConnectorKind::Mysql => format!("SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"),
        _ => format!("SELECT COUNT(*) FROM sqlite_master WHERE name = '{table}'"),
    };
    db.scalar(&sql).await > 0
}

#[tokio::test]
async fn a_missing_source_table_is_a_fatal_error_and_writes_nothing() {
    let (src, dst) = (Db::pg(), Db::mysql());
    let d = unique("never");
    let mut h = Harness::new(
        sync(
            "missing",
            "no_such_table_here",
            &d,
            SyncMode::ById,
            WriteMode::Insert,
        ),
        &src,
        &dst,
    );
    let e = h.runner.run_once().await.unwrap_err();
    assert!(!e.is_retryable());
    assert!(
        e.message.contains("no_such_table_here") && e.message.contains("does not exist"),
        "{e}"
    );
    assert!(!table_exists(&dst, &d).await);
}

#[tokio::test]
async fn an_unknown_key_column_lists_the_real_ones() {
    let (src, dst) = (Db::mysql(), Db::pg());
    let s = unique("src");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 3, minute).await;
    let d = unique("never");
    let mut cfg = sync("unknown_col", &s, &d, SyncMode::ById, WriteMode::Insert);
    cfg.key_columns = vec!["idd".into()];
    let e = Harness::new(cfg, &src, &dst)
        .runner
        .run_once()
        .await
        .unwrap_err();
    assert!(
        e.message.contains("`idd`") && e.message.contains("id, ts, name, amount, qty"),
        "{e}"
    );
    assert!(!table_exists(&dst, &d).await);
}

#[tokio::test]
async fn a_wrong_password_says_so() {
    let src = Db::pg();
    let s = unique("src");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 3, minute).await;
    let mut dst = Db::mysql();
    dst.url = dst.url.replace("root@", "root:not-the-password@");
    let d = unique("never");
    let e = Harness::new(
        sync("wrong_pw", &s, &d, SyncMode::ById, WriteMode::Insert),
        &src,
        &dst,
    )
    .runner
    .run_once()
    .await
    .unwrap_err();
    assert!(!e.is_retryable());
    assert!(e.message.contains("password"), "{e}");
    assert!(!table_exists(&Db::mysql(), &d).await);
}

#[tokio::test]
async fn an_unreachable_host_is_retryable_and_named() {
    let mut src = Db::pg();
    src.url = "postgres://postgres@127.0.0.1:1/test".into();
    let dst = Db::sqlite();
    let e = Harness::new(
        sync("unreachable", "t", "u", SyncMode::ById, WriteMode::Insert),
        &src,
        &dst,
    )
    .runner
    .run_once()
    .await
    .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(
        e.message.contains("cannot reach") && e.message.contains("127.0.0.1:1"),
        "{e}"
    );
}

#[tokio::test]
async fn a_malicious_identifier_is_refused_before_any_sql() {
    let (src, dst) = (Db::pg(), Db::pg());
    let canary = unique("canary");
    src.exec(&format!("CREATE TABLE {canary} (id int)")).await;
    for (s_table, d_table) in [
        (format!("{canary}\"; DROP TABLE {canary}; --"), unique("d")),
        (canary.clone(), format!("t\"; DROP TABLE {canary}; --")),
    ] {
        let e = Harness::new(
            sync(
                "evil",
                &s_table,
                &d_table,
                SyncMode::ById,
                WriteMode::Insert,
            ),
            &src,
            &dst,
        )
        .runner
        .run_once()
        .await
        .unwrap_err();
        assert!(!e.is_retryable());
        // Refused by the sync's validation or, failing that, by the dialect's quoting.
        assert!(e.message.contains("not a valid"), "{e}");
    }
    assert!(
        table_exists(&src, &canary).await,
        "the canary table survived"
    );
    src.drop_table(&canary).await;
}

// ---- Out-of-order commits (Postgres) ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_committing_lower_id_is_not_skipped() {
    let (src, dst) = (Db::pg(), Db::pg());
    let s = unique("late");
    src.exec(&format!("CREATE TABLE {s} (id bigint PRIMARY KEY, ts timestamp NOT NULL DEFAULT now(), name text, amount numeric(12,2), qty int)")).await;
    // Transaction A takes id 100 and stays open…
    let mut a = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut a).await.unwrap();
    sqlx::raw_sql(&format!("INSERT INTO {s} (id, name) VALUES (100, 'late')"))
        .execute(&mut a)
        .await
        .unwrap();
    // …while ids 101–200 commit from another connection.
    src.exec(&format!(
        "INSERT INTO {s} (id, name) SELECT g, 'early' FROM generate_series(101, 200) g"
    ))
    .await;

    let d = unique("late_copy");
    let mut h = Harness::new(
        sync("late", &s, &d, SyncMode::ById, WriteMode::Insert),
        &src,
        &dst,
    );
    h.runner.run_once().await.unwrap();
    // Nothing may pass id 100 while A is open (Kafka Connect's JDBC source would copy
    // 101–200 here and never see 100).
    let copied = dst.scalar(&format!("SELECT COUNT(*) FROM {d}")).await;
    assert_eq!(copied, 0, "rows newer than an open transaction must wait");

    sqlx::raw_sql("COMMIT").execute(&mut a).await.unwrap();
    h.sync_until(&dst, &d, 101).await;
    assert_eq!(
        dst.scalar(&format!("SELECT COUNT(*) FROM {d} WHERE id = 100"))
            .await,
        1,
        "id 100 arrived"
    );
}

// ---- Fencing in the destination's own transaction ----

async fn stale_token_is_refused(dst: Db) {
    use idra_agent::connectors::types::Column;
    use idra_agent::connectors::values::{BatchBuilder, Value};
    use idra_agent::connectors::{open_destination, Commit, WriteRequest};
    use idra_core::model::Cursor;

    let d = unique("fenced");
    let dest = open_destination(&dst.spec()).unwrap();
    let columns = vec![
        Column::new("id", ColumnType::Int64, false),
        Column::new("v", ColumnType::Text, true),
    ];
    assert!(
        dest.ensure_table(&d, &columns, &["id".to_string()], false)
            .await
            .unwrap(),
        "created"
    );
    let batch = |ids: std::ops::RangeInclusive<i64>| {
        let mut b = BatchBuilder::new(&columns, 4);
        for id in ids {
            b.push(0, Value::Int(id)).unwrap();
            b.push(1, Value::Text(format!("v{id}"))).unwrap();
            b.end_row();
        }
        b.finish().unwrap()
    };
    let sync_id = unique("fence_sync");
    let keys = vec!["id".to_string()];
    let write = |rows, fence, last| {
        let commit = Commit {
            sync_id: sync_id.clone(),
            fence,
            cursor: Cursor::Id { last_id: last },
        };
        let dest = &dest;
        let d = &d;
        let keys = &keys;
        async move {
            dest.write(WriteRequest {
                table: d,
                keys,
                mode: WriteMode::Insert,
                rows: &rows,
                commit: &commit,
            })
            .await
        }
    };
    write(batch(1..=3), 7, 3).await.unwrap();
    // A paused agent holding the older token 5 wakes up and tries to write: refused.
    let e = write(batch(4..=6), 5, 6).await.unwrap_err();
    assert!(e.message.contains("fenced off") && !e.is_retryable(), "{e}");
    assert_eq!(dst.count(&d).await, 3, "the zombie's rows did not land");
    let c = dest.committed(&sync_id, &d).await.unwrap().unwrap();
    assert_eq!((c.fence, c.cursor), (7, Cursor::Id { last_id: 3 }));
    // The current holder (same or newer token) goes on.
    write(batch(4..=6), 8, 6).await.unwrap();
    assert_eq!(dst.count(&d).await, 6);
}

#[tokio::test]
async fn fencing_pg() {
    stale_token_is_refused(Db::pg()).await;
}

#[tokio::test]
async fn fencing_mysql() {
    stale_token_is_refused(Db::mysql()).await;
}

#[tokio::test]
async fn fencing_sqlite() {
    stale_token_is_refused(Db::sqlite()).await;
}

// ---- Settle window, custom queries, discovery ----

async fn settle_window_holds_back_recent_rows(src: Db) {
    let dst = Db::sqlite();
    let s = unique("settle");
    create_source(&src, &s).await;
    let old = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let recent = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    insert_rows(&src, &s, 1, 10, |_| old.clone()).await;
    insert_rows(&src, &s, 11, 15, |_| recent.clone()).await;
    let d = unique("settled");
    let mut cfg = sync("settle", &s, &d, SyncMode::ByTimestamp, WriteMode::Upsert);
    cfg.settle_secs = 600;
    let mut h = Harness::new(cfg, &src, &dst);
    h.runner.run_once().await.unwrap();
    assert_eq!(
        dst.count(&d).await,
        10,
        "rows younger than the settle window wait"
    );
    assert_eq!(dst.scalar(&format!("SELECT MAX(id) FROM {d}")).await, 10);
}

#[tokio::test]
async fn settle_window_mysql() {
    settle_window_holds_back_recent_rows(Db::mysql()).await;
}

#[tokio::test]
async fn settle_window_sqlite() {
    settle_window_holds_back_recent_rows(Db::sqlite()).await;
}

async fn custom_query_source(src: Db) {
    let dst = Db::pg();
    let s = unique("q");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 40, minute).await;
    let d = unique("q_copy");
    let mut cfg = sync("query", "", &d, SyncMode::ById, WriteMode::Insert);
    cfg.source.query = Some(format!("SELECT id, name, qty FROM {s} WHERE qty >= 4"));
    let expected = (1..=40).filter(|id| id % 7 >= 4).count() as i64;
    let mut h = Harness::new(cfg, &src, &dst);
    h.sync_until(&dst, &d, expected).await;
    let types = dst.column_types(&d).await;
    assert_eq!(
        types.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        vec!["id", "name", "qty"]
    );
    assert_eq!(
        dst.scalar(&format!("SELECT COUNT(*) FROM {d} WHERE qty < 4"))
            .await,
        0
    );
}

#[tokio::test]
async fn custom_query_pg() {
    custom_query_source(Db::pg()).await;
}

#[tokio::test]
async fn custom_query_mysql() {
    custom_query_source(Db::mysql()).await;
}

#[tokio::test]
async fn custom_query_sqlite() {
    custom_query_source(Db::sqlite()).await;
}

#[tokio::test]
async fn test_connection_and_discover_on_every_connector() {
    use idra_agent::connectors::{open_destination, open_source};
    for db in Db::all() {
        let t = unique("disc");
        create_source(&db, &t).await;
        let source = open_source(&db.spec()).unwrap();
        source.test_connection().await.unwrap();
        let tables = source.discover().await.unwrap();
        let found = tables
            .iter()
            .find(|ti| ti.name == t || ti.name.ends_with(&format!(".{t}")))
            .unwrap_or_else(|| panic!("{}: {t} not discovered", db.label()));
        let names: Vec<&str> = found.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["id", "ts", "name", "amount", "qty"],
            "{}",
            db.label()
        );
        assert_eq!(
            found.columns[3].ty,
            ColumnType::Decimal {
                precision: 12,
                scale: 2
            },
            "{}",
            db.label()
        );
        let dest = open_destination(&db.spec()).unwrap();
        dest.test_connection().await.unwrap();
        assert!(dest
            .discover()
            .await
            .unwrap()
            .iter()
            .any(|ti| ti.name.ends_with(&t)));
        db.drop_table(&t).await;
    }
    let mut bad = Db::mysql();
    bad.url = bad.url.replace("root@", "root:wrong@");
    let e = open_source(&bad.spec())
        .unwrap()
        .test_connection()
        .await
        .unwrap_err();
    assert!(e.message.contains("password"), "{e}");
}

#[tokio::test]
async fn a_hand_edited_offset_wins_over_the_destinations_record() {
    use idra_core::model::{Cursor, Offset};
    let (src, dst) = (Db::pg(), Db::pg());
    let s = unique("edit");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 30, minute).await;
    let d = unique("edit_copy");
    let mut h = Harness::new(
        sync("edited", &s, &d, SyncMode::ById, WriteMode::Insert),
        &src,
        &dst,
    );
    h.sync_until(&dst, &d, 30).await;
    // Someone re-copies ids 21..30: deletes them and sets the offset back by hand.
    dst.exec(&format!("DELETE FROM {d} WHERE id > 20")).await;
    let edited = Offset {
        cursor: Cursor::Id { last_id: 20 },
        fence: 0,
        updated_at: chrono::Utc::now(),
        edited: true,
    };
    h.runner
        .offsets
        .commit(&h.runner.job.sync.id, &edited)
        .await
        .unwrap();
    h.sync_until(&dst, &d, 30).await;
    assert_eq!(dst.duplicates(&d).await, 0);
    let after = h
        .runner
        .offsets
        .load(&h.runner.job.sync.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !after.edited,
        "the first commit after the edit clears the mark"
    );
}

#[tokio::test]
async fn data_source_options_reach_the_connection() {
    use idra_agent::connectors::open_source;
    // Postgres: options are session parameters; a bad value is the server's error.
    let mut pg = Db::pg().spec();
    pg.options
        .insert("application_name".into(), "idra-options-test".into());
    open_source(&pg).unwrap().test_connection().await.unwrap();
    pg.options
        .insert("statement_timeout".into(), "not-a-duration".into());
    let e = open_source(&pg)
        .unwrap()
        .test_connection()
        .await
        .unwrap_err();
    assert!(e.message.contains("statement_timeout"), "{e}");
    // MySQL takes none, and says where settings go instead.
    let mut my = Db::mysql().spec();
    my.options.insert("ssl".into(), "on".into());
    let e = open_source(&my).err().expect("refused");
    assert!(e.message.contains("connection string"), "{e}");
    // SQLite: options are pragmas.
    let lite = Db::sqlite();
    lite.exec("CREATE TABLE t (id INTEGER PRIMARY KEY)").await;
    let mut spec = lite.spec();
    spec.options.insert("cache_size".into(), "-4000".into());
    open_source(&spec).unwrap().test_connection().await.unwrap();
    spec.options.insert("bad name".into(), "1".into());
    assert!(open_source(&spec).err().unwrap().message.contains("pragma"));
}

/// The same harness as the message, object and document connectors.
async fn compliance(db: Db, bad: Option<idra_agent::connectors::ConnectionSpec>) {
    let peer = compliance::Peer {
        label: db.label(),
        source: db.spec(),
        destination: db.spec(),
        bad_credentials: bad,
        fresh: Box::new(|| unique("compliance")),
        declare_schema: false,
        exact_types: false,
        millisecond_timestamps: false,
    };
    compliance::check_all(&peer).await;
}

#[tokio::test]
async fn postgres_passes_the_compliance_harness() {
    // The server trusts local users, so a wrong login is a user that does not exist.
    let mut bad = Db::pg().spec();
    bad.connection_string = bad.connection_string.replace("postgres@", "no_such_user@");
    compliance(Db::pg(), Some(bad)).await;
}

#[tokio::test]
async fn mariadb_passes_the_compliance_harness() {
    let mut bad = Db::mysql().spec();
    bad.connection_string = bad
        .connection_string
        .replace("root@", "root:not-the-password@");
    compliance(Db::mysql(), Some(bad)).await;
}

#[tokio::test]
async fn sqlite_passes_the_compliance_harness() {
    // A file has no credentials to get wrong.
    compliance(Db::sqlite(), None).await;
}

// ---- Postgres reads by COPY, with the cursor written as literals ----

/// Reads `table` by (`timestamp`, `key`) one row at a time, returning the keys in the order
/// read.
async fn read_one_by_one(db: &Db, table: &str, key: &str, timestamp: &str) -> Vec<String> {
    use idra_agent::connectors::values::{value_at, Value};
    let spec = &idra_agent::connectors::ReadSpec {
        table: Some(table.to_string()),
        query: None,
        key: key.into(),
        timestamp: Some(timestamp.into()),
        settle_before: None,
        snapshot: false,
    };
    let source = idra_agent::connectors::open_source(&db.spec()).unwrap();
    let columns = source.columns(spec).await.unwrap();
    let key = columns.iter().position(|c| c.name == spec.key).unwrap();
    let mut cursor = idra_core::model::Cursor::Start;
    let mut keys = Vec::new();
    loop {
        let read = source.read(spec, &columns, &cursor, 1).await.unwrap();
        for r in 0..read.rows.num_rows() {
            match value_at(read.rows.column(key), columns[key].ty, r) {
                Value::Text(s) => keys.push(s),
                Value::Int(i) => keys.push(i.to_string()),
                other => panic!("key {other:?}"),
            }
        }
        cursor = read.end;
        if !read.more {
            return keys;
        }
        assert!(keys.len() < 100, "the read does not end: {keys:?}");
    }
}

#[tokio::test]
async fn postgres_text_keys_with_quotes_and_backslashes_resume_exactly() {
    // COPY takes no parameters, so the cursor is written into the statement: a key that
    // could end the literal must neither break the read nor skip or repeat a row.
    let db = Db::pg();
    let t = unique("pg_quoted_keys");
    db.exec(&format!(
        "CREATE TABLE {t} (k text PRIMARY KEY, ts timestamptz NOT NULL)"
    ))
    .await;
    let keys = [
        "a",
        "it's",
        "back\\slash",
        "\\'",
        "''",
        "E'x'",
        "$1",
        "é",
        "z\\\\'; DROP TABLE x; --",
    ];
    for k in keys {
        let k = k.replace('\'', "''");
        db.exec(&format!(
            "INSERT INTO {t} VALUES (E'{}', '2024-01-01')",
            k.replace('\\', "\\\\")
        ))
        .await;
    }
    let read = read_one_by_one(&db, &t, "k", "ts").await;
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut sorted = read.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(sorted, expected, "every key once: read {read:?}");
}

#[tokio::test]
async fn postgres_timestamps_before_year_one_and_after_9999_resume_exactly() {
    let db = Db::pg();
    let t = unique("pg_far_dates");
    db.exec(&format!(
        "CREATE TABLE {t} (id bigint PRIMARY KEY, ts timestamp NOT NULL, d date NOT NULL)"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {t} VALUES \
         (1, '0044-03-15 12:00:00.000001 BC', '0044-03-15 BC'), \
         (2, '0001-12-31 23:59:59.999999 BC', '0001-12-31 BC'), \
         (3, '0001-01-01 00:00:00', '0001-01-01'), \
         (4, '2024-01-01 00:00:00.5', '2024-01-01'), \
         (5, '2024-01-01 00:00:00.5', '2024-01-01'), \
         (6, '12345-06-07 08:09:10.123456', '12345-06-07'), \
         (-7, '2024-01-01 00:00:00.500001', '2024-01-01')"
    ))
    .await;
    for column in ["ts", "d"] {
        let read = read_one_by_one(&db, &t, "id", column).await;
        let mut sorted = read.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["-7", "1", "2", "3", "4", "5", "6"].map(String::from),
            "by {column}: read {read:?}"
        );
    }
}

#[tokio::test]
async fn postgres_citext_keys_resume_in_the_order_they_are_read() {
    // citext is read as text and sorted as text; the cursor must compare as text too, or
    // a resumed read skips keys whose case-insensitive order differs.
    let db = Db::pg();
    db.exec("CREATE EXTENSION IF NOT EXISTS citext").await;
    let t = unique("pg_citext_keys");
    db.exec(&format!(
        "CREATE TABLE {t} (k citext PRIMARY KEY, ts timestamptz NOT NULL)"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {t} VALUES ('b', '2024-01-01'), ('B2', '2024-01-01'), ('a', '2024-01-01'), ('Z', '2024-01-01')"
    ))
    .await;
    let read = read_one_by_one(&db, &t, "k", "ts").await;
    let mut sorted = read.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["B2", "Z", "a", "b"].map(String::from),
        "read {read:?}"
    );
}
