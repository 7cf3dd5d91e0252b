//! The in-memory state of the embedded store and the rules every change follows.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::persist::{Change, Persistence, Record, Recovered, SnapshotView};
use crate::store::{
    EventKind, KeyValue, LeaseId, ListOptions, ListPage, Op, OpResult, StoreError, Txn,
    TxnResponse, WatchEvent,
};

/// Watch history kept in memory; older revisions answer `Compacted`.
const MAX_HISTORY: usize = 50_000;

struct Lease {
    ttl: i64,
    deadline: Instant,
}

pub(super) struct State {
    revision: i64,
    next_lease: LeaseId,
    kvs: BTreeMap<String, KeyValue>,
    /// Lease id → TTL, as persisted.
    lease_ttls: BTreeMap<LeaseId, i64>,
    leases: BTreeMap<LeaseId, Lease>,
    history: VecDeque<WatchEvent>,
    /// Lowest revision whose events are all still in `history`.
    history_start: i64,
    persistence: Persistence,
    compact_due: bool,
}

impl State {
    pub(super) fn recover(recovered: Recovered, persistence: Persistence, now: Instant) -> Self {
        // Like etcd after a restart, surviving leases get a full TTL from now: their holders
        // had no chance to keep them alive while the store was down.
        let leases = recovered
            .leases
            .iter()
            .map(|(id, ttl)| {
                (
                    *id,
                    Lease {
                        ttl: *ttl,
                        deadline: now + Duration::from_secs(*ttl as u64),
                    },
                )
            })
            .collect();
        Self {
            revision: recovered.revision,
            next_lease: recovered.next_lease,
            kvs: recovered.kvs,
            lease_ttls: recovered.leases,
            leases,
            history: VecDeque::new(),
            history_start: recovered.revision + 1,
            persistence,
            compact_due: false,
        }
    }

    pub(super) fn revision(&self) -> i64 {
        self.revision
    }

    pub(super) fn key_count(&self) -> usize {
        self.kvs.len()
    }

