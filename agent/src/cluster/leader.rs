//! The leader: elected among the agents, it watches agents and syncs and writes
//! `assignments/` as a difference, in transactions guarded by its leadership.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use idra_core::model::{Assignment, SyncConfig};
use idra_core::store::{
    self, decode, encode, Keys, Leadership, LeaseId, Op, Store, StoreError, Txn,
};
use tokio::sync::watch;

use super::assign::{rebalance, Plan};

pub const RECONCILE_EVERY: Duration = Duration::from_millis(300);

fn suffix<'a>(key: &'a str, prefix: &str) -> &'a str {
    key.strip_prefix(prefix).unwrap_or(key)
}

/// The current assignments and the highest generation among them.
pub async fn current_assignments(
    store: &dyn Store,
    keys: &Keys,
) -> Result<(Plan, u64), StoreError> {
    let mut plan = Plan::new();
    let mut generation = 0;
    for kv in store.list_all(&keys.assignments()).await? {
        let a: Assignment = decode(&kv.key, &kv.value)?;
        generation = generation.max(a.generation);
        plan.insert(a.sync_id, a.agent);
    }
    Ok((plan, generation))
}

enum Outcome {
    Unchanged,
    Written,
    NotLeader,
}

async fn reconcile(
    store: &dyn Store,
    keys: &Keys,
    leadership: &Leadership,
) -> Result<Outcome, StoreError> {
    let agents: BTreeSet<String> = store
        .list_all(&keys.agents())
        .await?
        .iter()
        .map(|kv| suffix(&kv.key, &keys.agents()).to_string())
        .collect();
    let mut syncs = BTreeSet::new();
    for kv in store.list_all(&keys.syncs()).await? {
        match decode::<SyncConfig>(&kv.key, &kv.value) {
            Ok(s) if s.enabled => {
                syncs.insert(s.id);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "leader: skipping an unreadable sync"),
        }
    }
    let (current, generation) = current_assignments(store, keys).await?;
    let plan = rebalance(&current, &syncs, &agents);
    if plan == current {
        return Ok(Outcome::Unchanged);
    }
    let generation = generation + 1;
    let mut ops = Vec::new();
    for (sync, agent) in &plan {
        if current.get(sync) != Some(agent) {
            let a = Assignment {
                sync_id: sync.clone(),
                agent: agent.clone(),
                generation,
            };
            ops.push(Op::put(&keys.assignment(sync), encode(&a), None));
        }
    }
    for sync in current.keys().filter(|s| !plan.contains_key(*s)) {
        ops.push(Op::delete(&keys.assignment(sync)));
    }
    // In transactions etcd accepts, each guarded by the leadership. A sync has one
    // assignment key, so a reader sees it on the old agent or the new one, never both, and
    // the sync's lock keeps two agents from running it while the chunks land.
    for chunk in ops.chunks(store::MAX_TXN_OPS) {
        let resp = store
            .txn(
                Txn::new()
                    .when(vec![leadership.still_leader()])
                    .and_then(chunk.to_vec()),
            )
            .await?;
        if !resp.succeeded {
            return Ok(Outcome::NotLeader);
        }
    }
    tracing::info!(
        generation,
        syncs = plan.len(),
        agents = agents.len(),
        "leader: new assignments"
    );
    Ok(Outcome::Written)
}

/// Campaigns, then leads until `stop` flips or leadership is lost (then campaigns again).
pub async fn run(
    store: Arc<dyn Store>,
    keys: Keys,
    agent_id: String,
    lease: LeaseId,
    mut stop: watch::Receiver<bool>,
) {
    let election = keys.election();
    loop {
        let leadership = tokio::select! {
            l = store::campaign(store.as_ref(), &election, lease, agent_id.as_bytes()) => match l {
                Ok(l) => l,
                Err(StoreError::LeaseNotFound(_)) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "campaign failed; retrying");
                    tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => continue, _ = stop.changed() => return }
                }
            },
            _ = stop.changed() => return,
        };
        tracing::info!(agent = %agent_id, "elected leader");
        loop {
            match reconcile(store.as_ref(), &keys, &leadership).await {
                Ok(Outcome::NotLeader) => {
                    tracing::warn!("no longer the leader");
                    break;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "leader: reconcile failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(RECONCILE_EVERY) => {}
                _ = stop.changed() => {
                    let _ = store::resign(store.as_ref(), &leadership).await;
                    return;
                }
            }
        }
    }
}
