//! Idra's agent. For now: membership — registering under `agents/<id>` on a lease so the
//! cluster (and the UI) knows it is alive. The sync engine and coordination build on it.

pub mod membership;
