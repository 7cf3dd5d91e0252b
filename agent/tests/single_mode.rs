//! `idra-agent --config FILE --state-dir DIR --once` as a user runs it, including a crash
//! injected at the worst moment.

mod support;

use std::process::Command;

use support::*;

fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_idra-agent"));
    let (name, dir) = sqlite_dir_env();
    c.env("RUST_LOG", "warn").env(name, dir);
    c
}

fn native_config(src: &Db, dst: &Db, s: &str, d: &str, write_mode: &str) -> String {
    serde_json::json!({
        "datasources": [
            {"name": "src", "kind": kind(src), "connection_string": src.url},
            {"name": "dst", "kind": kind(dst), "connection_string": dst.url}
        ],
        "syncs": [{
            "name": "orders", "source": {"datasource": "src", "table": s}, "destination": {"datasource": "dst", "table": d},
            "mode": "by_id", "write_mode": write_mode, "key_columns": ["id"], "batch_size": 10, "poll_interval_secs": 1
        }]
    })
    .to_string()
}

fn kind(db: &Db) -> &'static str {
    match db.label() {
        "pg" => "postgres",
        "my" => "mysql",
        _ => "sqlite",
    }
}

#[tokio::test]
async fn once_copies_everything_and_exits_zero() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("once");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 45, minute).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncs.json");
    std::fs::write(&config, native_config(&src, &dst, &s, "orders", "insert")).unwrap();
    let out = agent()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
            "--once",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The run may end early while another test holds a transaction open on the server;
    // a second --once picks up the rest.
    let mut n = dst.count("orders").await;
    for _ in 0..20 {
        if n == 45 {
            break;
        }
        let again = agent()
            .args([
                "--config",
                config.to_str().unwrap(),
                "--state-dir",
                dir.path().join("state").to_str().unwrap(),
                "--once",
            ])
            .output()
            .unwrap();
        assert!(again.status.success());
        n = dst.count("orders").await;
    }
    assert_eq!(n, 45);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["offsets"]["orders"]["cursor"]["last_id"], 45);
}

#[tokio::test]
async fn idras_own_json_format_runs() {
    let (src, dst) = (Db::pg(), Db::mysql());
    let s = unique("legacy");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 12, minute).await;
    let d = unique("legacy_copy");
    let config = serde_json::json!([{
        "sync_name": "legacy", "mode": "IdField", "disabled": false,
        "source_connector": {"id": "id", "connector_name": "pg", "connector_source_type": "PostgresGORM",
            "connection_string": src.url, "database": "", "table": s, "query": "", "polling_time": 1,
            "timestamp_field": "", "max_record_batch_size": 5, "save_mode": "Insert", "attributes": {}},
        "destination_connector": {"id": "id", "connector_name": "my", "connector_source_type": "MysqlGORM",
            "connection_string": dst.url, "database": "", "table": d, "query": "", "polling_time": 1,
            "timestamp_field": "", "max_record_batch_size": 5, "save_mode": "Upsert", "attributes": {}}
    }]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idra.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let state = dir.path().join("state");
    eventually(
        std::time::Duration::from_secs(30),
        "all 12 rows",
        || async {
            let out = agent()
                .args([
                    "--config",
                    path.to_str().unwrap(),
                    "--state-dir",
                    state.to_str().unwrap(),
                    "--once",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            dst.count(&d).await == 12
        },
    )
    .await;
}

#[tokio::test]
async fn a_bad_file_fails_with_the_sync_and_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    let bad = native_config(&Db::pg(), &Db::pg(), "t", "t\"; DROP TABLE x; --", "insert");
    std::fs::write(&path, bad).unwrap();
    let out = agent()
        .args([
            "--config",
            path.to_str().unwrap(),
            "--state-dir",
            dir.path().to_str().unwrap(),
            "--once",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sync `orders`: field `destination.table`"),
        "{err}"
    );
}

/// Kills the agent right after the second destination commit, before its offset commit,
/// then runs it again: every row arrives exactly once.
async fn crash_between_destination_and_offset_commit(write_mode: &str) {
    let (src, dst) = (Db::mysql(), Db::pg());
    let s = unique("crash");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 50, minute).await;
    let d = unique("crash_copy");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncs.json");
    std::fs::write(&config, native_config(&src, &dst, &s, &d, write_mode)).unwrap();
    let state = dir.path().join("state");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--once",
    ];

    let crashed = agent()
        .args(args)
        .env(idra_agent::engine::FAULT_ENV, "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&crashed.stderr);
    assert!(
        stderr.contains("aborting after destination commit 2"),
        "the injected fault must be what stopped the agent: {:?}\n{stderr}",
        crashed.status
    );
    assert_eq!(
        dst.count(&d).await,
        20,
        "two batches reached the destination before the crash"
    );
    let state_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("state.json")).unwrap()).unwrap();
    assert_eq!(
        state_json["offsets"]["orders"]["cursor"]["last_id"], 10,
        "the offset lags one batch behind"
    );

    let resumed = agent().args(args).output().unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(dst.count(&d).await, 50);
    assert_eq!(dst.duplicates(&d).await, 0);
    assert_eq!(dst.rows(&d).await, src.rows(&s).await);
    // The primary key, deferred during the insert-mode load, exists once it caught up.
    let pk = dst
        .scalar(&format!(
            "SELECT COUNT(*) FROM pg_index WHERE indrelid = '{d}'::regclass AND indisprimary"
        ))
        .await;
    assert_eq!(pk, 1, "primary key added after the load");
}

