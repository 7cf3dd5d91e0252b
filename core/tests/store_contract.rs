//! The Store contract: every case runs against the embedded store and against a real etcd
//! (`IDRA_TEST_ETCD=http://127.0.0.1:23790`, started by `make test`). Without that variable
//! the etcd half prints a visible `skipped:` line — or fails when `IDRA_REQUIRE_ETCD=1`.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use idra_core::store::{
    self, Compare, EmbeddedStore, EtcdOptions, EtcdStore, EventKind, KeepAlive, ListOptions, Op,
    Store, StoreError, Txn,
};

/// Two independent clients of one store, and a prefix no other test uses.
struct Fixture {
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
    p: String,
    _dir: Option<tempfile::TempDir>,
}

fn prefix(test: &str) -> String {
    format!("/idra-test/{test}/{}/", uuid::Uuid::new_v4())
}

async fn embedded(test: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).await.unwrap();
    Fixture {
        a: Arc::new(s.clone()),
        b: Arc::new(s),
        p: prefix(test),
        _dir: Some(dir),
    }
}

/// Writes past the test harness's output capture, so a skip is seen in every run.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

async fn etcd(test: &str) -> Option<Fixture> {
    let Ok(endpoints) = std::env::var("IDRA_TEST_ETCD") else {
        if std::env::var("IDRA_REQUIRE_ETCD").as_deref() == Ok("1") {
            panic!("IDRA_REQUIRE_ETCD=1 but IDRA_TEST_ETCD is not set");
        }
        say(&format!(
            "skipped: store contract `{test}` against etcd: IDRA_TEST_ETCD is not set (`make test` starts etcd and sets it)"
        ));
        return None;
    };
    let connect = || async {
        EtcdStore::connect(EtcdOptions::from_list(&endpoints))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    Some(Fixture {
        a: Arc::new(connect().await),
        b: Arc::new(connect().await),
        p: prefix(test),
        _dir: None,
    })
}

/// Polls `check` until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(super::embedded(stringify!($name)).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn etcd() {
                if let Some(f) = super::etcd(stringify!($name)).await {
                    super::$name(f).await;
                }
            }
        }
    )*};
}

contract!(
    put_get_delete_and_paged_list,
    cas_conflict,
    watch_from_revision_sees_every_later_change_in_order,
    lease_expiry_deletes_attached_keys,
    keep_alive_keeps_a_lease,
    lock_excludes_a_second_client,
    two_acquisitions_on_one_lease_are_distinct,
    a_stores_epoch_is_set_once_and_orders_tokens_across_stores,
    lock_is_released_when_holder_lease_dies,
    fencing_token_strictly_increases,
    election_hands_over_to_the_next_candidate,
);

