//! Many syncs on an etcd with its default limits (128 operations per transaction): import
//! and the leader's assignments both fit, in chunks. Before, both were one transaction and
//! cluster mode stopped at about 120 syncs ("too many operations in txn request").

mod support;

use std::sync::Arc;
use std::time::Duration;

use idra_agent::cluster::ClusterAgent;
use idra_core::config::parse;
use idra_core::config::store_io::import;
use idra_core::secret::Cipher;
use idra_core::store::{EtcdOptions, EtcdStore, Keys, Store};
use support::*;

const SYNCS: usize = 300;

/// One data source and `SYNCS` syncs in Idra's file format (the data source is Postgres;
/// the syncs' tables need not exist for the assignments to be written).
fn file() -> String {
    let syncs: Vec<_> = (0..SYNCS)
        .map(|i| {
            serde_json::json!({
                "name": format!("s{i:04}"),
                "source": {"datasource": "pg", "table": format!("missing_{i}")},
                "destination": {"datasource": "pg", "table": format!("copy_{i}")},
                "mode": "by_id", "key_columns": ["id"], "poll_interval_secs": 3600
            })
        })
        .collect();
    serde_json::json!({
        "datasources": [{"name": "pg", "kind": "postgres", "connection_string": pg_url()}],
        "syncs": syncs
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_syncs_import_and_get_assigned_on_a_default_etcd() {
    let Some(etcd) = etcd_url("etcd limits") else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(
        EtcdStore::connect(EtcdOptions::from_list(&etcd))
            .await
            .unwrap(),
    );
    let keys = Keys::new(&format!("/idra-test/{}/", unique("limits")));
    let dir = tempfile::tempdir().unwrap();
    let cipher = Cipher::from_key_file(&dir.path().join("k")).unwrap();
    let imported = import(store.as_ref(), &keys, &cipher, &parse(&file()).unwrap())
        .await
        .expect("the import fits etcd's limits");
    assert_eq!(imported.syncs, SYNCS);

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
        Duration::from_secs(60),
        "every sync to be assigned",
        || async { store.count(&keys.assignments()).await.unwrap() == SYNCS },
    )
    .await;
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
}
