//! Idle costs nothing (issue 15, part 1): a caught-up sync that copies nothing writes no
//! status and polls no "Run now" key; a run request still reaches it within moments, by
//! watch. Counted with a wrapper around the Store that tallies every operation by key.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use idra_agent::cluster::ClusterAgent;
use idra_core::model::{RunRecord, SyncConfig, SyncMode, SyncState, SyncStatus, WriteMode};
use idra_core::secret::Cipher;
use idra_core::store::{
    decode, encode, EmbeddedStore, EtcdOptions, EtcdStore, Keys, LeaseId, ListOptions, ListPage,
    MemberHealth, Op, Store, StoreError, Txn, TxnResponse, WatchStream,
};
use support::*;

/// Store operations by (operation, key family): `("put", "status")`, `("get", "run_requests")`…
type Tally = BTreeMap<(&'static str, String), u64>;

/// A Store that counts what is asked of it, then passes it on.
struct Counting {
    inner: Arc<dyn Store>,
    prefix: String,
    tally: Mutex<Tally>,
}

impl Counting {
    /// The family of a key: its first segment under the prefix (`status`, `offsets`, …).
    fn family(&self, key: &str) -> String {
        let rest = key.strip_prefix(&self.prefix).unwrap_or(key);
        rest.split('/').next().unwrap_or("").to_string()
    }

    fn count(&self, op: &'static str, key: &str) {
        let family = self.family(key);
        *self.tally.lock().unwrap().entry((op, family)).or_default() += 1;
    }

    fn snapshot(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }
}

/// What happened between two snapshots.
fn since(before: &Tally, after: &Tally) -> Tally {
    after
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn n(t: &Tally, op: &'static str, family: &str) -> u64 {
    t.get(&(op, family.to_string())).copied().unwrap_or(0)
}

/// Every operation on keys of one family, reads and writes.
fn all_on(t: &Tally, family: &str) -> u64 {
    t.iter()
        .filter(|((_, f), _)| f == family)
        .map(|(_, n)| n)
        .sum()
}

#[async_trait]
impl Store for Counting {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        // A guarded write (compare on the lock, put the status) is a write of the status.
        for op in &txn.success {
            match op {
                Op::Get { key } => self.count("get", key),
                Op::Put { key, .. } => self.count("put", key),
                Op::Delete { key } => self.count("delete", key),
            }
        }
        self.inner.txn(txn).await
    }
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListPage, StoreError> {
        self.count("list", prefix);
        self.inner.list(prefix, options).await
    }
    async fn count(&self, prefix: &str) -> Result<usize, StoreError> {
        Counting::count(self, "count", prefix);
        self.inner.count(prefix).await
    }
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        Counting::count(self, "watch", prefix);
        self.inner.watch(prefix, from_revision).await
    }
    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId, StoreError> {
        Counting::count(self, "lease", "");
        self.inner.grant_lease(ttl_secs).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        Counting::count(self, "keep_alive", "");
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.revoke_lease(lease).await
    }
    async fn health(&self) -> Vec<MemberHealth> {
        self.inner.health().await
    }
}

struct Setup {
    store: Arc<dyn Store>,
    counting: Arc<Counting>,
    keys: Keys,
    cipher: Cipher,
    _dir: tempfile::TempDir,
}

/// Which Store the agent runs on.
#[derive(Clone, Copy)]
enum Backend {
    Embedded,
    Etcd,
}