#[tokio::test]
async fn crash_after_destination_commit_leaves_no_duplicates_upsert() {
    crash_between_destination_and_offset_commit("upsert").await;
}

#[tokio::test]
async fn crash_after_destination_commit_leaves_no_duplicates_even_in_insert_mode() {
    crash_between_destination_and_offset_commit("insert").await;
}

#[tokio::test]
async fn sigterm_finishes_the_batch_and_leaves_offset_and_rows_in_step() {
    let (src, dst) = (Db::pg(), Db::pg());
    let s = unique("term");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 3000, minute).await;
    let d = unique("term_copy");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncs.json");
    // Tiny batches so the run is still going when the signal arrives.
    std::fs::write(
        &config,
        native_config(&src, &dst, &s, &d, "insert")
            .replace("\"batch_size\":10", "\"batch_size\":5"),
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut child = agent()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    eventually(std::time::Duration::from_secs(30), "the first rows", || async {
        dst.scalar(&format!("SELECT CAST(COUNT(*) AS BIGINT) FROM information_schema.tables WHERE table_name = '{d}'")).await > 0 && dst.count(&d).await > 0
    })
    .await;
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    let copied = dst.count(&d).await;
    let max_id = dst
        .scalar(&format!("SELECT COALESCE(MAX(id), 0) FROM {d}"))
        .await;
    let state_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("state.json")).unwrap()).unwrap();
    assert_eq!(
        state_json["offsets"]["orders"]["cursor"]["last_id"], max_id,
        "the offset is exactly the last committed row"
    );
    assert_eq!(copied, max_id, "no gaps, no duplicates");
    assert_eq!(dst.duplicates(&d).await, 0);
}

/// Review 14: an offset set by hand is where the next run starts — once. A crash after that
/// run's first destination commit must resume from the destination's record, not from the
/// edited offset again (which copied the first batch twice).
#[tokio::test]
async fn a_hand_edited_offset_applies_once_even_across_a_crash() {
    let (src, dst) = (Db::pg(), Db::pg());
    let s = unique("edited");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 10, minute).await;
    let d = unique("edited_copy");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("syncs.json");
    let file = native_config(&src, &dst, &s, &d, "insert")
        .replace("\"batch_size\":10", "\"batch_size\":2");
    std::fs::write(&config, file).unwrap();
    let state = dir.path().join("state");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--once",
    ];
    assert!(agent().args(args).status().unwrap().success());
    assert_eq!(dst.count(&d).await, 10);

    // The rows after 5 went bad at the destination: remove them and re-copy from 5.
    dst.exec(&format!("DELETE FROM {d} WHERE id > 5")).await;
    let path = state.join("state.json");
    let mut state_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    state_json["offsets"]["orders"]["cursor"] = serde_json::json!({"kind": "id", "last_id": 5});
    state_json["offsets"]["orders"]["edited"] = true.into();
    std::fs::write(&path, state_json.to_string()).unwrap();

    let crashed = agent()
        .args(args)
        .env(idra_agent::engine::FAULT_ENV, "1")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&crashed.stderr).contains("aborting after destination commit 1"),
        "{}",
        String::from_utf8_lossy(&crashed.stderr)
    );
    let resumed = agent().args(args).output().unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(dst.count(&d).await, 10);
    assert_eq!(dst.duplicates(&d).await, 0);
}