async fn put_get_delete_and_paged_list(f: Fixture) {
    for i in 0..5 {
        f.a.put(&format!("{}k{i}", f.p), vec![i], None)
            .await
            .unwrap();
    }
    let kv = f.b.get(&format!("{}k3", f.p)).await.unwrap().unwrap();
    assert_eq!(kv.value, vec![3]);
    assert_eq!(kv.version, 1);

    let first =
        f.a.list(
            &f.p,
            ListOptions {
                start_after: None,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.kvs.len(), 2);
    assert!(first.more);
    let second =
        f.a.list(
            &f.p,
            ListOptions {
                start_after: Some(first.kvs[1].key.clone()),
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert!(!second.more);
    let keys: Vec<_> = first
        .kvs
        .iter()
        .chain(&second.kvs)
        .map(|kv| kv.key.clone())
        .collect();
    assert_eq!(
        keys,
        (0..5).map(|i| format!("{}k{i}", f.p)).collect::<Vec<_>>()
    );
    assert_eq!(f.a.list_all(&f.p).await.unwrap().len(), 5);
    assert_eq!(f.b.count(&f.p).await.unwrap(), 5);
    assert_eq!(f.b.count(&format!("{}k1", f.p)).await.unwrap(), 1);
    assert_eq!(f.b.count(&format!("{}none/", f.p)).await.unwrap(), 0);

    // More keys than one transaction takes, with absent ones in between, in the asked order.
    let wanted: Vec<String> = (0..250).map(|i| format!("{}k{}", f.p, 249 - i)).collect();
    let got = f.b.get_many(&wanted).await.unwrap();
    assert_eq!(got.len(), 250);
    for (key, kv) in wanted.iter().zip(&got) {
        let present = ["k0", "k1", "k2", "k3", "k4"].map(|k| format!("{}{k}", f.p));
        match kv {
            Some(kv) => assert_eq!(&kv.key, key),
            None => assert!(!present.contains(key), "{key} exists but came back absent"),
        }
    }
    assert_eq!(got.iter().flatten().count(), 5);

    assert!(f.a.delete(&format!("{}k0", f.p)).await.unwrap());
    assert!(!f.a.delete(&format!("{}k0", f.p)).await.unwrap());
    assert!(f.b.get(&format!("{}k0", f.p)).await.unwrap().is_none());
}

async fn cas_conflict(f: Fixture) {
    let key = format!("{}counter", f.p);
    let r1 = f.a.put(&key, b"1".to_vec(), None).await.unwrap();
    let swap = |value: &'static [u8]| {
        Txn::new()
            .when(vec![Compare::mod_revision(&key, r1)])
            .and_then(vec![Op::put(&key, value.to_vec(), None)])
            .or_else(vec![Op::get(&key)])
    };
    // Both clients read revision r1 and race to write: exactly one wins.
    let (ra, rb) = tokio::join!(f.a.txn(swap(b"from-a")), f.b.txn(swap(b"from-b")));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.succeeded ^ rb.succeeded, "exactly one CAS must win");
    let loser = if ra.succeeded { rb } else { ra.clone() };
    let current = loser.into_gets().pop().flatten().unwrap();
    let winner_value: &[u8] = if ra.succeeded { b"from-a" } else { b"from-b" };
    assert_eq!(current.value, winner_value);
    assert_eq!(current.version, 2);

    // Create-if-absent is a CAS on existence.
    let create = Txn::new()
        .when(vec![Compare::missing(&key)])
        .and_then(vec![Op::put(&key, b"x".to_vec(), None)]);
    assert!(!f.b.txn(create).await.unwrap().succeeded);
    assert_eq!(f.a.get(&key).await.unwrap().unwrap().value, winner_value);
}

async fn watch_from_revision_sees_every_later_change_in_order(f: Fixture) {
    let k1 = format!("{}w/1", f.p);
    let k2 = format!("{}w/2", f.p);
    let r = f.a.put(&k1, b"a".to_vec(), None).await.unwrap();
    f.a.put(&k2, b"b".to_vec(), None).await.unwrap();
    f.b.delete(&k1).await.unwrap();
    f.a.put(&k2, b"c".to_vec(), None).await.unwrap();
    // A change outside the prefix must not appear.
    f.a.put(&format!("{}other", f.p), b"x".to_vec(), None)
        .await
        .unwrap();

    let mut w = f.b.watch(&format!("{}w/", f.p), r).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .expect("history event")
            .unwrap()
            .unwrap();
        seen.push((
            e.kind,
            e.kv.key.clone(),
            e.kv.value.clone(),
            e.kv.mod_revision,
        ));
    }
    let expected = vec![
        (EventKind::Put, k1.clone(), b"a".to_vec()),
        (EventKind::Put, k2.clone(), b"b".to_vec()),
        (EventKind::Delete, k1.clone(), vec![]),
        (EventKind::Put, k2.clone(), b"c".to_vec()),
    ];
    assert_eq!(
        seen.iter()
            .map(|(k, key, v, _)| (*k, key.clone(), v.clone()))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(seen[0].3, r);
    assert!(
        seen.windows(2).all(|p| p[0].3 < p[1].3),
        "revisions increase: {seen:?}"
    );

    // And changes made after the watch started arrive live.
    let live = f.a.put(&k1, b"d".to_vec(), None).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("live event")
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.kind, e.kv.key, e.kv.mod_revision),
        (EventKind::Put, k1, live)
    );
}