/// A store behind a counter, holding the data sources `src` and `dst`: an embedded one,
/// or etcd under a prefix of its own (None when etcd is not configured).
async fn setup(src: &Db, dst: &Db, backend: Backend, test: &str) -> Option<Setup> {
    let dir = tempfile::tempdir().unwrap();
    let (inner, keys): (Arc<dyn Store>, Keys) = match backend {
        Backend::Embedded => (
            Arc::new(
                EmbeddedStore::open(&dir.path().join("store"))
                    .await
                    .unwrap(),
            ),
            Keys::default(),
        ),
        Backend::Etcd => (
            Arc::new(
                EtcdStore::connect(EtcdOptions::from_list(&etcd_url(test)?))
                    .await
                    .unwrap(),
            ),
            Keys::new(&format!("/idra-test/{}/", unique("idle"))),
        ),
    };
    let counting = Arc::new(Counting {
        inner,
        prefix: keys.prefix().to_string(),
        tally: Mutex::new(Tally::new()),
    });
    let store: Arc<dyn Store> = counting.clone();
    let cipher = Cipher::from_key_file(&dir.path().join("secret.key")).unwrap();
    for (id, db) in [("src", src), ("dst", dst)] {
        put_datasource(store.as_ref(), &keys, &cipher, id, db).await;
    }
    Some(Setup {
        store,
        counting,
        keys,
        cipher,
        _dir: dir,
    })
}

impl Setup {
    fn agent(&self) -> ClusterAgent {
        ClusterAgent {
            store: self.store.clone(),
            keys: self.keys.clone(),
            cipher: self.cipher.clone(),
            lease_ttl: 5,
            address: String::new(),
        }
    }

    async fn add(&self, cfg: &SyncConfig) {
        self.store
            .put(&self.keys.sync(&cfg.id), encode(cfg), None)
            .await
            .unwrap();
    }

    async fn status(&self, id: &str) -> Option<SyncStatus> {
        let key = self.keys.status(id);
        let kv = self.counting.inner.get(&key).await.unwrap()?;
        Some(decode(&key, &kv.value).unwrap())
    }

    async fn request_run(&self, id: &str) {
        self.counting
            .inner
            .put(&self.keys.run_request(id), encode(&Utc::now()), None)
            .await
            .unwrap();
    }

    async fn run_requested(&self, id: &str) -> bool {
        self.counting
            .inner
            .get(&self.keys.run_request(id))
            .await
            .unwrap()
            .is_some()
    }
}

async fn has_rows(db: &Db, table: &str, n: i64) -> bool {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = '{table}'"
    ))
    .await
        > 0
        && db.count(table).await == n
}

fn print_per_minute(what: &str, t: &Tally, window: Duration) {
    let per_minute = 60.0 / window.as_secs_f64();
    let total: u64 = t.values().sum();
    println!(
        "{what}: {total} store operations in {:.1} s ({:.0} per minute)",
        window.as_secs_f64(),
        total as f64 * per_minute
    );
    for ((op, family), count) in t {
        println!(
            "  {op:>10} {family:<14} {count:>5}  ({:.0}/min)",
            *count as f64 * per_minute
        );
    }
}

/// A caught-up sync polling every second: its idle runs write no status and nothing polls
/// its run-request key; yet it keeps polling (new rows arrive within the poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_sync_writes_no_status_and_polls_no_run_request() {
    idle_sync(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_sync_on_etcd_writes_no_status_and_polls_no_run_request() {
    idle_sync(Backend::Etcd).await;
}

async fn idle_sync(backend: Backend) {
    let (src, dst) = (Db::sqlite(), Db::sqlite());
    let Some(t) = setup(&src, &dst, backend, "idle_sync").await else {
        return;
    };
    let s = unique("idle");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 20, minute).await;
    let cfg = sync("idle", &s, "copied", SyncMode::ById, WriteMode::Insert);
    assert_eq!(cfg.poll_interval_secs, 1);
    t.add(&cfg).await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(t.agent().run(stop_rx));

    eventually(
        Duration::from_secs(30),
        "20 rows copied and the sync idle",
        || async {
            has_rows(&dst, "copied", 20).await
                && t.status(&cfg.id)
                    .await
                    .is_some_and(|st| st.state == SyncState::Idle && st.rows == 20)
        },
    )
    .await;

    // Measure a quiet window of several polls.
    let window = Duration::from_secs(6);
    let before = t.counting.snapshot();
    let began = Instant::now();
    tokio::time::sleep(window).await;
    let idle = since(&before, &t.counting.snapshot());
    print_per_minute("one idle sync (poll 1 s)", &idle, began.elapsed());

    // It did poll: each run reads both data sources (one run a second).
    assert!(
        n(&idle, "get", "datasources") >= 2 * 3,
        "the sync kept polling: {idle:?}"
    );
    assert_eq!(
        n(&idle, "put", "status"),
        0,
        "idle runs write no status: {idle:?}"
    );
    assert_eq!(
        all_on(&idle, "run_requests"),
        0,
        "nothing polls the run-request key: {idle:?}"
    );
    assert_eq!(
        all_on(&idle, "runs"),
        0,
        "idle runs are no history: {idle:?}"
    );

    // Rows copied are reported.
    insert_rows(&src, &s, 21, 25, minute).await;
    eventually(
        Duration::from_secs(10),
        "the 5 new rows and their status",
        || async {
            has_rows(&dst, "copied", 25).await
                && t.status(&cfg.id)
                    .await
                    .is_some_and(|st| st.state == SyncState::Idle && st.rows == 25)
        },
    )
    .await;
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
}

