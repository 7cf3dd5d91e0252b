use serde::{Deserialize, Serialize};

pub type LeaseId = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision at which the key was created; the fencing token of a lock key.
    pub create_revision: i64,
    pub mod_revision: i64,
    /// Number of writes since creation.
    pub version: i64,
    /// 0 when the key has no lease.
    pub lease: LeaseId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Greater,
    Less,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    Value(Vec<u8>),
    /// 0 means "the key does not exist".
    CreateRevision(i64),
    ModRevision(i64),
    Version(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub key: String,
    pub op: CompareOp,
    pub target: CompareTarget,
}

impl Compare {
    pub fn value(key: &str, value: Vec<u8>) -> Self {
        Self::new(key, CompareOp::Equal, CompareTarget::Value(value))
    }
    pub fn mod_revision(key: &str, revision: i64) -> Self {
        Self::new(key, CompareOp::Equal, CompareTarget::ModRevision(revision))
    }
    pub fn create_revision(key: &str, revision: i64) -> Self {
        Self::new(
            key,
            CompareOp::Equal,
            CompareTarget::CreateRevision(revision),
        )
    }
    pub fn missing(key: &str) -> Self {
        Self::create_revision(key, 0)
    }
    pub fn exists(key: &str) -> Self {
        Self::new(key, CompareOp::Greater, CompareTarget::CreateRevision(0))
    }
    pub fn new(key: &str, op: CompareOp, target: CompareTarget) -> Self {
        Self {
            key: key.to_string(),
            op,
            target,
        }
    }

    /// Evaluates against the current key (None when absent), with etcd's rules: an absent
    /// key has revisions and version 0, and a value compare on it never holds.
    pub fn holds(&self, current: Option<&KeyValue>) -> bool {
        let ord = |a: i64, b: i64| match self.op {
            CompareOp::Equal => a == b,
            CompareOp::NotEqual => a != b,
            CompareOp::Greater => a > b,
            CompareOp::Less => a < b,
        };
        match &self.target {
            CompareTarget::Value(v) => match current {
                None => false,
                Some(kv) => match self.op {
                    CompareOp::Equal => &kv.value == v,
                    CompareOp::NotEqual => &kv.value != v,
                    CompareOp::Greater => kv.value.as_slice() > v.as_slice(),
                    CompareOp::Less => kv.value.as_slice() < v.as_slice(),
                },
            },
            CompareTarget::CreateRevision(r) => ord(current.map_or(0, |kv| kv.create_revision), *r),
            CompareTarget::ModRevision(r) => ord(current.map_or(0, |kv| kv.mod_revision), *r),
            CompareTarget::Version(r) => ord(current.map_or(0, |kv| kv.version), *r),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    },
    Delete {
        key: String,
    },
    Get {
        key: String,
    },
}

impl Op {
    pub fn put(key: &str, value: Vec<u8>, lease: Option<LeaseId>) -> Self {
        Op::Put {
            key: key.to_string(),
            value,
            lease,
        }
    }
    pub fn delete(key: &str) -> Self {
        Op::Delete {
            key: key.to_string(),
        }
    }
    pub fn get(key: &str) -> Self {
        Op::Get {
            key: key.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn when(mut self, compares: Vec<Compare>) -> Self {
        self.compares.extend(compares);
        self
    }
    pub fn and_then(mut self, ops: Vec<Op>) -> Self {
        self.success.extend(ops);
        self
    }
    pub fn or_else(mut self, ops: Vec<Op>) -> Self {
        self.failure.extend(ops);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Put { revision: i64 },
    Delete { deleted: i64 },
    Get(Option<KeyValue>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    pub succeeded: bool,
    /// The store revision after the transaction (its own revision when it wrote).
    pub revision: i64,
    /// One result per op of the branch that ran.
    pub results: Vec<OpResult>,
}

impl TxnResponse {
    /// The results of the `Get` ops, in order.
    pub fn into_gets(self) -> Vec<Option<KeyValue>> {
        self.results
            .into_iter()
            .filter_map(|r| match r {
                OpResult::Get(kv) => Some(kv),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub start_after: Option<String>,
    /// 0 means no limit.
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub kvs: Vec<KeyValue>,
    /// More keys follow the last one returned.
    pub more: bool,
    /// The store revision the page was read at.
    pub revision: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// For a delete: the key, an empty value and the revision of the delete as mod_revision.
    pub kv: KeyValue,
}

pub use crate::model::MemberHealth;

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(create: i64) -> KeyValue {
        KeyValue {
            key: "k".into(),
            value: b"v".to_vec(),
            create_revision: create,
            mod_revision: create,
            version: 1,
            lease: 0,
        }
    }

    #[test]
    fn compares_follow_etcd_rules_for_absent_keys() {
        assert!(Compare::missing("k").holds(None));
        assert!(!Compare::missing("k").holds(Some(&kv(3))));
        assert!(Compare::exists("k").holds(Some(&kv(3))));
        assert!(!Compare::value("k", b"v".to_vec()).holds(None));
        assert!(Compare::value("k", b"v".to_vec()).holds(Some(&kv(3))));
        assert!(Compare::create_revision("k", 3).holds(Some(&kv(3))));
    }
}