async fn lease_expiry_deletes_attached_keys(f: Fixture) {
    let leased = format!("{}leased", f.p);
    let plain = format!("{}plain", f.p);
    let lease = f.a.grant_lease(2).await.unwrap();
    let r = f.a.put(&leased, b"v".to_vec(), Some(lease)).await.unwrap();
    f.a.put(&plain, b"v".to_vec(), None).await.unwrap();
    assert_eq!(f.b.get(&leased).await.unwrap().unwrap().lease, lease);
    let mut w = f.b.watch(&leased, r + 1).await.unwrap();

    let b = f.b.clone();
    let k = leased.clone();
    eventually(
        Duration::from_secs(10),
        "leased key deleted on expiry",
        || {
            let b = b.clone();
            let k = k.clone();
            async move { b.get(&k).await.unwrap().is_none() }
        },
    )
    .await;
    let e = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.kind, e.kv.key.as_str()),
        (EventKind::Delete, leased.as_str())
    );
    assert!(
        f.a.get(&plain).await.unwrap().is_some(),
        "keys without the lease stay"
    );
    let ka = f.a.keep_alive(lease).await;
    assert!(matches!(ka, Err(StoreError::LeaseNotFound(_))), "{ka:?}");
    // Writing on a dead lease is refused, not silently unleased.
    assert!(f.a.put(&leased, b"v".to_vec(), Some(lease)).await.is_err());
}

async fn keep_alive_keeps_a_lease(f: Fixture) {
    let key = format!("{}kept", f.p);
    let ka = KeepAlive::start(f.a.clone(), 2).await.unwrap();
    f.a.put(&key, b"v".to_vec(), Some(ka.lease)).await.unwrap();
    // Twice the TTL later the key must still be there, at every look.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert!(
            f.b.get(&key).await.unwrap().is_some(),
            "kept-alive key vanished"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!ka.is_lost());
    ka.revoke(f.a.as_ref()).await.unwrap();
    assert!(
        f.b.get(&key).await.unwrap().is_none(),
        "revoke deletes at once"
    );
}

async fn lock_excludes_a_second_client(f: Fixture) {
    let key = format!("{}locks/syncs/s1", f.p);
    let la = f.a.grant_lease(30).await.unwrap();
    let lb = f.b.grant_lease(30).await.unwrap();
    let ga = store::try_lock(f.a.as_ref(), &key, "agent-a", la)
        .await
        .unwrap()
        .expect("free lock");
    assert!(store::try_lock(f.b.as_ref(), &key, "agent-b", lb)
        .await
        .unwrap()
        .is_none());
    // A second acquisition on the holder's own lease is another acquisition: refused while
    // the first holds (two tasks of one agent must not share a lock and its token).
    assert!(
        store::try_lock(f.a.as_ref(), &key, "agent-a", la)
            .await
            .unwrap()
            .is_none(),
        "a second acquisition on the same lease must wait"
    );
    assert_eq!(
        store::lock_holder(&f.b.get(&key).await.unwrap().unwrap().value),
        "agent-a"
    );

    let b = f.b.clone();
    let k = key.clone();
    let mut waiter = tokio::spawn(async move { store::lock(b.as_ref(), &k, "agent-b", lb).await });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut waiter)
            .await
            .is_err(),
        "B must not get the lock while A holds it"
    );
    assert!(store::unlock(f.a.as_ref(), &ga).await.unwrap());
    let gb = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("B acquires after A unlocks")
        .unwrap()
        .unwrap();
    assert!(gb.fence > ga.fence);
    // A's fenced commit now fails; B's succeeds.
    let commit = |g: &store::LockGuard| {
        Txn::new().when(vec![g.still_held()]).and_then(vec![Op::put(
            &format!("{}offsets/s1", f.p),
            g.fence.to_string().into_bytes(),
            None,
        )])
    };
    assert!(!f.a.txn(commit(&ga)).await.unwrap().succeeded);
    assert!(f.b.txn(commit(&gb)).await.unwrap().succeeded);
    assert!(
        !store::unlock(f.a.as_ref(), &ga).await.unwrap(),
        "a stale guard cannot unlock"
    );
}