/// "Run now" reaches a sync that polls only hourly within moments, by watch, and the task
/// deletes the request it acted on; nothing reads the request key while waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_arrives_by_watch_without_polling() {
    run_now(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_arrives_by_watch_on_etcd() {
    run_now(Backend::Etcd).await;
}

async fn run_now(backend: Backend) {
    let (src, dst) = (Db::sqlite(), Db::sqlite());
    let Some(t) = setup(&src, &dst, backend, "run_now").await else {
        return;
    };
    let s = unique("runnow");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 20, minute).await;
    let mut cfg = sync("runnow", &s, "copied", SyncMode::ById, WriteMode::Insert);
    cfg.poll_interval_secs = 3600;
    t.add(&cfg).await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(t.agent().run(stop_rx));
    eventually(Duration::from_secs(30), "the first 20 rows", || async {
        has_rows(&dst, "copied", 20).await
            && t.status(&cfg.id)
                .await
                .is_some_and(|st| st.state == SyncState::Idle)
    })
    .await;

    let before = t.counting.snapshot();
    let began = Instant::now();
    for round in 1..=3 {
        let rows = 20 + 5 * round;
        insert_rows(&src, &s, rows - 4, rows, minute).await;
        t.request_run(&cfg.id).await;
        let asked = Instant::now();
        eventually(Duration::from_secs(5), "the run requested", || async {
            has_rows(&dst, "copied", rows).await
        })
        .await;
        println!("run now #{round}: rows after {:?}", asked.elapsed());
        eventually(
            Duration::from_secs(5),
            "the request to be taken",
            || async { !t.run_requested(&cfg.id).await },
        )
        .await;
    }
    let waited = since(&before, &t.counting.snapshot());
    println!(
        "three run requests, {:.1} s: {waited:?}",
        began.elapsed().as_secs_f64()
    );
    assert_eq!(
        n(&waited, "get", "run_requests") + n(&waited, "list", "run_requests"),
        0,
        "run requests arrive by watch, not by reading the key: {waited:?}"
    );
    assert_eq!(
        n(&waited, "delete", "run_requests"),
        3,
        "the task deletes each request it acted on: {waited:?}"
    );
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
}

/// A request written while no agent watched (before it started) is not lost: the agent
/// reads the requests once when its watch starts, and the sync's task takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_request_written_before_the_agent_started_is_taken() {
    let (src, dst) = (Db::sqlite(), Db::sqlite());
    let s = unique("early");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 20, minute).await;
    let t = setup(&src, &dst, Backend::Embedded, "early").await.unwrap();
    let mut cfg = sync("early", &s, "copied", SyncMode::ById, WriteMode::Insert);
    cfg.poll_interval_secs = 3600;
    t.add(&cfg).await;
    t.request_run(&cfg.id).await;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(t.agent().run(stop_rx));
    eventually(Duration::from_secs(30), "the 20 rows", || async {
        has_rows(&dst, "copied", 20).await
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the early request to be taken",
        || async { !t.run_requested(&cfg.id).await },
    )
    .await;
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
}