    pub(super) fn txn(&mut self, txn: Txn) -> Result<(TxnResponse, Vec<WatchEvent>), StoreError> {
        let succeeded = txn.compares.iter().all(|c| c.holds(self.kvs.get(&c.key)));
        let ops = if succeeded { txn.success } else { txn.failure };
        for op in &ops {
            if let Op::Put { lease: Some(l), .. } = op {
                if *l != 0 && !self.leases.contains_key(l) {
                    return Err(StoreError::LeaseNotFound(*l));
                }
            }
        }

        let new_rev = self.revision + 1;
        let mut results = Vec::with_capacity(ops.len());
        let mut changes = Vec::new();
        let mut events = Vec::new();
        let mut undo: Vec<(String, Option<KeyValue>)> = Vec::new();
        for op in ops {
            match op {
                Op::Get { key } => results.push(OpResult::Get(self.kvs.get(&key).cloned())),
                Op::Put { key, value, lease } => {
                    let prev = self.kvs.get(&key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: prev.as_ref().map_or(new_rev, |p| p.create_revision),
                        mod_revision: new_rev,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        lease: lease.unwrap_or(0),
                    };
                    undo.push((key.clone(), prev));
                    changes.push(Change::put(&kv));
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv: kv.clone(),
                    });
                    self.kvs.insert(key, kv);
                    results.push(OpResult::Put { revision: new_rev });
                }
                Op::Delete { key } => match self.kvs.remove(&key) {
                    Some(prev) => {
                        events.push(delete_event(&prev, new_rev));
                        undo.push((key.clone(), Some(prev)));
                        changes.push(Change::Delete { key });
                        results.push(OpResult::Delete { deleted: 1 });
                    }
                    None => results.push(OpResult::Delete { deleted: 0 }),
                },
            }
        }

        if changes.is_empty() {
            return Ok((
                TxnResponse {
                    succeeded,
                    revision: self.revision,
                    results,
                },
                Vec::new(),
            ));
        }
        let record = Record::Changes {
            revision: new_rev,
            changes,
        };
        if let Err(e) = self.persist(&[record]) {
            // Not durable, so it never happened: restore every key in reverse order.
            for (key, prev) in undo.into_iter().rev() {
                match prev {
                    Some(kv) => self.kvs.insert(key, kv),
                    None => self.kvs.remove(&key),
                };
            }
            return Err(e);
        }
        self.revision = new_rev;
        self.remember(&events);
        self.compact_if_due();
        Ok((
            TxnResponse {
                succeeded,
                revision: new_rev,
                results,
            },
            events,
        ))
    }

    pub(super) fn list(&self, prefix: &str, options: &ListOptions) -> ListPage {
        let start = match &options.start_after {
            Some(after) if after.as_str() >= prefix => std::ops::Bound::Excluded(after.clone()),
            _ => std::ops::Bound::Included(prefix.to_string()),
        };
        let mut kvs = Vec::new();
        let mut more = false;
        for (key, kv) in self.kvs.range((start, std::ops::Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if options.limit > 0 && kvs.len() == options.limit {
                more = true;
                break;
            }
            kvs.push(kv.clone());
        }
        ListPage {
            kvs,
            more,
            revision: self.revision,
        }
    }

    pub(super) fn count(&self, prefix: &str) -> usize {
        self.kvs
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .count()
    }

    pub(super) fn history_from(
        &self,
        prefix: &str,
        from_revision: i64,
    ) -> Result<Vec<WatchEvent>, StoreError> {
        let from = if from_revision <= 0 {
            self.revision + 1
        } else {
            from_revision
        };
        if from < self.history_start {
            return Err(StoreError::Compacted {
                revision: self.history_start,
            });
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.kv.mod_revision >= from && e.kv.key.starts_with(prefix))
            .cloned()
            .collect())
    }

    pub(super) fn grant(&mut self, ttl_secs: i64, now: Instant) -> Result<LeaseId, StoreError> {
        let ttl = ttl_secs.max(1);
        let id = self.next_lease;
        self.persist(&[Record::Grant { id, ttl }])?;
        self.next_lease += 1;
        self.lease_ttls.insert(id, ttl);
        self.leases.insert(
            id,
            Lease {
                ttl,
                deadline: now + Duration::from_secs(ttl as u64),
            },
        );
        self.compact_if_due();
        Ok(id)
    }

    pub(super) fn refresh(&mut self, lease: LeaseId, now: Instant) -> Result<(), StoreError> {
        let l = self
            .leases
            .get_mut(&lease)
            .ok_or(StoreError::LeaseNotFound(lease))?;
        if l.deadline <= now {
            // Expired but not swept yet: too late, exactly as if the sweeper had run.
            return Err(StoreError::LeaseNotFound(lease));
        }
        l.deadline = now + Duration::from_secs(l.ttl as u64);
        Ok(())
    }

    pub(super) fn expired_leases(&self, now: Instant) -> Vec<LeaseId> {
        self.leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Ends a lease and deletes its keys in one revision.
    pub(super) fn revoke(&mut self, lease: LeaseId) -> Result<Vec<WatchEvent>, StoreError> {
        if !self.leases.contains_key(&lease) {
            return Err(StoreError::LeaseNotFound(lease));
        }
        let keys: Vec<String> = self
            .kvs
            .values()
            .filter(|kv| kv.lease == lease)
            .map(|kv| kv.key.clone())
            .collect();
        let mut records = Vec::new();
        let new_rev = self.revision + 1;
        if !keys.is_empty() {
            records.push(Record::Changes {
                revision: new_rev,
                changes: keys
                    .iter()
                    .map(|k| Change::Delete { key: k.clone() })
                    .collect(),
            });
        }
        records.push(Record::Revoke { id: lease });
        self.persist(&records)?;
        self.leases.remove(&lease);
        self.lease_ttls.remove(&lease);
        let mut events = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(prev) = self.kvs.remove(&key) {
                events.push(delete_event(&prev, new_rev));
            }
        }
        if !events.is_empty() {
            self.revision = new_rev;
            self.remember(&events);
        }
        self.compact_if_due();
        Ok(events)
    }

    fn persist(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if self.persistence.append(records)? {
            self.compact_due = true;
        }
        Ok(())
    }

    /// Folds the log into a snapshot; called only after a change is applied in memory, so
    /// the snapshot holds it. The change is already durable in the log: a failed compaction
    /// only means a longer replay next time.
    fn compact_if_due(&mut self) {
        if !std::mem::take(&mut self.compact_due) {
            return;
        }
        let view = SnapshotView {
            revision: self.revision,
            next_lease: self.next_lease,
            kvs: &self.kvs,
            leases: &self.lease_ttls,
        };
        if let Err(e) = self.persistence.compact(view) {
            tracing::warn!(error = %e, "embedded store: compaction failed; the log keeps growing");
        }
    }

    fn remember(&mut self, events: &[WatchEvent]) {
        self.history.extend(events.iter().cloned());
        while self.history.len() > MAX_HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.history_start = old.kv.mod_revision + 1;
            }
        }
    }
}

fn delete_event(prev: &KeyValue, revision: i64) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Delete,
        kv: KeyValue {
            key: prev.key.clone(),
            value: Vec::new(),
            create_revision: prev.create_revision,
            mod_revision: revision,
            version: 0,
            lease: prev.lease,
        },
    }
}