/// One agent, two tasks for the same sync (an edit restarts it): the second waits for the
/// first to release, gets its own token, and the first's late unlock cannot free it.
async fn two_acquisitions_on_one_lease_are_distinct(f: Fixture) {
    let key = format!("{}locks/syncs/s4", f.p);
    let lease = f.a.grant_lease(30).await.unwrap();
    let first = store::lock(f.a.as_ref(), &key, "agent-a", lease)
        .await
        .unwrap();
    let a = f.a.clone();
    let k = key.clone();
    let mut second =
        tokio::spawn(async move { store::lock(a.as_ref(), &k, "agent-a", lease).await });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut second)
            .await
            .is_err(),
        "the second acquisition must wait for the first"
    );
    assert!(store::unlock(f.a.as_ref(), &first).await.unwrap());
    let second = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the second acquires after the first releases")
        .unwrap()
        .unwrap();
    assert!(second.fence > first.fence);
    assert!(
        !store::unlock(f.a.as_ref(), &first).await.unwrap(),
        "the first acquisition cannot release the second's lock"
    );
    assert!(f.b.get(&key).await.unwrap().is_some(), "still locked");
}

/// A new store counts revisions from 1 again; its epoch, written once when it is first used,
/// puts its tokens above every token of an earlier store.
async fn a_stores_epoch_is_set_once_and_orders_tokens_across_stores(f: Fixture) {
    let key = format!("{}meta/epoch", f.p);
    let epoch = store::fence_epoch(f.a.as_ref(), &key).await.unwrap();
    assert!(epoch > 0);
    assert_eq!(store::fence_epoch(f.b.as_ref(), &key).await.unwrap(), epoch);
    let guard = |fence| store::LockGuard {
        key: "k".into(),
        fence,
        lease: 1,
    };
    // Within a store, tokens order like revisions.
    assert!(guard(8).token(epoch) > guard(7).token(epoch));
    // An old store's late revision loses to a new store's first one.
    assert!(guard(1).token(epoch + 1) > guard(1 << 38).token(epoch));
    // And every token beats the raw revisions destinations kept before epochs existed.
    assert!(guard(1).token(epoch) > 1 << 38);
}

async fn lock_is_released_when_holder_lease_dies(f: Fixture) {
    let key = format!("{}locks/syncs/s2", f.p);
    let dying = f.a.grant_lease(2).await.unwrap();
    let ga = store::lock(f.a.as_ref(), &key, "agent-a", dying)
        .await
        .unwrap();
    let lb = f.b.grant_lease(30).await.unwrap();
    let started = Instant::now();
    let gb = tokio::time::timeout(
        Duration::from_secs(10),
        store::lock(f.b.as_ref(), &key, "agent-b", lb),
    )
    .await
    .expect("lock freed by lease expiry")
    .unwrap();
    assert!(gb.fence > ga.fence);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "B waited for the expiry"
    );
    let stale = Txn::new()
        .when(vec![ga.still_held()])
        .and_then(vec![Op::put(
            &format!("{}offsets/s2", f.p),
            b"zombie".to_vec(),
            None,
        )]);
    assert!(
        !f.a.txn(stale).await.unwrap().succeeded,
        "the dead holder's commit is fenced off"
    );
}

async fn fencing_token_strictly_increases(f: Fixture) {
    let key = format!("{}locks/syncs/s3", f.p);
    let mut last = 0;
    for i in 0..5 {
        let client = if i % 2 == 0 { &f.a } else { &f.b };
        let lease = client.grant_lease(30).await.unwrap();
        let g = store::lock(client.as_ref(), &key, &format!("holder-{i}"), lease)
            .await
            .unwrap();
        assert!(g.fence > last, "fence {} after {last}", g.fence);
        // Unrelated writes in between must not matter.
        client
            .put(&format!("{}noise", f.p), vec![i], None)
            .await
            .unwrap();
        last = g.fence;
        assert!(store::unlock(client.as_ref(), &g).await.unwrap());
        client.revoke_lease(lease).await.unwrap();
    }
}

async fn election_hands_over_to_the_next_candidate(f: Fixture) {
    let election = format!("{}election/", f.p);
    let la = f.a.grant_lease(30).await.unwrap();
    let lb = f.b.grant_lease(30).await.unwrap();
    let a = store::campaign(f.a.as_ref(), &election, la, b"agent-a")
        .await
        .unwrap();
    assert_eq!(
        store::leader(f.b.as_ref(), &election)
            .await
            .unwrap()
            .unwrap()
            .value,
        b"agent-a"
    );

    let b = f.b.clone();
    let e = election.clone();
    let mut waiting =
        tokio::spawn(async move { store::campaign(b.as_ref(), &e, lb, b"agent-b").await });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut waiting)
            .await
            .is_err(),
        "B must not lead while A does"
    );
    assert!(store::resign(f.a.as_ref(), &a).await.unwrap());
    let b_lead = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(b_lead.create_revision > a.create_revision);
    assert_eq!(
        store::leader(f.a.as_ref(), &election)
            .await
            .unwrap()
            .unwrap()
            .value,
        b"agent-b"
    );
    // A's leadership guard no longer holds.
    let stale = Txn::new()
        .when(vec![a.still_leader()])
        .and_then(vec![Op::put(
            &format!("{}assignments/x", f.p),
            vec![],
            None,
        )]);
    assert!(!f.a.txn(stale).await.unwrap().succeeded);
}

