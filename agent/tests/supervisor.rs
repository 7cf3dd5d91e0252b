//! An agent over the embedded store (the server's in-process agent of single mode): it
//! elects itself, assigns itself the syncs saved in the Store and runs them.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use idra_agent::cluster::ClusterAgent;
use idra_core::model::{ConnectorKind, DataSourceInput, Offset, SyncMode, WriteMode};
use idra_core::secret::{Cipher, DataSourceRecord};
use idra_core::store::{decode, encode, EmbeddedStore, Keys, Store};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_syncs_in_the_store_run_and_disabled_ones_stop() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("sup");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 30, minute).await;

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&dir.path().join("store"))
            .await
            .unwrap(),
    );
    let keys = Keys::default();
    let cipher = Cipher::from_key_file(&dir.path().join("secret.key")).unwrap();
    for (id, db) in [("src", &src), ("dst", &dst)] {
        let input = DataSourceInput {
            name: id.into(),
            kind: db.kind,
            connection_string: db.url.clone(),
            options: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
        .normalize()
        .unwrap();
        let record = DataSourceRecord::from_input(&cipher, id, input, None, Utc::now());
        store
            .put(&keys.datasource(id), encode(&record), None)
            .await
            .unwrap();
    }
    assert_eq!(dst.kind, ConnectorKind::Sqlite);
    let mut cfg = sync("stored", &s, "copied", SyncMode::ById, WriteMode::Insert);
    cfg.poll_interval_secs = 3600;
    store
        .put(&keys.sync(&cfg.id), encode(&cfg), None)
        .await
        .unwrap();

    let agent = ClusterAgent {
        store: store.clone(),
        keys: keys.clone(),
        cipher,
        lease_ttl: 5,
        address: String::new(),
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.run(stop_rx));

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
    let exists = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = '{table}'"
        ))
        .await
        > 0;
    exists && db.count(table).await == n
}
