//! An agent over the embedded store (the server's in-process agent of single mode): it
//! elects itself, assigns itself the syncs saved in the Store and runs them.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use idra_agent::cluster::ClusterAgent;
use idra_core::model::{Offset, SyncMode, WriteMode};
use idra_core::secret::Cipher;
use idra_core::store::{decode, encode, EmbeddedStore, Keys, Store};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_syncs_in_the_store_run_and_disabled_ones_stop() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("sup");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 30, minute).await;

    let dir = tempfile::tempdir().unwrap();
    let (store, keys, cipher) = store_with_datasources(dir.path(), &src, &dst).await;
    let mut cfg = sync("stored", &s, "copied", SyncMode::ById, WriteMode::Insert);
    cfg.poll_interval_secs = 3600;
    store
        .put(&keys.sync(&cfg.id), encode(&cfg), None)
        .await
        .unwrap();

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent(&store, &keys, cipher).run(stop_rx));

    eventually(
        Duration::from_secs(30),
        "the stored sync to copy 30 rows",
        || async { table_has(&dst, "copied", 30).await },
    )
    .await;
    // The offset lives in the Store and carries the lock's fencing token.
    let key = keys.offset(&cfg.id);
    let kv = store.get(&key).await.unwrap().unwrap();
    let offset: Offset = decode(&key, &kv.value).unwrap();
    assert!(offset.fence > 0, "offset commits are fenced");

    // The sync polls only hourly: new rows arrive now only because of "Run now".
    insert_rows(&src, &s, 31, 35, minute).await;
    store
        .put(&keys.run_request(&cfg.id), encode(&Utc::now()), None)
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "5 more rows", || async {
        table_has(&dst, "copied", 35).await
    })
    .await;
    // …and stop once the sync is disabled.
    cfg.enabled = false;
    cfg.updated_at = Utc::now();
    store
        .put(&keys.sync(&cfg.id), encode(&cfg), None)
        .await
        .unwrap();
    let lock = keys.sync_lock(&cfg.id);
    eventually(
        Duration::from_secs(30),
        "the lock to be released",
        || async { store.get(&lock).await.unwrap().is_none() },
    )
    .await;
    insert_rows(&src, &s, 36, 40, minute).await;
    let status_key = keys.status(&cfg.id);
    assert!(
        store.get(&status_key).await.unwrap().is_some(),
        "status is reported to the Store"
    );
    let assignment = keys.assignment(&cfg.id);
    assert!(
        store.get(&assignment).await.unwrap().is_none(),
        "the disabled sync's assignment is revoked"
    );
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
    assert_eq!(
        dst.count("copied").await,
        35,
        "a disabled sync copies nothing more"
    );
}

async fn table_has(db: &Db, table: &str, n: i64) -> bool {
    table_exists(db, table).await && db.count(table).await == n
}

/// An embedded store holding the data sources `src` and `dst`.
async fn store_with_datasources(
    dir: &std::path::Path,
    src: &Db,
    dst: &Db,
) -> (Arc<dyn Store>, Keys, Cipher) {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.join("store")).await.unwrap());
    let keys = Keys::default();
    let cipher = Cipher::from_key_file(&dir.join("secret.key")).unwrap();
    for (id, db) in [("src", src), ("dst", dst)] {
        put_datasource(store.as_ref(), &keys, &cipher, id, db).await;
    }
    (store, keys, cipher)
}

fn agent(store: &Arc<dyn Store>, keys: &Keys, cipher: Cipher) -> ClusterAgent {
    ClusterAgent {
        store: store.clone(),
        keys: keys.clone(),
        cipher,
        lease_ttl: 5,
        address: String::new(),
    }
}