/// Many syncs starting together do not all run in the same instant: first runs are spread
/// over [0, min(poll, 5 s)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_runs_are_spread() {
    let (src, dst) = (Db::sqlite(), Db::sqlite());
    let t = setup(&src, &dst, Backend::Embedded, "spread")
        .await
        .unwrap();
    const SYNCS: usize = 8;
    let mut ids = Vec::new();
    for i in 0..SYNCS {
        let s = format!("spread_src_{i}");
        create_source(&src, &s).await;
        insert_rows(&src, &s, 1, 3, minute).await;
        let mut cfg = sync(
            "spread",
            &s,
            &format!("spread_dst_{i}"),
            SyncMode::ById,
            WriteMode::Insert,
        );
        cfg.poll_interval_secs = 3600;
        t.add(&cfg).await;
        ids.push(cfg.id);
    }
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(t.agent().run(stop_rx));
    // Each first run copies 3 rows, so it is in the run history with its start time.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut first_runs = loop {
        let mut runs = Vec::new();
        for id in &ids {
            let prefix = t.keys.runs(id);
            if let Some(kv) = t.counting.inner.list_all(&prefix).await.unwrap().first() {
                runs.push(decode::<RunRecord>(&kv.key, &kv.value).unwrap().started_at);
            }
        }
        if runs.len() == ids.len() {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for every first run"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    first_runs.sort();
    let spread = *first_runs.last().unwrap() - *first_runs.first().unwrap();
    println!(
        "{SYNCS} first runs started over {} ms",
        spread.num_milliseconds()
    );
    // Uniform over 5 s, 8 starts all fall within 1 s with a probability below 1e-4.
    assert!(
        spread >= chrono::Duration::seconds(1),
        "first runs started within {} ms of each other",
        spread.num_milliseconds()
    );
    assert!(
        spread < chrono::Duration::seconds(6),
        "jitter is bounded by 5 s"
    );
    let _ = stop.send(true);
    task.await.unwrap().unwrap();
}

/// Single mode (`--config`): idle runs leave the state file alone; new rows still arrive.
#[tokio::test]
async fn single_mode_idle_runs_leave_the_state_file_alone() {
    let (src, dst) = (Db::sqlite(), Db::sqlite());
    let s = unique("file_idle");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 20, minute).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncs.json");
    let text = serde_json::json!({
        "datasources": [
            {"name": "src", "kind": "sqlite", "connection_string": src.url},
            {"name": "dst", "kind": "sqlite", "connection_string": dst.url}
        ],
        "syncs": [{
            "name": "orders", "source": {"datasource": "src", "table": s}, "destination": {"datasource": "dst", "table": "orders"},
            "mode": "by_id", "write_mode": "insert", "key_columns": ["id"], "batch_size": 10, "poll_interval_secs": 1
        }]
    });
    std::fs::write(&config, text.to_string()).unwrap();
    let state = dir.path().join("state");
    let (name, sqlite_dir) = sqlite_dir_env();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_idra-agent"))
        .env("RUST_LOG", "warn")
        .env(name, sqlite_dir)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let file = state.join("state.json");
    let status_of = |file: &std::path::Path| -> Option<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
        Some(v["status"]["orders"].clone())
    };
    eventually(
        Duration::from_secs(30),
        "20 rows copied and the sync idle",
        || async {
            has_rows(&dst, "orders", 20).await
                && status_of(&file).is_some_and(|st| st["state"] == "idle" && st["rows"] == 20)
        },
    )
    .await;
    let stamp = |file: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(file).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    };
    let before = stamp(&file);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        stamp(&file),
        before,
        "idle runs (one a second) rewrote the state file"
    );
    insert_rows(&src, &s, 21, 25, minute).await;
    eventually(Duration::from_secs(10), "the 5 new rows", || async {
        has_rows(&dst, "orders", 25).await && status_of(&file).is_some_and(|st| st["rows"] == 25)
    })
    .await;
    drop(child);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
