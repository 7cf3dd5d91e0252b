//! `/metrics` in Prometheus's text format, read from the Store so that any server replica
//! reports every sync and agent of the deployment.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use idra_core::model::{Assignment, SyncConfig, SyncState, SyncStatus};
use idra_core::service::Services;
use idra_core::store::decode;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn render(s: &Services) -> Result<String, idra_core::store::StoreError> {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    };
    family(
        "idra_sync_rows_copied_total",
        "counter",
        "Rows copied by the sync since it was created.",
    );
    family(
        "idra_sync_rows_per_second",
        "gauge",
        "Rows per second over the sync's last batch.",
    );
    family(
        "idra_sync_lag_seconds",
        "gauge",
        "Age of the newest copied row (timestamp modes).",
    );
    family(
        "idra_sync_batch_seconds",
        "gauge",
        "Duration of the sync's last batch.",
    );
    family(
        "idra_sync_errors",
        "gauge",
        "1 while the sync's last run ended in an error.",
    );
    family(
        "idra_sync_state",
        "gauge",
        "1 for the sync's current state.",
    );
    let mut lines = Vec::new();
    // One listing of every status rather than one read per sync: a round trip each in etcd.
    let statuses: std::collections::HashMap<String, Vec<u8>> = s
        .store
        .list_all(&s.keys.statuses())
        .await?
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    for kv in s.store.list_all(&s.keys.syncs()).await? {
        let Ok(sync) = decode::<SyncConfig>(&kv.key, &kv.value) else {
            continue;
        };
        let key = s.keys.status(&sync.id);
        let status: SyncStatus = match statuses.get(&key) {
            Some(value) => decode(&key, value).unwrap_or_default(),
            None => SyncStatus::default(),
        };
        let labels = format!(
            "sync=\"{}\",sync_id=\"{}\"",
            escape(&sync.name),
            escape(&sync.id)
        );
        lines.push(format!(
            "idra_sync_rows_copied_total{{{labels}}} {}",
            status.rows
        ));
        lines.push(format!(
            "idra_sync_rows_per_second{{{labels}}} {}",
            status.rate
        ));
        if let Some(lag) = status.lag {
            lines.push(format!("idra_sync_lag_seconds{{{labels}}} {lag}"));
        }
        if let Some(b) = status.batch_seconds {
            lines.push(format!("idra_sync_batch_seconds{{{labels}}} {b}"));
        }
        lines.push(format!(
            "idra_sync_errors{{{labels}}} {}",
            u8::from(status.error.is_some())
        ));
        let state = if sync.enabled {
            status.state
        } else {
            SyncState::Paused
        };
        for (name, st) in [
            ("idle", SyncState::Idle),
            ("running", SyncState::Running),
            ("retrying", SyncState::Retrying),
            ("failed", SyncState::Failed),
            ("paused", SyncState::Paused),
        ] {
            lines.push(format!(
                "idra_sync_state{{{labels},state=\"{name}\"}} {}",
                u8::from(state == st)
            ));
        }
    }
    out.push_str(&lines.join("\n"));
    out.push('\n');
    let agents = s.store.list_all(&s.keys.agents()).await?.len();
    let assignments: Vec<Assignment> = s
        .store
        .list_all(&s.keys.assignments())
        .await?
        .iter()
        .filter_map(|kv| decode(&kv.key, &kv.value).ok())
        .collect();
    let leader = idra_core::store::leader(s.store.as_ref(), &s.keys.election()).await?;
    out.push_str("# HELP idra_agents Agents whose lease is alive.\n# TYPE idra_agents gauge\n");
    out.push_str(&format!("idra_agents {agents}\n"));
    out.push_str(
        "# HELP idra_leader 1 while an agent leads (label: its id).\n# TYPE idra_leader gauge\n",
    );
    match leader {
        Some(kv) => out.push_str(&format!(
            "idra_leader{{agent=\"{}\"}} 1\n",
            escape(&String::from_utf8_lossy(&kv.value))
        )),
        None => out.push_str("idra_leader{agent=\"\"} 0\n"),
    }
    out.push_str("# HELP idra_assignment_generation Generation of the newest assignments.\n# TYPE idra_assignment_generation gauge\n");
    out.push_str(&format!(
        "idra_assignment_generation {}\n",
        assignments.iter().map(|a| a.generation).max().unwrap_or(0)
    ));
    out.push_str("# HELP idra_assigned_syncs Syncs assigned to each agent.\n# TYPE idra_assigned_syncs gauge\n");
    let mut per: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for a in &assignments {
        *per.entry(a.agent.as_str()).or_default() += 1;
    }
    for (agent, n) in per {
        out.push_str(&format!(
            "idra_assigned_syncs{{agent=\"{}\"}} {n}\n",
            escape(agent)
        ));
    }
    Ok(out)
}

pub async fn metrics(State(s): State<Services>) -> Response {
    match render(&s).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("# the store is unreachable: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