// Embedded-only: durability is the embedded backend's own job (etcd has its own).

#[tokio::test]
async fn embedded_store_persists_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (rev, lease) = {
        let s = EmbeddedStore::open(dir.path()).await.unwrap();
        s.put("/idra/users/ana", b"1".to_vec(), None).await.unwrap();
        s.put("/idra/users/bob", b"2".to_vec(), None).await.unwrap();
        s.delete("/idra/users/bob").await.unwrap();
        let lease = s.grant_lease(60).await.unwrap();
        let rev = s
            .put("/idra/sessions/x", b"s".to_vec(), Some(lease))
            .await
            .unwrap();
        s.close().await;
        (rev, lease)
    };
    let s = EmbeddedStore::open(dir.path()).await.unwrap();
    assert_eq!(s.get("/idra/users/ana").await.unwrap().unwrap().value, b"1");
    assert!(s.get("/idra/users/bob").await.unwrap().is_none());
    let session = s.get("/idra/sessions/x").await.unwrap().unwrap();
    assert_eq!(session.mod_revision, rev);
    assert_eq!(session.lease, lease);
    // Revisions and lease ids continue, never reused.
    assert!(s.put("/idra/users/cy", vec![], None).await.unwrap() > rev);
    assert!(s.grant_lease(5).await.unwrap() > lease);
    s.keep_alive(lease)
        .await
        .expect("the lease survived the restart");
    s.revoke_lease(lease).await.unwrap();
    s.close().await;
    let s = EmbeddedStore::open(dir.path()).await.unwrap();
    assert!(
        s.get("/idra/sessions/x").await.unwrap().is_none(),
        "revocation is durable"
    );
}

#[tokio::test]
async fn embedded_store_survives_a_torn_last_log_line() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = EmbeddedStore::open(dir.path()).await.unwrap();
        s.put("/k", b"v".to_vec(), None).await.unwrap();
        s.close().await;
    }
    // The open above compacted into the snapshot; write one more change then tear it.
    {
        let s = EmbeddedStore::open(dir.path()).await.unwrap();
        s.put("/k2", b"v".to_vec(), None).await.unwrap();
        s.close().await;
    }
    let wal = dir.path().join("wal.jsonl");
    let mut f = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
    f.write_all(b"{\"changes\":{\"revision\":99,\"chan")
        .unwrap();
    drop(f);
    let s = EmbeddedStore::open(dir.path()).await.unwrap();
    assert!(s.get("/k").await.unwrap().is_some());
}

#[tokio::test]
async fn embedded_store_refuses_a_second_process() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open(dir.path()).await.unwrap();
    let err = EmbeddedStore::open(dir.path())
        .await
        .err()
        .expect("second open must fail");
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("--data-dir"));
}

#[tokio::test]
async fn embedded_watch_before_retained_history_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = EmbeddedStore::open(dir.path()).await.unwrap();
        s.put("/k", b"v".to_vec(), None).await.unwrap();
        s.close().await;
    }
    let s = EmbeddedStore::open(dir.path()).await.unwrap();
    assert!(matches!(
        s.watch("/", 1).await.err(),
        Some(StoreError::Compacted { .. })
    ));
}

#[tokio::test]
async fn unreachable_etcd_is_one_clear_error() {
    let err = EtcdStore::connect(EtcdOptions::from_list("http://127.0.0.1:1"))
        .await
        .err()
        .expect("nothing listens on port 1");
    let msg = err.to_string();
    assert!(msg.contains("http://127.0.0.1:1"), "{msg}");
    assert!(msg.contains("Check that etcd is running"), "{msg}");
}
