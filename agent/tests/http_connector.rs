//! The HTTP API connector against a local axum server that keeps POSTed records per path,
//! serves them by key, cursor or page, demands a bearer token, and fails on request
//! (429 with Retry-After, 500, 400) to exercise the retry rules.

mod support;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use idra_agent::connectors::{self, ConnectionSpec, ReadSpec};
use idra_core::model::{ConnectorKind, Cursor, SyncMode, WriteMode};
use idra_core::secret::Secret;
use serde_json::{json, Value};
use support::compliance::{self, Peer};
use support::{unique, Db};

const TOKEN: &str = "s3cret-token-do-not-log";

#[derive(Default)]
struct Api {
    records: HashMap<String, Vec<Value>>,
    /// Answers to give before serving normally: (status, Retry-After seconds).
    failures: VecDeque<(u16, Option<u64>)>,
    /// Every request's URI, to check no credential ever travels in one.
    uris: Vec<String>,
    requests: usize,
    /// The most records the API puts on one page, whatever `limit` asks for.
    max_page: Option<usize>,
}

type Shared = Arc<Mutex<Api>>;

fn injected(api: &mut Api, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    api.uris.push(uri.to_string());
    api.requests += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return Some((StatusCode::UNAUTHORIZED, "bad token").into_response());
    }
    let (status, retry_after) = api.failures.pop_front()?;
    let mut resp = (
        StatusCode::from_u16(status).unwrap(),
        format!("injected {status}"),
    )
        .into_response();
    if let Some(s) = retry_after {
        resp.headers_mut()
            .insert("retry-after", s.to_string().parse().unwrap());
    }
    Some(resp)
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_default()
}

async fn list(
    State(api): State<Shared>,
    Path(path): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let mut api = api.lock().unwrap();
    if let Some(r) = injected(&mut api, &headers, &uri) {
        return r;
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let limit = limit.min(api.max_page.unwrap_or(usize::MAX));
    let mut all = api.records.get(&path).cloned().unwrap_or_default();
    all.sort_by_key(id_of);
    let page: Vec<Value> = if let Some(p) = q.get("page") {
        let p: usize = p.parse().unwrap();
        all.into_iter().skip((p - 1) * limit).take(limit).collect()
    } else {
        let after: i64 = q
            .get("after")
            .or(q.get("cursor"))
            .and_then(|a| a.parse().ok())
            .unwrap_or(i64::MIN);
        all.into_iter()
            .filter(|r| id_of(r) > after)
            .take(limit)
            .collect()
    };
    let next = (page.len() == limit).then(|| id_of(page.last().unwrap()).to_string());
    Json(json!({"data": {"items": page}, "next_cursor": next})).into_response()
}

async fn append(
    State(api): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut api = api.lock().unwrap();
    if let Some(r) = injected(&mut api, &headers, &uri) {
        return r;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(records)) => {
            api.records.entry(path).or_default().extend(records);
            StatusCode::CREATED.into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "expected a JSON array").into_response(),
    }
}

/// What Test connection reaches: like every path, it needs the token.
async fn root(State(api): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut api = api.lock().unwrap();
    injected(&mut api, &headers, &uri).unwrap_or_else(|| "ok".into_response())
}

async fn serve() -> (String, Shared) {
    let api: Shared = Arc::default();
    let app = Router::new()
        .route("/api/{*path}", get(list).post(append))
        .route("/api", get(root))
        .route("/api/", get(root))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/api"), api)
}

fn spec(base: &str, token: &str, options: &[(&str, &str)]) -> ConnectionSpec {
    let mut o: BTreeMap<String, String> = BTreeMap::from([
        ("records_path".to_string(), "data.items".to_string()),
        ("retry_base_ms".to_string(), "1".to_string()),
    ]);
    for (k, v) in options {
        o.insert(k.to_string(), v.to_string());
    }
    ConnectionSpec {
        kind: ConnectorKind::Http,
        connection_string: base.into(),
        options: o,
        secrets: BTreeMap::from([("password".to_string(), Secret::new(token))]),
    }
}

#[tokio::test]
async fn http_api_passes_the_compliance_harness() {
    let (base, api) = serve().await;
    let peer = Peer {
        label: "http",
        source: spec(&base, TOKEN, &[]),
        destination: spec(&base, TOKEN, &[]),
        bad_credentials: Some(spec(&base, "wrong-token", &[("max_retries", "0")])),
        fresh: Box::new(|| unique("path")),
        declare_schema: true,
        exact_types: true,
        millisecond_timestamps: false,
    };
    compliance::check_all(&peer).await;
    let api = api.lock().unwrap();
    assert!(
        api.uris.iter().all(|u| !u.contains(TOKEN)),
        "a credential travelled in a URL"
    );
}

fn orders(n: i64) -> Value {
    Value::Array(
        (1..=n)
            .map(|id| json!({"id": id, "name": format!("order {id}")}))
            .collect(),
    )
}

fn read_spec(path: &str) -> ReadSpec {
    ReadSpec {
        table: Some(path.into()),
        query: None,
        key: "id".into(),
        timestamp: None,
        settle_before: None,
        snapshot: false,
    }
}

