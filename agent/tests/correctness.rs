//! Named scenarios from the correctness review (issue "Nothing lost, nothing duplicated"):
//! each reproduces a way the engine or a connector lost, duplicated or refused rows, against
//! the real Postgres, MariaDB and SQLite. One behaviour per test, each on its own tables.

mod support;

use idra_agent::connectors::{self, Commit};
use idra_core::model::{Cursor, SyncMode, WriteMode};
use sqlx::Connection;
use support::*;

/// Review 4a: the late-commit filter hid every row changed while another session held an
/// open write transaction, and a full refresh (overwrite) then replaced the destination
/// without them. A full refresh reads one snapshot, unfiltered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refresh_copies_rows_changed_while_another_transaction_is_open() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("fr_open");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 10, minute).await;
    // Another session with a transaction id, left open (idle in transaction).
    let mut blocker = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT txid_current();")
        .execute(&mut blocker)
        .await
        .unwrap();
    src.exec(&format!("UPDATE {s} SET name = 'changed' WHERE id = 5"))
        .await;
    insert_rows(&src, &s, 11, 11, minute).await;

    let d = unique("fr_open_d");
    let mut cfg = sync(
        "full",
        &s,
        &d,
        SyncMode::FullRefreshOverwrite,
        WriteMode::Insert,
    );
    cfg.batch_size = 4; // several batches, all from one snapshot
    let mut h = Harness::new(cfg, &src, &dst);
    h.runner.run_once().await.unwrap();
    assert_eq!(
        dst.count(&d).await,
        11,
        "every row, updated and new included"
    );
    // Compared once the other transaction ended: the helper reads the source through
    // Idra's incremental read, which holds back rows of open transactions.
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    assert_eq!(dst.rows(&d).await, src.rows(&s).await);
}

/// Review 6: `ts > $1 OR (ts = $1 AND k > $2)` never matches NULL, so rows with a NULL
/// timestamp past the first batch were never copied, silently. A timestamp column with NULL
/// rows is refused with what to do instead.
#[tokio::test]
async fn a_nullable_timestamp_column_is_refused_with_the_fix() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("null_ts");
    src.exec(&format!(
        "CREATE TABLE {s} (id bigint PRIMARY KEY, ts timestamp, name text)"
    ))
    .await;
    src.exec(&format!(
        "INSERT INTO {s} VALUES (1, '2024-01-01', 'a'), (2, NULL, 'b')"
    ))
    .await;
    let d = unique("null_ts_d");
    let mut h = Harness::new(
        sync("nullts", &s, &d, SyncMode::ByTimestamp, WriteMode::Upsert),
        &src,
        &dst,
    );
    let e = h.runner.run_once().await.unwrap_err();
    assert!(!e.is_retryable());
    assert!(
        e.message.contains("`ts` is NULL in some rows") && e.message.contains("NOT NULL"),
        "{e}"
    );
}

/// Declared nullable but set on every row (as most `updated_at` columns are): it runs.
#[tokio::test]
async fn a_nullable_timestamp_column_without_nulls_runs() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("nullable_ts");
    src.exec(&format!(
        "CREATE TABLE {s} (id bigint PRIMARY KEY, ts timestamp, name text)"
    ))
    .await;
    src.exec(&format!(
        "INSERT INTO {s} VALUES (1, '2024-01-01', 'a'), (2, '2024-01-02', 'b')"
    ))
    .await;
    let d = unique("nullable_ts_d");
    let mut h = Harness::new(
        sync("nullable", &s, &d, SyncMode::ByTimestamp, WriteMode::Upsert),
        &src,
        &dst,
    );
    h.runner.run_once().await.unwrap();
    assert_eq!(dst.count(&d).await, 2);
}

/// Review 12: a key repeated inside one batch made Postgres's `ON CONFLICT` fail the whole
/// sync ("cannot affect row a second time"). Upserts keep the last row of each key.
#[tokio::test]
async fn an_upsert_batch_with_a_repeated_key_keeps_the_last_row() {
    let (src, dst) = (Db::pg(), Db::pg());
    let s = unique("dup_key");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 5, minute).await;
    let d = unique("dup_key_d");
    let mut cfg = sync(
        "dupkey",
        "",
        &d,
        SyncMode::FullRefreshAppend,
        WriteMode::Upsert,
    );
    // Key 3 twice in one batch, as a topic or change stream delivers it.
    cfg.source.query = Some(format!(
        "SELECT id, ts, name FROM {s} UNION ALL SELECT id, ts, 'again' FROM {s} WHERE id = 3"
    ));
    cfg.batch_size = 100;
    let mut h = Harness::new(cfg, &src, &dst);
    h.runner.run_once().await.unwrap();
    assert_eq!(dst.count(&d).await, 5);
    assert_eq!(dst.duplicates(&d).await, 0);
}

