//! Cluster mode with real agent processes on a real etcd (`IDRA_TEST_ETCD`, started by
//! `make test`). Without it each test prints a visible `skipped:` line, or fails when
//! `IDRA_REQUIRE_ETCD=1`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use idra_core::model::{Assignment, SyncConfig, SyncMode, WriteMode};
use idra_core::secret::Cipher;
use idra_core::store::{decode, encode, EtcdOptions, EtcdStore, EventKind, Keys, Store};
use support::*;

const TTL: u64 = 3;

struct Cluster {
    etcd: String,
    store: Arc<dyn Store>,
    keys: Keys,
    key_b64: String,
    cipher: Cipher,
    agents: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn new(etcd: String) -> Self {
        let store: Arc<dyn Store> = Arc::new(
            EtcdStore::connect(EtcdOptions::from_list(&etcd))
                .await
                .unwrap(),
        );
        let keys = Keys::new(&format!("/idra-test/{}/", unique("cluster")));
        let key_b64 = base64::engine::general_purpose::STANDARD.encode(rand_key());
        let cipher = Cipher::from_base64(&key_b64).unwrap();
        Self {
            etcd,
            store,
            keys,
            key_b64,
            cipher,
            agents: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn spawn_agent(&mut self) -> u32 {
        let n = self.agents.len();
        let log = std::fs::File::create(self.dir.path().join(format!("agent{n}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_idra-agent"))
            .args([
                "--etcd",
                &self.etcd,
                "--store-prefix",
                self.keys.prefix(),
                "--lease-ttl",
                &TTL.to_string(),
            ])
            .env("IDRA_SECRET_KEY", &self.key_b64)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.agents.push(child);
        pid
    }

    fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("agent{n}.log"))).unwrap_or_default()
    }

    async fn datasource(&self, id: &str, db: &Db) {
        put_datasource(self.store.as_ref(), &self.keys, &self.cipher, id, db).await;
    }

    async fn add_sync(&self, cfg: &SyncConfig) {
        self.store
            .put(&self.keys.sync(&cfg.id), encode(cfg), None)
            .await
            .unwrap();
    }

    async fn plan(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for kv in self.store.list_all(&self.keys.assignments()).await.unwrap() {
            let a: Assignment = decode(&kv.key, &kv.value).unwrap();
            out.insert(a.sync_id, a.agent);
        }
        out
    }

    async fn holder(&self, sync_id: &str) -> Option<String> {
        self.store
            .get(&self.keys.sync_lock(sync_id))
            .await
            .unwrap()
            .map(|kv| idra_core::store::lock_holder(&kv.value))
    }

