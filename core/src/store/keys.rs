//! The key layout of DESIGN.md, under a configurable prefix (default `/idra/`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new("/idra/")
    }
}

impl Keys {
    /// `prefix` gets a trailing `/` if it lacks one.
    pub fn new(prefix: &str) -> Self {
        let mut prefix = prefix.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self { prefix }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn join(&self, dir: &str, id: &str) -> String {
        format!("{}{dir}/{id}", self.prefix)
    }

    pub fn datasources(&self) -> String {
        self.join("datasources", "")
    }
    pub fn datasource(&self, id: &str) -> String {
        self.join("datasources", id)
    }
    pub fn syncs(&self) -> String {
        self.join("syncs", "")
    }
    pub fn sync(&self, id: &str) -> String {
        self.join("syncs", id)
    }
    pub fn users(&self) -> String {
        self.join("users", "")
    }
    pub fn user(&self, name: &str) -> String {
        self.join("users", name)
    }
    pub fn sessions(&self) -> String {
        self.join("sessions", "")
    }
    pub fn session(&self, id: &str) -> String {
        self.join("sessions", id)
    }
    pub fn agents(&self) -> String {
        self.join("agents", "")
    }
    pub fn agent(&self, id: &str) -> String {
        self.join("agents", id)
    }
    pub fn election(&self) -> String {
        self.join("election", "")
    }
    pub fn assignments(&self) -> String {
        self.join("assignments", "")
    }
    pub fn assignment(&self, sync_id: &str) -> String {
        self.join("assignments", sync_id)
    }
    /// When this store was first used (see `store::fence_epoch`).
    pub fn epoch(&self) -> String {
        format!("{}meta/epoch", self.prefix)
    }
    pub fn sync_lock(&self, sync_id: &str) -> String {
        self.join("locks/syncs", sync_id)
    }
    pub fn named_lock(&self, name: &str) -> String {
        self.join("locks/named", name)
    }
    /// The prefix of every lock of the lock service.
    pub fn named_locks(&self) -> String {
        self.join("locks/named", "")
    }
    pub fn offsets(&self) -> String {
        self.join("offsets", "")
    }
    pub fn offset(&self, sync_id: &str) -> String {
        self.join("offsets", sync_id)
    }
    /// `offset_changes/<sync-id>/<time>`: who changed an offset by hand, and how.
    pub fn offset_changes(&self, sync_id: &str) -> String {
        self.join("offset_changes", &format!("{sync_id}/"))
    }
    /// `runs/<sync-id>/<start time>`: the last runs of a sync.
    pub fn runs(&self, sync_id: &str) -> String {
        self.join("runs", &format!("{sync_id}/"))
    }
    /// `run_requests/<sync-id>`: "Run now" — wakes the sync's agent before its next poll.
    pub fn run_request(&self, sync_id: &str) -> String {
        self.join("run_requests", sync_id)
    }
    pub fn statuses(&self) -> String {
        self.join("status", "")
    }
    pub fn status(&self, sync_id: &str) -> String {
        self.join("status", sync_id)
    }
    pub fn errors(&self) -> String {
        self.join("errors", "")
    }
    /// Marker written together with the first admin, so seeding happens exactly once even
    /// when several servers start at the same time.
    pub fn bootstrapped(&self) -> String {
        self.join("meta", "bootstrapped")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_design() {
        let k = Keys::new("/idra");
        assert_eq!(k.sync("s1"), "/idra/syncs/s1");
        assert_eq!(k.sync_lock("s1"), "/idra/locks/syncs/s1");
        assert_eq!(k.offset("s1"), "/idra/offsets/s1");
        assert_eq!(k.users(), "/idra/users/");
    }
}