/// Review 5: the cursor held only the first key column, so a batch ending inside one value
/// of it skipped that value's other rows. A sync with a composite key is refused, also when
/// it was stored before the rule existed.
#[tokio::test]
async fn a_composite_key_is_refused_before_anything_is_read() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("composite");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 5, minute).await;
    let d = unique("composite_d");
    let mut cfg = sync("composite", &s, &d, SyncMode::ById, WriteMode::Insert);
    cfg.key_columns = vec!["qty".into(), "id".into()];
    let mut h = Harness::new(cfg, &src, &dst);
    let e = h.runner.run_once().await.unwrap_err();
    assert!(!e.is_retryable());
    assert!(e.message.contains("key_columns"), "{e}");
    assert!(!table_exists(&dst, &d).await, "nothing was written");
}

async fn table_exists(db: &Db, table: &str) -> bool {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = '{table}'"
    ))
    .await
        > 0
}

/// Review 7: the full refresh's final swap did not check the fencing token, so a paused
/// former holder could swap a table into place after a newer holder took the sync over.
async fn a_stale_holder_cannot_swap_a_full_refresh_into_place(db: Db) {
    let t = unique("swap");
    create_source(&db, &t).await;
    insert_rows(&db, &t, 1, 3, minute).await;
    let dest = connectors::open_destination(&db.spec()).unwrap();
    let columns = db
        .column_types(&t)
        .await
        .into_iter()
        .map(|(name, ty)| idra_agent::connectors::types::Column::new(name, ty, true))
        .collect::<Vec<_>>();
    let keys = vec!["id".to_string()];
    let sync_id = unique("swap_sync");
    // The old holder (token 5) loaded a full refresh; then a new holder claimed (token 9).
    let load = dest.begin_overwrite(&t, &columns, &keys).await.unwrap();
    dest.claim(&sync_id, &t, 9, &Cursor::Start).await.unwrap();
    let stale = Commit {
        sync_id: sync_id.clone(),
        fence: 5,
        cursor: Cursor::Start,
    };
    let e = dest.finish_overwrite(&t, &load, &stale).await.unwrap_err();
    assert!(e.message.contains("fenced off"), "{e}");
    assert_eq!(db.count(&t).await, 3, "the table was not replaced");
    // The holder of the newest token swaps.
    let current = Commit { fence: 9, ..stale };
    dest.finish_overwrite(&t, &load, &current).await.unwrap();
    assert_eq!(db.count(&t).await, 0, "the (empty) load table replaced it");
}

#[tokio::test]
async fn stale_swap_refused_pg() {
    a_stale_holder_cannot_swap_a_full_refresh_into_place(Db::pg()).await;
}

#[tokio::test]
async fn stale_swap_refused_mysql() {
    a_stale_holder_cannot_swap_a_full_refresh_into_place(Db::mysql()).await;
}

#[tokio::test]
async fn stale_swap_refused_sqlite() {
    a_stale_holder_cannot_swap_a_full_refresh_into_place(Db::sqlite()).await;
}

/// Review 15: a crash between MySQL's swap and the drop of the replaced table left
/// `<table>__idra_old`, and every later swap failed on it.
#[tokio::test]
async fn a_mysql_full_refresh_survives_a_leftover_replaced_table() {
    let (src, dst) = (Db::pg(), Db::mysql());
    let s = unique("old_left");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 7, minute).await;
    let d = unique("old_left_d");
    create_source(&dst, &d).await;
    create_source(&dst, &format!("{d}__idra_old")).await;
    let mut h = Harness::new(
        sync(
            "leftover",
            &s,
            &d,
            SyncMode::FullRefreshOverwrite,
            WriteMode::Insert,
        ),
        &src,
        &dst,
    );
    h.runner.run_once().await.unwrap();
    assert_eq!(dst.count(&d).await, 7);
}