    fn pid_of(agent_id: &str) -> u32 {
        // Agent ids are host-pid-suffix.
        let parts: Vec<&str> = agent_id.rsplitn(3, '-').collect();
        parts[1].parse().unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.agents {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .enumerate()
    {
        k[i] = *b;
    }
    k
}

fn counts(plan: &BTreeMap<String, String>) -> Vec<usize> {
    let mut per: BTreeMap<&String, usize> = BTreeMap::new();
    for a in plan.values() {
        *per.entry(a).or_default() += 1;
    }
    let mut v: Vec<usize> = per.into_values().collect();
    v.sort();
    v
}

async fn until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_syncs_spread_ten_each_and_a_fourth_agent_moves_at_most_eight() {
    let Some(etcd) = etcd_url("thirty_syncs") else {
        return;
    };
    let mut c = Cluster::new(etcd).await;
    let pg = Db::pg();
    let s = unique("c_src");
    create_source(&pg, &s).await;
    insert_rows(&pg, &s, 1, 5, minute).await;
    c.datasource("pg", &pg).await;
    let mut dests = Vec::new();
    for i in 0..30 {
        let d = unique(&format!("c_dst{i}"));
        let mut cfg = sync(
            &format!("sync{i:02}"),
            &s,
            &d,
            SyncMode::ById,
            WriteMode::Insert,
        );
        cfg.source.datasource_id = "pg".into();
        cfg.destination.datasource_id = "pg".into();
        c.add_sync(&cfg).await;
        dests.push(d);
    }
    // Every change to the locks, from before the first agent starts.
    let from = c
        .store
        .put(&format!("{}marker", c.keys.prefix()), vec![], None)
        .await
        .unwrap();
    let mut lock_events = c
        .store
        .watch(&format!("{}locks/syncs/", c.keys.prefix()), from)
        .await
        .unwrap();

    for _ in 0..3 {
        c.spawn_agent();
    }
    until(
        Duration::from_secs(60),
        "30 syncs assigned 10/10/10",
        || async { counts(&c.plan().await) == vec![10, 10, 10] },
    )
    .await;
    until(
        Duration::from_secs(60),
        "every destination filled",
        || async {
            for d in &dests {
                if pg
                    .scalar(&format!(
                        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{d}'"
                    ))
                    .await
                    == 0
                    || pg.count(d).await != 5
                {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let three = c.plan().await;
    until(
        Duration::from_secs(30),
        "every lock held by the assigned agent",
        || async {
            for (sync, agent) in &three {
                if c.holder(sync).await.as_deref() != Some(agent.as_str()) {
                    return false;
                }
            }
            true
        },
    )
    .await;

    c.spawn_agent();
    until(
        Duration::from_secs(60),
        "a 4-agent plan of 7/7/8/8",
        || async { counts(&c.plan().await) == vec![7, 7, 8, 8] },
    )
    .await;
    let four = c.plan().await;
    let moved: Vec<&String> = three.keys().filter(|s| three[*s] != four[*s]).collect();
    assert!(moved.len() <= 8, "{} syncs moved", moved.len());
    let new_agent: BTreeSet<&String> = four
        .values()
        .filter(|a| !three.values().any(|b| b == *a))
        .collect();
    assert_eq!(new_agent.len(), 1);
    assert!(
        moved.iter().all(|s| new_agent.contains(&four[*s])),
        "syncs move only to the new agent"
    );
    until(
        Duration::from_secs(30),
        "the moved syncs' locks held by the new agent",
        || async {
            for s in &moved {
                if c.holder(s).await.as_deref() != Some(four[*s].as_str()) {
                    return false;
                }
            }
            true
        },
    )
    .await;

    // Replay every lock change: a lock key is created only after its previous holder's
    // delete, so at no instant did two agents hold one sync.
    // A sentinel written under the same prefix marks the end of the history to check.
    let sentinel = format!("{}locks/syncs/~end", c.keys.prefix());
    c.store.put(&sentinel, vec![], None).await.unwrap();
    let mut held: BTreeMap<String, bool> = BTreeMap::new();
    let mut acquisitions = 0;
    while let Some(e) = lock_events.next().await {
        let e = e.unwrap();
        if e.kv.key == sentinel {
            break;
        }
        let h = held.entry(e.kv.key.clone()).or_default();
        match e.kind {
            EventKind::Put if e.kv.version == 1 => {
                assert!(!*h, "{} acquired while held", e.kv.key);
                *h = true;
                acquisitions += 1;
            }
            EventKind::Put => {}
            EventKind::Delete => *h = false,
        }
    }
    assert!(
        acquisitions >= 30 + moved.len(),
        "{acquisitions} acquisitions seen"
    );
    for d in dests {
        assert_eq!(pg.duplicates(&d).await, 0);
        pg.drop_table(&d).await;
    }
}

/// One big sync on two agents; returns the cluster, the sync and its tables.
async fn copying_cluster(etcd: String, rows: i64) -> (Cluster, SyncConfig, String, String) {
    let mut c = Cluster::new(etcd).await;
    let pg = Db::pg();
    let s = unique("big_src");
    create_source(&pg, &s).await;
    insert_rows(&pg, &s, 1, rows, minute).await;
    c.datasource("pg", &pg).await;
    let d = unique("big_dst");
    let mut cfg = sync("big", &s, &d, SyncMode::ById, WriteMode::Insert);
    cfg.source.datasource_id = "pg".into();
    cfg.destination.datasource_id = "pg".into();
    cfg.batch_size = 500;
    c.add_sync(&cfg).await;
    c.spawn_agent();
    c.spawn_agent();
    let id = cfg.id.clone();
    until(
        Duration::from_secs(30),
        "the sync to start copying",
        || async {
            c.holder(&id).await.is_some()
                && pg
                    .scalar(&format!(
                        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{d}'"
                    ))
                    .await
                    > 0
                && pg.count(&d).await > 0
        },
    )
    .await;
    (c, cfg, s, d)
}

async fn assert_equal_exactly_once(src_table: &str, dst_table: &str, rows: i64) {
    let pg = Db::pg();
    until(
        Duration::from_secs(120),
        "the destination to catch up",
        || async { pg.count(dst_table).await == rows },
    )
    .await;
    assert_eq!(pg.duplicates(dst_table).await, 0, "no duplicates");
    assert_eq!(
        pg.scalar(&format!("SELECT MAX(id) FROM {dst_table}")).await,
        rows,
        "no gaps"
    );
    let sum = "SELECT SUM(hashtext(id::text || ts::text || name || amount::text || qty::text))::bigint FROM";
    let (a, b) = (
        pg.scalar(&format!("{sum} {src_table}")).await,
        pg.scalar(&format!("{sum} {dst_table}")).await,
    );
    assert_eq!(a, b, "checksum");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_copying_agent_fails_over_within_two_ttls() {
    let Some(etcd) = etcd_url("kill_9") else {
        return;
    };
    let rows = 200_000;
    let (c, cfg, s, d) = copying_cluster(etcd, rows).await;
    let victim = c.holder(&cfg.id).await.unwrap();
    let killed = Instant::now();
    assert!(Command::new("kill")
        .args(["-9", &Cluster::pid_of(&victim).to_string()])
        .status()
        .unwrap()
        .success());
    until(
        Duration::from_secs(30),
        "another agent to hold the sync",
        || async { c.holder(&cfg.id).await.is_some_and(|h| h != victim) },
    )
    .await;
    let failover = killed.elapsed();
    println!(
        "failover after kill -9: {:.2} s (TTL {TTL} s)",
        failover.as_secs_f64()
    );
    assert!(
        failover <= Duration::from_secs(2 * TTL),
        "failover took {failover:?}"
    );
    assert_equal_exactly_once(&s, &d, rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_holder_writes_nothing_after_another_took_over() {
    let Some(etcd) = etcd_url("sigstop") else {
        return;
    };
    let rows = 200_000;
    let (c, cfg, s, d) = copying_cluster(etcd, rows).await;
    let pg = Db::pg();
    let zombie = c.holder(&cfg.id).await.unwrap();
    let zombie_pid = Cluster::pid_of(&zombie).to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &zombie_pid])
        .status()
        .unwrap()
        .success());
    until(
        Duration::from_secs(30),
        "another agent to take over",
        || async { c.holder(&cfg.id).await.is_some_and(|h| h != zombie) },
    )
    .await;
    let before = pg.count(&d).await;
    until(
        Duration::from_secs(30),
        "the new holder to make progress",
        || async { pg.count(&d).await > before },
    )
    .await;
    assert!(Command::new("kill")
        .args(["-CONT", &zombie_pid])
        .status()
        .unwrap()
        .success());
    assert_equal_exactly_once(&s, &d, rows).await;
    // The destination's token and the Store's offset are the new holder's.
    let new_fence = c
        .store
        .get(&c.keys.sync_lock(&cfg.id))
        .await
        .unwrap()
        .unwrap()
        .create_revision;
    // Destinations and offsets keep the token: the store's epoch above that revision.
    let epoch = idra_core::store::fence_epoch(c.store.as_ref(), &c.keys.epoch())
        .await
        .unwrap();
    let new_fence = idra_core::store::LockGuard {
        key: String::new(),
        fence: new_fence,
        lease: 0,
    }
    .token(epoch);
    let stored = pg
        .scalar(&format!(
            "SELECT MAX(fence) FROM _idra_fence WHERE sync_id = '{}'",
            cfg.id
        ))
        .await;
    assert_eq!(stored, new_fence);
    let offset: idra_core::model::Offset = {
        let key = c.keys.offset(&cfg.id);
        decode(&key, &c.store.get(&key).await.unwrap().unwrap().value).unwrap()
    };
    assert_eq!(
        offset.fence, new_fence,
        "no offset from the paused agent landed"
    );
    let status: idra_core::model::SyncStatus = {
        let key = c.keys.status(&cfg.id);
        decode(&key, &c.store.get(&key).await.unwrap().unwrap().value).unwrap()
    };
    assert_ne!(
        status.state,
        idra_core::model::SyncState::Failed,
        "{:?}",
        status.error
    );
    let n = c
        .agents
        .iter()
        .position(|a| a.id().to_string() == zombie_pid)
        .unwrap();
    until(
        Duration::from_secs(15),
        "the paused agent to notice it lost its lease",
        || async { c.log(n).contains("lease lost") },
    )
    .await;
}
