//! The embedded store (single mode's default) keeps every acknowledged write across many
//! log compactions, a clean restart and a `kill -9`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use idra_core::store::{EmbeddedStore, Store};

/// More than two compactions' worth (the log is folded every 4,096 records).
const WRITES: usize = 9_000;

fn key(i: usize) -> String {
    format!("/t/k{i:06}")
}

fn value(i: usize, round: usize) -> Vec<u8> {
    format!("v{i}-r{round}").into_bytes()
}

/// Key `i` was written in round 0, keys divisible by 7 overwritten in round 1 and keys
/// divisible by 11 deleted after that.
async fn write_history(store: &EmbeddedStore, n: usize, mut acked: impl FnMut(usize)) {
    for i in 0..n {
        store.put(&key(i), value(i, 0), None).await.unwrap();
        if i % 7 == 0 {
            store.put(&key(i), value(i, 1), None).await.unwrap();
        }
        if i % 11 == 0 {
            store.delete(&key(i)).await.unwrap();
        }
        acked(i);
    }
}

async fn assert_history(store: &EmbeddedStore, n: usize) {
    for i in 0..n {
        let got = store.get(&key(i)).await.unwrap().map(|kv| kv.value);
        let want = if i % 11 == 0 {
            None
        } else if i % 7 == 0 {
            Some(value(i, 1))
        } else {
            Some(value(i, 0))
        };
        assert_eq!(got, want, "key {} after reopening", key(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_survives_compactions_and_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).await.unwrap();
    write_history(&store, WRITES, |_| {}).await;
    assert_history(&store, WRITES).await;
    store.close().await;

    let reopened = EmbeddedStore::open(dir.path())
        .await
        .expect("the store opens after a clean stop");
    assert_history(&reopened, WRITES).await;
    // And once more: the reopened store compacts and appends correctly too.
    write_history(&reopened, 100, |_| {}).await;
    reopened.close().await;
    let again = EmbeddedStore::open(dir.path()).await.unwrap();
    assert_history(&again, WRITES).await;
}

/// The child half of [`every_acknowledged_write_survives_kill_9`]: writes until killed,
/// printing each index once its writes returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by every_acknowledged_write_survives_kill_9"]
async fn crash_writer() {
    let dir = std::env::var("IDRA_CRASH_WRITER_DIR").expect("IDRA_CRASH_WRITER_DIR");
    let store = EmbeddedStore::open(std::path::Path::new(&dir))
        .await
        .unwrap();
    write_history(&store, usize::MAX, |i| println!("acked {i}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_writer", "--ignored", "--nocapture"])
        .env("IDRA_CRASH_WRITER_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Past the first compaction, at a moment of the writer's own choosing.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last_acked = None;
    for line in lines {
        if let Some(i) = line.unwrap().strip_prefix("acked ") {
            let i: usize = i.parse().unwrap();
            last_acked = Some(i);
            if i >= 5_000 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the writer is too slow");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let acked = last_acked.expect("the writer acknowledged writes") + 1;

    let store = EmbeddedStore::open(dir.path())
        .await
        .expect("the store opens after kill -9");
    assert_history(&store, acked).await;
}
