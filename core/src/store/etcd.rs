//! The cluster-mode backend: a thin mapping of the Store contract onto etcd v3.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client as etcd;
use futures::StreamExt;
use tokio::sync::Mutex;

use super::{
    Compare, CompareOp, CompareTarget, EventKind, KeyValue, LeaseId, ListOptions, ListPage,
    MemberHealth, Op, OpResult, Store, StoreError, Txn, TxnResponse, WatchEvent, WatchStream,
};

/// How to reach etcd. Every field has a flag and an env var in both binaries.
#[derive(Debug, Clone, Default)]
pub struct EtcdOptions {
    pub endpoints: Vec<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// TLS: the CA that signed etcd's certificate (PEM); endpoints must be https://.
    pub ca: Option<std::path::PathBuf>,
    /// TLS client certificate and key (PEM), for etcd's --client-cert-auth.
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

impl EtcdOptions {
    /// The TLS settings, reading the PEM files; errors name the flag to fix.
    fn tls(&self) -> Result<Option<etcd::TlsOptions>, StoreError> {
        if self.ca.is_none() && self.cert.is_none() && self.key.is_none() {
            return Ok(None);
        }
        let endpoints = self.endpoints.join(",");
        let bad = |message: String| StoreError::Unavailable {
            endpoints: endpoints.clone(),
            message,
        };
        let read = |flag: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| bad(format!("{flag} {}: {e}", path.display())))
        };
        let mut tls = etcd::TlsOptions::new();
        if let Some(ca) = &self.ca {
            tls = tls.ca_certificate(etcd::Certificate::from_pem(read("--etcd-ca", ca)?));
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(etcd::Identity::from_pem(
                    read("--etcd-cert", cert)?,
                    read("--etcd-key", key)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(bad(
                    "--etcd-cert and --etcd-key go together: give both or neither".into(),
                ))
            }
        }
        if self.endpoints.iter().any(|e| e.starts_with("http://")) {
            return Err(bad("TLS options need https:// endpoints in --etcd".into()));
        }
        Ok(Some(tls))
    }
}

impl EtcdOptions {
    /// Parses a comma-separated endpoint list (`http://h1:2379,http://h2:2379`).
    pub fn from_list(list: &str) -> Self {
        Self {
            endpoints: list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            ..Self::default()
        }
    }
}

