//! Single mode: run the syncs of a file with offsets in a local state file — no etcd, no
//! server. `once` runs each enabled sync until it has caught up, then returns.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Backoff, FileOffsets, OffsetStore, Runner, SyncJob};
use crate::config::{FileConfig, FileDataSource};
use crate::connectors::{ConnectionSpec, ConnectorError};

fn spec_of(d: &FileDataSource) -> ConnectionSpec {
    ConnectionSpec {
        kind: d.kind,
        connection_string: d.connection_string.clone(),
        options: d.options.clone(),
        secrets: d.secrets.clone(),
    }
}

/// Retryable errors in `once` mode are retried this many times before giving up.
const ONCE_RETRIES: u32 = 5;

pub async fn run(
    config: FileConfig,
    state_dir: &Path,
    once: bool,
    shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let offsets: Arc<dyn OffsetStore> =
        Arc::new(FileOffsets::open(state_dir).map_err(|e| e.to_string())?);
    for (id, cursor) in &config.start_offsets {
        if offsets.load(id).await.map_err(|e| e.to_string())?.is_none() {
            let start = idra_core::model::Offset {
                cursor: cursor.clone(),
                fence: 0,
                updated_at: chrono::Utc::now(),
                edited: true,
            };
            offsets
                .commit(id, &start)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let mut tasks = Vec::new();
    for sync in config.syncs.iter().filter(|s| s.enabled) {
        let source = spec_of(
            config
                .datasource(&sync.source.datasource_id)
                .expect("checked when parsed"),
        );
        let destination = spec_of(
            config
                .datasource(&sync.destination.datasource_id)
                .expect("checked when parsed"),
        );
        let job = SyncJob {
            sync: sync.clone(),
            source,
            destination,
            fence: 0,
            agent: None,
        };
        let runner = Runner::new(job, offsets.clone(), shutdown.clone());
        tasks.push(tokio::spawn(drive(runner, once)));
    }
    if tasks.is_empty() {
        return Err("no enabled sync in the file".into());
    }
    let mut failures = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("a sync task panicked: {e}")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

async fn drive(mut runner: Runner, once: bool) -> Result<(), String> {
    let name = runner.job.sync.name.clone();
    let poll = Duration::from_secs(runner.job.sync.poll_interval_secs as u64);
    let mut backoff = Backoff::default();
    let mut shutdown = runner.shutdown.clone();
    // No first-run jitter here (the cluster supervisor spreads its syncs): a file's syncs
    // are few, and an agent restarted after a crash resumes at once, which is also what
    // lets the checker's frequent restarts land faults in the middle of copies.
    // One runner for the sync's whole life: it keeps the last written status, so a run that
    // copies nothing leaves the state file alone.
    loop {
        let wait = match runner.run_once().await {
            Ok(report) => {
                backoff.reset();
                tracing::info!(sync = %name, rows = report.rows, batches = report.batches, "caught up");
                if once {
                    return Ok(());
                }
                poll
            }
            Err(e) => handle_error(&name, e, &mut backoff, once)?,
        };
        if *shutdown.borrow() {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

fn handle_error(
    name: &str,
    e: ConnectorError,
    backoff: &mut Backoff,
    once: bool,
) -> Result<Duration, String> {
    if !e.is_retryable() {
        return Err(format!("sync `{name}` failed: {e}"));
    }
    if once && backoff.attempts() >= ONCE_RETRIES {
        return Err(format!(
            "sync `{name}` failed after {ONCE_RETRIES} retries: {e}"
        ));
    }
    let delay = backoff.next_delay();
    tracing::warn!(sync = %name, error = %e, retry_in = ?delay, "retryable error; backing off");
    Ok(delay)
}
