//! Who an agent is: its id (unique per process) and host, as written under `agents/<id>`.

/// Unique per process: host, pid and a random suffix (two agents on one machine differ).
pub fn new_agent_id() -> String {
    let host = hostname();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{host}-{}-{suffix}", std::process::id())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