/// Talks to one etcd member at a time and moves to the next one that answers when it
/// stops answering. (A multi-endpoint client keeps sending to a dead member: every
/// request then fails for as long as it stays down.)
pub struct EtcdStore {
    /// The member in use (index into `members`) and its client.
    current: std::sync::Mutex<(usize, etcd::Client)>,
    members: Vec<String>,
    connect_options: etcd::ConnectOptions,
    /// All endpoints, for messages.
    endpoints: String,
    /// One keep-alive stream per lease, reused across refreshes.
    keepers: Mutex<HashMap<LeaseId, (etcd::LeaseKeeper, etcd::LeaseKeepAliveStream)>>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl EtcdStore {
    /// Connects and checks that etcd answers, so a wrong address fails here with one clear
    /// error instead of on the first request.
    pub async fn connect(options: EtcdOptions) -> Result<Self, StoreError> {
        let endpoints = options.endpoints.join(",");
        if options.endpoints.is_empty() {
            return Err(StoreError::Unavailable {
                endpoints,
                message: "no etcd endpoint given (expected e.g. http://127.0.0.1:2379)".into(),
            });
        }
        let mut connect = etcd::ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5));
        if let Some(tls) = options.tls()? {
            connect = connect.with_tls(tls);
        }
        if let Some(user) = &options.user {
            connect = connect.with_user(user.clone(), options.password.clone().unwrap_or_default());
        }
        let mut last = None;
        for (index, endpoint) in options.endpoints.iter().enumerate() {
            match connect_one(endpoint, &connect).await {
                Ok(client) => {
                    return Ok(Self {
                        current: std::sync::Mutex::new((index, client)),
                        members: options.endpoints.clone(),
                        connect_options: connect,
                        endpoints,
                        keepers: Mutex::new(HashMap::new()),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(StoreError::Unavailable {
            endpoints,
            message: last.map(|e| e.to_string()).unwrap_or_default(),
        })
    }

    fn client(&self) -> (usize, etcd::Client) {
        let guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        (guard.0, guard.1.clone())
    }

    /// Moves off member `failed` to the next one that answers (if nobody moved already).
    async fn rotate(&self, failed: usize) {
        if self.client().0 != failed {
            return;
        }
        for step in 1..=self.members.len() {
            let index = (failed + step) % self.members.len();
            if let Ok(client) = connect_one(&self.members[index], &self.connect_options).await {
                let mut guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
                if guard.0 == failed {
                    tracing::warn!(from = %self.members[failed], to = %self.members[index], "etcd member unreachable; switched");
                    *guard = (index, client);
                }
                return;
            }
        }
    }

    /// Runs `f` on the current member; on transport trouble moves to the next member and
    /// tries again, once per member. Requests are retried whole, so they must be safe to
    /// repeat: Idra's writes are puts or compare-guarded transactions.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(etcd::Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd::Error>>,
    {
        let mut last = None;
        for _ in 0..self.members.len().max(1) {
            let (index, client) = self.client();
            match f(client).await {
                Ok(v) => return Ok(v),
                Err(e) => match self.err(e) {
                    unavailable @ StoreError::Unavailable { .. } => {
                        last = Some(unavailable);
                        self.rotate(index).await;
                    }
                    other => return Err(other),
                },
            }
        }
        Err(last.expect("at least one attempt"))
    }

    async fn keep_alive_once(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut keepers = self.keepers.lock().await;
        let (keeper, stream) = match keepers.entry(lease) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let pair = self
                    .call(|mut c| async move { c.lease_keep_alive(lease).await })
                    .await?;
                e.insert(pair)
            }
        };
        let result = async {
            keeper.keep_alive().await?;
            stream.message().await
        }
        .await;
        match result {
            Ok(Some(resp)) if resp.ttl() > 0 => Ok(()),
            Ok(_) => {
                keepers.remove(&lease);
                Err(StoreError::LeaseNotFound(lease))
            }
            Err(e) => {
                keepers.remove(&lease);
                match self.err(e) {
                    StoreError::LeaseNotFound(_) => Err(StoreError::LeaseNotFound(lease)),
                    unavailable @ StoreError::Unavailable { .. } => {
                        // The next keep-alive opens a stream to a member that answers.
                        let (index, _) = self.client();
                        drop(keepers);
                        self.rotate(index).await;
                        Err(unavailable)
                    }
                    other => Err(other),
                }
            }
        }
    }

    fn err(&self, e: etcd::Error) -> StoreError {
        // etcd reports a dead lease both as a gRPC status and as a keep-alive error.
        if e.to_string().contains("lease not found") {
            return StoreError::LeaseNotFound(0);
        }
        match &e {
            etcd::Error::GRpcStatus(status)
                // gRPC codes: 3 invalid argument, 5 not found, 7 permission denied,
                // 9 failed precondition, 16 unauthenticated. The rest are transport trouble.
                if matches!(status.code() as i32, 3 | 5 | 7 | 9 | 16) =>
            {
                if status.message().contains("compacted") {
                    StoreError::Compacted { revision: 0 }
                } else {
                    StoreError::Rejected(status.message().to_string())
                }
            }
            _ => StoreError::Unavailable {
                endpoints: self.endpoints.clone(),
                message: e.to_string(),
            },
        }
    }
}

/// A client for one member, checked with a status call so a dead member fails here.
async fn connect_one(
    endpoint: &str,
    options: &etcd::ConnectOptions,
) -> Result<etcd::Client, etcd::Error> {
    let mut client = etcd::Client::connect([endpoint], Some(options.clone())).await?;
    client.status().await?;
    Ok(client)
}

fn to_kv(kv: &etcd::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    }
}

fn to_compare(c: &Compare) -> etcd::Compare {
    let op = match c.op {
        CompareOp::Equal => etcd::CompareOp::Equal,
        CompareOp::NotEqual => etcd::CompareOp::NotEqual,
        CompareOp::Greater => etcd::CompareOp::Greater,
        CompareOp::Less => etcd::CompareOp::Less,
    };
    let key = c.key.as_bytes().to_vec();
    match &c.target {
        CompareTarget::Value(v) => etcd::Compare::value(key, op, v.clone()),
        CompareTarget::CreateRevision(r) => etcd::Compare::create_revision(key, op, *r),
        CompareTarget::ModRevision(r) => etcd::Compare::mod_revision(key, op, *r),
        CompareTarget::Version(r) => etcd::Compare::version(key, op, *r),
    }
}

fn to_op(op: &Op) -> etcd::TxnOp {
    match op {
        Op::Put { key, value, lease } => {
            let options = lease
                .filter(|l| *l != 0)
                .map(|l| etcd::PutOptions::new().with_lease(l));
            etcd::TxnOp::put(key.as_bytes().to_vec(), value.clone(), options)
        }
        Op::Delete { key } => etcd::TxnOp::delete(key.as_bytes().to_vec(), None),
        Op::Get { key } => etcd::TxnOp::get(key.as_bytes().to_vec(), None),
    }
}

/// The first key after every key starting with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Prefix of all 0xff (or empty): range to the end of the keyspace.
    vec![0]
}