/// Editing a sync while it copies restarts it: the old run stops after its batch and is
/// awaited before the new one starts, so the two never share the lock, and every row
/// arrives exactly once. (Before, both ran under one lock acquisition; the old run's
/// unlock fenced the new one off for good, with its status still "idle".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_sync_mid_copy_neither_stalls_nor_duplicates() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("edit");
    create_source(&src, &s).await;
    const ROWS: i64 = 20_000;
    src.exec(&format!(
        "INSERT INTO {s} (id, ts, name, amount, qty) SELECT g, '2024-01-01'::timestamp + g * interval '1 second', 'n', 1.00, 1 FROM generate_series(1, {ROWS}) g"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (store, keys, cipher) = store_with_datasources(dir.path(), &src, &dst).await;
    let mut cfg = sync("edited", &s, "copied", SyncMode::ById, WriteMode::Insert);
    cfg.batch_size = 50;
    cfg.poll_interval_secs = 3600;
    store
        .put(&keys.sync(&cfg.id), encode(&cfg), None)
        .await
        .unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent(&store, &keys, cipher).run(stop_rx));

    eventually(Duration::from_secs(30), "the copy to begin", || async {
        table_exists(&dst, "copied").await && dst.count("copied").await > 0
    })
    .await;
    cfg.batch_size = 60;
    cfg.updated_at = Utc::now();
    store
        .put(&keys.sync(&cfg.id), encode(&cfg), None)
        .await
        .unwrap();
    let copied_at_edit = dst.count("copied").await;
    assert!(copied_at_edit < ROWS, "the edit must land mid-copy");

    eventually(
        Duration::from_secs(60),
        "every row after the edit",
        || async { dst.count("copied").await >= ROWS },
    )
    .await;
    assert_eq!(dst.count("copied").await, ROWS);
    assert_eq!(dst.duplicates("copied").await, 0);
    let status: idra_core::model::SyncStatus = decode(
        &keys.status(&cfg.id),
        &store
            .get(&keys.status(&cfg.id))
            .await
            .unwrap()
            .unwrap()
            .value,
    )
    .unwrap();
    assert_eq!(status.error, None);
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
}

async fn table_exists(db: &Db, table: &str) -> bool {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = '{table}'"
    ))
    .await
        > 0
}

/// Review 16: the fencing token was the lock's create revision alone, so a new store (a
/// rebuilt etcd, a move from the embedded store) issued small tokens again and every sync
/// whose destination kept a token from the earlier store was refused for good. Tokens now
/// carry the store's epoch above the revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_fenced_by_an_earlier_store_accepts_a_new_store() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("epoch");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 12, minute).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, keys, cipher) = store_with_datasources(dir.path(), &src, &dst).await;
    let mut cfg = sync("epoch", &s, "copied", SyncMode::ById, WriteMode::Insert);
    cfg.poll_interval_secs = 3600;
    // What an earlier store's holder left in the destination: a token far above any
    // revision this new store will reach in this test.
    dst.exec("CREATE TABLE _idra_fence (sync_id TEXT NOT NULL, table_name TEXT NOT NULL, fence INTEGER NOT NULL, cursor TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (sync_id, table_name))").await;
    dst.exec(&format!(
        "INSERT INTO _idra_fence VALUES ('{}', 'copied', 100000, '{{\"kind\":\"start\"}}', '2024-01-01T00:00:00Z')",
        cfg.id
    ))
    .await;
    store
        .put(&keys.sync(&cfg.id), encode(&cfg), None)
        .await
        .unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent(&store, &keys, cipher).run(stop_rx));
    eventually(Duration::from_secs(30), "the 12 rows", || async {
        table_has(&dst, "copied", 12).await
    })
    .await;
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_whose_data_source_is_gone_shows_failed_with_the_reason() {
    // The run ends before its runner starts (the data source cannot be opened): the sync
    // must still say it failed and why, not keep its last state forever.
    let (src, dst) = (Db::sqlite(), Db::sqlite());
    let dir = tempfile::tempdir().unwrap();
    let (store, keys, cipher) = store_with_datasources(dir.path(), &src, &dst).await;
    let mut cfg = sync("orphan", "t", "copied", SyncMode::ById, WriteMode::Insert);
    cfg.source.datasource_id = "deleted".into();
    store
        .put(&keys.sync(&cfg.id), encode(&cfg), None)
        .await
        .unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent(&store, &keys, cipher).run(stop_rx));
    let status_key = keys.status(&cfg.id);
    eventually(
        Duration::from_secs(30),
        "the status to say the sync failed because its data source is gone",
        || async {
            let Some(kv) = store.get(&status_key).await.unwrap() else {
                return false;
            };
            let status: idra_core::model::SyncStatus = decode(&status_key, &kv.value).unwrap();
            status.state == idra_core::model::SyncState::Failed
                && status
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("deleted"))
        },
    )
    .await;
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
}