#[tokio::test]
async fn retries_honour_retry_after_and_stop_on_client_errors() {
    let (base, api) = serve().await;
    api.lock()
        .unwrap()
        .records
        .insert("orders".into(), orders(3).as_array().unwrap().clone());
    let source = connectors::open_source(&spec(&base, TOKEN, &[("max_retries", "3")])).unwrap();
    let rs = read_spec("orders");
    let columns = source.columns(&rs).await.unwrap();

    // A 429 asking for 1 s, then a 500 (backed off by 1 ms): the read still succeeds, and
    // not before the server's second has passed.
    api.lock().unwrap().failures = VecDeque::from([(429, Some(1)), (500, None)]);
    let began = Instant::now();
    let read = source
        .read(&rs, &columns, &Cursor::Start, 10)
        .await
        .unwrap();
    assert_eq!(read.rows.num_rows(), 3);
    assert!(
        began.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );

    // More 500s than retries: a retryable error naming the status, no credential in it.
    api.lock().unwrap().failures = VecDeque::from([(500, None); 4]);
    let e = source
        .read(&rs, &columns, &Cursor::Start, 10)
        .await
        .unwrap_err();
    assert!(e.is_retryable() && e.message.contains("500"), "{e}");
    assert!(!e.message.contains(TOKEN));

    // A 400 is the user's to fix: no retry, the API's message shown.
    let before = api.lock().unwrap().requests;
    api.lock().unwrap().failures = VecDeque::from([(400, None)]);
    let e = source
        .read(&rs, &columns, &Cursor::Start, 10)
        .await
        .unwrap_err();
    assert!(
        !e.is_retryable() && e.message.contains("injected 400"),
        "{e}"
    );
    assert_eq!(
        api.lock().unwrap().requests,
        before + 1,
        "a 400 was retried"
    );

    // The destination retries a 503 and delivers the batch once.
    api.lock().unwrap().failures = VecDeque::from([(503, None)]);
    let lite = Db::sqlite();
    let src = unique("orders");
    support::create_source(&lite, &src).await;
    support::insert_rows(&lite, &src, 1, 5, support::minute).await;
    let mut h = support::Harness::new(
        support::sync("to_api", &src, "sink", SyncMode::ById, WriteMode::Insert),
        &lite,
        &lite,
    );
    h.runner.job.destination = spec(&base, TOKEN, &[("max_batch", "2")]);
    h.runner.run_once().await.unwrap();
    let sink = api.lock().unwrap().records.get("sink").cloned().unwrap();
    let ids: Vec<i64> = sink.iter().map(id_of).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5], "every row once, in order");
}

#[tokio::test]
async fn cursor_and_page_pagination_copy_everything() {
    let (base, api) = serve().await;
    api.lock()
        .unwrap()
        .records
        .insert("events".into(), orders(25).as_array().unwrap().clone());
    for options in [
        vec![("pagination", "cursor")],
        vec![("pagination", "page"), ("first_page", "1")],
    ] {
        let lite = Db::sqlite();
        let dst = unique("events");
        let mut h = support::Harness::new(
            support::sync(
                "from_api",
                "events",
                &dst,
                SyncMode::ById,
                WriteMode::Upsert,
            ),
            &lite,
            &lite,
        );
        h.runner.job.source = spec(&base, TOKEN, &options);
        h.sync_until(&lite, &dst, 25).await;
        // Caught up: another run re-reads at most the last page and duplicates nothing.
        h.runner.run_once().await.unwrap();
        assert_eq!(lite.count(&dst).await, 25, "{options:?}");
        assert_eq!(lite.duplicates(&dst).await, 0, "{options:?}");
    }
}

/// Review 15: an API that serves fewer records per page than the batch size asks for made
/// every page look like the last one, so the sync never left page 1.
#[tokio::test]
async fn page_pagination_moves_on_when_the_api_caps_its_page_size() {
    let (base, api) = serve().await;
    {
        let mut api = api.lock().unwrap();
        api.records
            .insert("capped".into(), orders(25).as_array().unwrap().clone());
        api.max_page = Some(4);
    }
    let lite = Db::sqlite();
    let dst = unique("capped");
    let mut h = support::Harness::new(
        support::sync("capped", "capped", &dst, SyncMode::ById, WriteMode::Upsert),
        &lite,
        &lite,
    );
    h.runner.job.source = spec(&base, TOKEN, &[("pagination", "page"), ("first_page", "1")]);
    h.sync_until(&lite, &dst, 25).await;
    assert_eq!(lite.duplicates(&dst).await, 0);
}

#[tokio::test]
async fn bad_configuration_names_the_option() {
    let (base, api) = serve().await;
    api.lock()
        .unwrap()
        .records
        .insert("orders".into(), orders(2).as_array().unwrap().clone());
    let source =
        connectors::open_source(&spec(&base, TOKEN, &[("records_path", "items")])).unwrap();
    let e = source.columns(&read_spec("orders")).await.unwrap_err();
    assert!(e.message.contains("records_path"), "{e}");
    let source = connectors::open_source(&spec(&base, TOKEN, &[])).unwrap();
    let e = source
        .columns(&read_spec("nothing_here"))
        .await
        .unwrap_err();
    assert!(e.message.contains("schema"), "{e}");
    let e = source
        .columns(&ReadSpec {
            key: "order_id".into(),
            ..read_spec("orders")
        })
        .await
        .unwrap_err();
    assert!(e.message.contains("order_id"), "{e}");
}