#[async_trait]
impl Store for EtcdStore {
    fn backend(&self) -> &'static str {
        "etcd"
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let request = etcd::Txn::new()
            .when(txn.compares.iter().map(to_compare).collect::<Vec<_>>())
            .and_then(txn.success.iter().map(to_op).collect::<Vec<_>>())
            .or_else(txn.failure.iter().map(to_op).collect::<Vec<_>>());
        let resp = self
            .call(|mut c| {
                let request = request.clone();
                async move { c.txn(request).await }
            })
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let results = resp
            .op_responses()
            .into_iter()
            .map(|r| match r {
                etcd::TxnOpResponse::Put(_) => OpResult::Put { revision },
                etcd::TxnOpResponse::Delete(d) => OpResult::Delete {
                    deleted: d.deleted(),
                },
                etcd::TxnOpResponse::Get(g) => OpResult::Get(g.kvs().first().map(to_kv)),
                etcd::TxnOpResponse::Txn(_) => OpResult::Delete { deleted: 0 },
            })
            .collect();
        Ok(TxnResponse {
            succeeded: resp.succeeded(),
            revision,
            results,
        })
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListPage, StoreError> {
        let start = match &options.start_after {
            Some(after) if after.as_str() >= prefix => {
                let mut k = after.as_bytes().to_vec();
                k.push(0);
                k
            }
            _ => prefix.as_bytes().to_vec(),
        };
        let mut get = etcd::GetOptions::new()
            .with_range(prefix_end(prefix))
            .with_sort(etcd::SortTarget::Key, etcd::SortOrder::Ascend);
        if options.limit > 0 {
            get = get.with_limit(options.limit as i64);
        }
        let resp = self
            .call(|mut c| {
                let (start, get) = (start.clone(), get.clone());
                async move { c.get(start, Some(get)).await }
            })
            .await?;
        Ok(ListPage {
            kvs: resp.kvs().iter().map(to_kv).collect(),
            more: resp.more(),
            revision: resp.header().map_or(0, |h| h.revision()),
        })
    }

    async fn count(&self, prefix: &str) -> Result<usize, StoreError> {
        let get = etcd::GetOptions::new()
            .with_range(prefix_end(prefix))
            .with_count_only();
        let resp = self
            .call(|mut c| {
                let (prefix, get) = (prefix.to_string(), get.clone());
                async move { c.get(prefix, Some(get)).await }
            })
            .await?;
        Ok(usize::try_from(resp.count()).unwrap_or(0))
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        let mut options = etcd::WatchOptions::new().with_prefix();
        if from_revision > 0 {
            options = options.with_start_revision(from_revision);
        }
        let stream = self
            .call(|mut c| {
                let options = options.clone();
                let prefix = prefix.to_string();
                async move { c.watch(prefix, Some(options)).await }
            })
            .await?;
        let endpoints = self.endpoints.clone();
        // The stream owns the request side too: dropping it cancels the watch.
        let events = futures::stream::unfold((stream, false), move |(mut stream, done)| {
            let endpoints = endpoints.clone();
            async move {
                if done {
                    return None;
                }
                let item: Result<Vec<WatchEvent>, StoreError> = match stream.message().await {
                    Ok(Some(resp)) if resp.compact_revision() > 0 => Err(StoreError::Compacted {
                        revision: resp.compact_revision(),
                    }),
                    Ok(Some(resp)) if resp.canceled() => Err(StoreError::Unavailable {
                        endpoints,
                        message: format!("watch cancelled: {}", resp.cancel_reason()),
                    }),
                    Ok(Some(resp)) => Ok(resp
                        .events()
                        .iter()
                        .filter_map(|e| {
                            let kv = e.kv()?;
                            let kind = match e.event_type() {
                                etcd::EventType::Put => EventKind::Put,
                                etcd::EventType::Delete => EventKind::Delete,
                            };
                            Some(WatchEvent {
                                kind,
                                kv: to_kv(kv),
                            })
                        })
                        .collect()),
                    Ok(None) => return None,
                    Err(e) => Err(StoreError::Unavailable {
                        endpoints,
                        message: e.to_string(),
                    }),
                };
                let failed = item.is_err();
                Some((item, (stream, failed)))
            }
        })
        .flat_map(|item| {
            let out: Vec<Result<WatchEvent, StoreError>> = match item {
                Ok(events) => events.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(out)
        });
        Ok(Box::pin(events))
    }

    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId, StoreError> {
        let resp = self
            .call(|mut c| async move { c.lease_grant(ttl_secs, None).await })
            .await?;
        Ok(resp.id())
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        // A dead member costs one failed attempt: the second goes to the next member.
        match self.keep_alive_once(lease).await {
            Err(StoreError::Unavailable { .. }) => self.keep_alive_once(lease).await,
            other => other,
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.keepers.lock().await.remove(&lease);
        match self
            .call(|mut c| async move { c.lease_revoke(lease).await })
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::LeaseNotFound(_)) => Err(StoreError::LeaseNotFound(lease)),
            Err(other) => Err(other),
        }
    }

    async fn health(&self) -> Vec<MemberHealth> {
        let members = match self
            .call(|mut c| async move { c.member_list().await })
            .await
        {
            Ok(list) => list.members().to_vec(),
            Err(e) => {
                return vec![MemberHealth {
                    name: self.endpoints.clone(),
                    healthy: false,
                    detail: e.to_string(),
                }]
            }
        };
        let mut out = Vec::new();
        for m in members {
            let url = m.client_urls().first().cloned().unwrap_or_default();
            let health = match etcd::Client::connect(
                [url.clone()],
                Some(
                    etcd::ConnectOptions::new()
                        .with_connect_timeout(Duration::from_secs(2))
                        .with_timeout(Duration::from_secs(2)),
                ),
            )
            .await
            {
                Ok(mut c) => match c.status().await {
                    Ok(s) => MemberHealth {
                        name: format!("{} ({url})", m.name()),
                        healthy: true,
                        detail: format!(
                            "{}, raft index {}, db {} bytes",
                            if s.leader() == m.id() {
                                "leader"
                            } else {
                                "follower"
                            },
                            s.raft_index(),
                            s.db_size()
                        ),
                    },
                    Err(e) => MemberHealth {
                        name: format!("{} ({url})", m.name()),
                        healthy: false,
                        detail: e.to_string(),
                    },
                },
                Err(e) => MemberHealth {
                    name: format!("{} ({url})", m.name()),
                    healthy: false,
                    detail: e.to_string(),
                },
            };
            out.push(health);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/idra/"), b"/idra0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }

    #[test]
    fn tls_options_name_the_flag_to_fix() {
        let mut o = EtcdOptions::from_list("https://127.0.0.1:2379");
        o.cert = Some("/nonexistent/client.pem".into());
        let e = o.tls().err().unwrap().to_string();
        assert!(e.contains("--etcd-cert and --etcd-key go together"), "{e}");
        o.key = Some("/nonexistent/client-key.pem".into());
        let e = o.tls().err().unwrap().to_string();
        assert!(e.contains("--etcd-cert /nonexistent/client.pem"), "{e}");
        let mut o = EtcdOptions::from_list("http://127.0.0.1:2379");
        o.ca = Some("/etc/hostname".into());
        assert!(o.tls().err().unwrap().to_string().contains("https://"));
    }

    #[test]
    fn endpoint_list_is_split_and_trimmed() {
        let o = EtcdOptions::from_list("http://a:2379, http://b:2379,");
        assert_eq!(o.endpoints, vec!["http://a:2379", "http://b:2379"]);
    }
}
