//! The HTTP surface driven in-process with `oneshot`, over a real embedded store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use idra_core::secret::Cipher;
use idra_core::service::{
    LoginLimiter, PasswordHashing, Services, FREE_FAILURES_PER_IP, MAX_FAILURES_PER_USER,
};
use idra_core::store::{EmbeddedStore, Keys, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{leptos_options, router, RouterConfig};

/// The connection's peer address, as `run` provides it (`into_make_service_with_connect_info`).
fn peer(ip: &str) -> ConnectInfo<SocketAddr> {
    ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 40_000))
}

struct App {
    router: Router,
    services: Services,
    _dir: tempfile::TempDir,
}

async fn app_with(admin_password: Option<&str>) -> App {
    app_setup(admin_password, |_, _| {}).await
}

/// The app after `setup` changed its services (the limiter's clock, the hashing slots) or
/// its options (trusted proxies).
async fn app_setup(
    admin_password: Option<&str>,
    setup: impl FnOnce(&mut Services, &mut RouterConfig),
) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&dir.path().join("store"))
            .await
            .unwrap(),
    );
    let cipher = Cipher::from_key_file(&dir.path().join("secret.key")).unwrap();
    let mut services = Services::new(store, Keys::default(), cipher)
        .with_probe(Arc::new(idra_agent::probe::ConnectorProbe));
    assert!(services
        .bootstrap(admin_password.map(String::from))
        .await
        .unwrap());
    let site = dir.path().join("site");
    let mut config = RouterConfig::new(leptos_options(
        site.to_str().unwrap(),
        "127.0.0.1:3000".parse().unwrap(),
    ));
    setup(&mut services, &mut config);
    let router = router(services.clone(), config);
    App {
        router,
        services,
        _dir: dir,
    }
}

async fn app() -> App {
    app_with(None).await
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn cookie(&self) -> String {
        let c = self
            .headers
            .get(header::SET_COOKIE)
            .expect("a session cookie")
            .to_str()
            .unwrap();
        c.split(';').next().unwrap().to_string()
    }
}

async fn send_to(router: Router, mut req: Request<Body>) -> Resp {
    if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
        req.extensions_mut().insert(peer("127.0.0.1"));
    }
    // A request that never finishes fails its test by name (a CI run once sat at 0% CPU
    // in one of these tests with nothing printed) instead of stalling the whole suite.
    let what = format!("{} {}", req.method(), req.uri());
    let (status, headers, bytes) = tokio::time::timeout(Duration::from_secs(60), async {
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        (
            status,
            headers,
            resp.into_body().collect().await.unwrap().to_bytes(),
        )
    })
    .await
    .unwrap_or_else(|_| panic!("{what} did not finish within 60 s"));
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `POST /api/v1/session` from the client at `ip`.
fn sign_in_request(ip: &str, user: &str, password: &str) -> Request<Body> {
    let mut req = Request::builder()
        .method("POST")
        .uri("/api/v1/session")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"username": user, "password": password}).to_string(),
        ))
        .unwrap();
    req.extensions_mut().insert(peer(ip));
    req
}

impl App {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        cookie: Option<&str>,
        body: Option<Value>,
        origin: Option<&str>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "127.0.0.1:3000");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    /// Sends a request as it arrives from a connection: from `127.0.0.1` unless the request
    /// already carries a peer address (see [`peer`]).
    async fn send(&self, req: Request<Body>) -> Resp {
        send_to(self.router.clone(), req).await
    }

    /// One login attempt from the client at `ip`, whatever its outcome.
    async fn try_sign_in_from(&self, ip: &str, user: &str, password: &str) -> Resp {
        self.send(sign_in_request(ip, user, password)).await
    }

    /// One login attempt, whatever its outcome.
    async fn try_sign_in(&self, user: &str, password: &str) -> Resp {
        self.call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": user, "password": password})),
            None,
        )
        .await
    }

    async fn sign_in(&self, user: &str, password: &str) -> String {
        let r = self.try_sign_in(user, password).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let cookie = r.cookie();
        let set = r
            .headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(set.contains("HttpOnly"), "{set}");
        assert!(set.contains("SameSite=Lax"), "{set}");
        cookie
    }
}

#[tokio::test]
async fn sign_in_list_users_and_sign_out() {
    let app = app().await;
    let cookie = app.sign_in("admin", "admin").await;
    let me = app
        .call("GET", "/api/v1/session", Some(&cookie), None, None)
        .await;
    assert_eq!(me.json()["username"], "admin");
    assert_eq!(me.json()["default_password"], true);
    assert!(
        !me.body.contains("password_hash"),
        "hashes never leave the server"
    );

    let users = app
        .call("GET", "/api/v1/users", Some(&cookie), None, None)
        .await;
    assert_eq!(users.status, StatusCode::OK);
    assert_eq!(users.json().as_array().unwrap().len(), 1);

    // The session is a leased key in the Store.
    let sessions = app
        .services
        .store
        .list_all(&app.services.keys.sessions())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_ne!(sessions[0].lease, 0);

    // Using the app renews the cookie's inactivity expiry, without rewriting the session on
    // every request (at most once per TOUCH_EVERY).
    let again = app
        .call("GET", "/api/v1/users", Some(&cookie), None, None)
        .await;
    let renewed = again
        .headers
        .get(header::SET_COOKIE)
        .map(|c| c.to_str().unwrap());
    assert!(
        renewed.is_some_and(|c| c.contains("Max-Age=43200")),
        "{renewed:?}"
    );
    let stored = app
        .services
        .store
        .list_all(&app.services.keys.sessions())
        .await
        .unwrap();
    assert_eq!(stored[0].mod_revision, sessions[0].mod_revision);

    let out = app
        .call("DELETE", "/api/v1/session", Some(&cookie), None, None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = app
        .call("GET", "/api/v1/users", Some(&cookie), None, None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.json()["error"], "sign in first");
    assert!(app
        .services
        .store
        .list_all(&app.services.keys.sessions())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn failed_sign_ins_share_one_message_and_are_rate_limited() {
    let app = app().await;
    let wrong = app.try_sign_in("admin", "nope").await;
    let unknown = app.try_sign_in("ghost", "nope").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body, "no hint whether the user exists");
    assert_eq!(wrong.json()["error"], "invalid username or password");

    for _ in 0..4 {
        app.try_sign_in("admin", "nope").await;
    }
    // Even the right password is refused while the user is locked out.
    let limited = app.try_sign_in("admin", "admin").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.get(header::RETRY_AFTER).is_some());
}

#[tokio::test]
async fn a_viewer_is_refused_user_management() {
    let app = app().await;
    let admin = app.sign_in("admin", "admin").await;
    let created = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "vera", "password": "viewer-pass-1", "role": "viewer", "email": "vera@example.com"})),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    let vera = app.sign_in("vera", "viewer-pass-1").await;
    let list = app
        .call("GET", "/api/v1/users", Some(&vera), None, None)
        .await;
    assert_eq!(list.status, StatusCode::FORBIDDEN);
    assert!(list.json()["error"]
        .as_str()
        .unwrap()
        .contains("admin role"));
    let create = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&vera),
            Some(json!({"username": "x", "password": "12345678", "role": "admin"})),
            None,
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    let promote = app
        .call(
            "PATCH",
            "/api/v1/users/vera",
            Some(&vera),
            Some(json!({"role": "admin"})),
            None,
        )
        .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN);
    // The UI's server function refuses too.
    let sf = app
        .call("POST", "/api/users/list", Some(&vera), None, None)
        .await;
    assert!(sf.body.contains("admin role"), "{}: {}", sf.status, sf.body);
}

#[tokio::test]
async fn foreign_origin_writes_are_refused() {
    let app = app().await;
    let body = json!({"username": "admin", "password": "admin"});
    let evil = app
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(body.clone()),
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(evil.status, StatusCode::FORBIDDEN);
    assert_eq!(evil.json()["field"], "Origin");
    let same = app
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(body),
            Some("http://127.0.0.1:3000"),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK);
}

#[tokio::test]
async fn the_last_admin_and_yourself_cannot_be_removed() {
    let app = app().await;
    let admin = app.sign_in("admin", "admin").await;
    let self_delete = app
        .call("DELETE", "/api/v1/users/admin", Some(&admin), None, None)
        .await;
    assert_eq!(self_delete.status, StatusCode::CONFLICT);
    let demote = app
        .call(
            "PATCH",
            "/api/v1/users/admin",
            Some(&admin),
            Some(json!({"role": "viewer"})),
            None,
        )
        .await;
    assert_eq!(demote.status, StatusCode::CONFLICT);
    assert!(demote.json()["error"]
        .as_str()
        .unwrap()
        .contains("last admin"));

    app.call(
        "POST",
        "/api/v1/users",
        Some(&admin),
        Some(json!({"username": "ada", "password": "second-admin", "role": "admin"})),
        None,
    )
    .await;
    let demote = app
        .call(
            "PATCH",
            "/api/v1/users/admin",
            Some(&admin),
            Some(json!({"role": "editor"})),
            None,
        )
        .await;
    assert_eq!(demote.status, StatusCode::OK, "{}", demote.body);
    // admin is an editor now, and a new role ends the user's sessions, this one included.
    let list = app
        .call("GET", "/api/v1/users", Some(&admin), None, None)
        .await;
    assert_eq!(list.status, StatusCode::UNAUTHORIZED);
    let admin = app.sign_in("admin", "admin").await;
    let list = app
        .call("GET", "/api/v1/users", Some(&admin), None, None)
        .await;
    assert_eq!(list.status, StatusCode::FORBIDDEN);
    let ada = app.sign_in("ada", "second-admin").await;
    let gone = app
        .call("DELETE", "/api/v1/users/admin", Some(&ada), None, None)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let stale = app
        .call("GET", "/api/v1/session", Some(&admin), None, None)
        .await;
    assert_eq!(
        stale.status,
        StatusCode::UNAUTHORIZED,
        "a deleted user's session stops working"
    );
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let app = app().await;
    let admin = app.sign_in("admin", "admin").await;
    let short = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "bo", "password": "short", "role": "viewer"})),
            None,
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(short.json()["field"], "password");
    let missing = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "bo", "role": "viewer"})),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json()["field"], "password", "{}", missing.body);
    let role = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "bo", "password": "long-enough", "role": "root"})),
            None,
        )
        .await;
    assert_eq!(role.status, StatusCode::BAD_REQUEST);
    let dup = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "admin", "password": "long-enough", "role": "viewer"})),
            None,
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(dup.json()["field"], "username");
}

#[tokio::test]
async fn pages_need_a_session_and_login_renders_on_the_server() {
    let app = app().await;
    let home = app.call("GET", "/", None, None, None).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.headers.get(header::LOCATION).unwrap(), "/login");
    let users = app.call("GET", "/users", None, None, None).await;
    assert_eq!(users.status, StatusCode::SEE_OTHER);

    let login = app.call("GET", "/login", None, None, None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login
            .body
            .contains(r#"<label for="username">Username</label>"#),
        "{}",
        login.body
    );
    assert!(login
        .body
        .contains(r#"<label for="password">Password</label>"#));
    assert!(login.body.contains("Sign in</button>"));

    let cookie = app.sign_in("admin", "admin").await;
    let dash = app.call("GET", "/", Some(&cookie), None, None).await;
    assert_eq!(dash.status, StatusCode::OK);
    for link in [
        "Dashboard",
        "Syncs",
        "Data sources",
        "Offsets",
        "Agents",
        "Users",
        "Sign out",
    ] {
        assert!(dash.body.contains(&format!(">{link}<")), "missing {link}");
    }
    assert!(
        dash.body.contains("Change the default password"),
        "banner while the default password is in use"
    );
    let again = app.call("GET", "/login", Some(&cookie), None, None).await;
    assert_eq!(
        again.status,
        StatusCode::SEE_OTHER,
        "signed-in users skip the login page"
    );
}

#[tokio::test]
async fn changing_the_default_password_removes_the_banner() {
    let app = app().await;
    let cookie = app.sign_in("admin", "admin").await;
    let changed = server_fn(
        &app,
        "/api/change_password",
        &cookie,
        "current_password=admin&new_password=a-better-password",
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let cookie = changed.cookie();
    let dash = app.call("GET", "/", Some(&cookie), None, None).await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(dash.body.contains(">Dashboard<"));
    assert!(!dash.body.contains("Change the default password"));
    let old = app.try_sign_in("admin", "admin").await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admin_password_from_the_environment_has_no_banner() {
    let app = app_with(Some("first-password-1")).await;
    let cookie = app.sign_in("admin", "first-password-1").await;
    let me = app
        .call("GET", "/api/v1/session", Some(&cookie), None, None)
        .await;
    assert_eq!(me.json()["default_password"], false);
    // Seeding happens once: a second bootstrap changes nothing.
    assert!(!app.services.bootstrap(None).await.unwrap());
}

/// The same HTTP surface over etcd (cluster mode): sessions are leased etcd keys, so any
/// server replica serves any user.
#[tokio::test]
async fn cluster_mode_serves_from_etcd_and_shares_sessions_between_replicas() {
    use idra_core::store::{EtcdOptions, EtcdStore};
    let Ok(endpoints) = std::env::var("IDRA_TEST_ETCD") else {
        if std::env::var("IDRA_REQUIRE_ETCD").as_deref() == Ok("1") {
            panic!("IDRA_REQUIRE_ETCD=1 but IDRA_TEST_ETCD is not set");
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped: server on etcd: IDRA_TEST_ETCD is not set"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::new(&format!("/idra-test/server-{}/", uuid_like()));
    let cipher = Cipher::from_key_file(&dir.path().join("secret.key")).unwrap();
    let replica = |store: Arc<dyn Store>| {
        let services = Services::new(store, keys.clone(), cipher.clone());
        let site = dir.path().join("site");
        let router = router(
            services.clone(),
            RouterConfig::new(leptos_options(
                site.to_str().unwrap(),
                "127.0.0.1:3000".parse().unwrap(),
            )),
        );
        (router, services)
    };
    let connect = || async {
        Arc::new(
            EtcdStore::connect(EtcdOptions::from_list(&endpoints))
                .await
                .unwrap(),
        ) as Arc<dyn Store>
    };
    let (r1, s1) = replica(connect().await);
    let (r2, _) = replica(connect().await);
    assert!(s1.bootstrap(None).await.unwrap());
    let one = App {
        router: r1,
        services: s1.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let cookie = one.sign_in("admin", "admin").await;
    let sessions = s1.store.list_all(&keys.sessions()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_ne!(sessions[0].lease, 0, "sessions are leased etcd keys");
    // The other replica knows the session.
    let two = App {
        router: r2,
        services: s1.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let me = two
        .call("GET", "/api/v1/session", Some(&cookie), None, None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["username"], "admin");
    let health = two.call("GET", "/api/v1/health", None, None, None).await;
    assert_eq!(health.json()["store"], "etcd");
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test]
async fn data_sources_and_syncs_through_the_api() {
    let app = app().await;
    let admin = app.sign_in("admin", "admin").await;
    let pg = "postgres://postgres:not-shown@127.0.0.1:5432/test";
    let ds = app
        .call(
            "POST",
            "/api/v1/datasources",
            Some(&admin),
            Some(json!({"name": "warehouse", "kind": "postgres", "connection_string": pg})),
            None,
        )
        .await;
    assert_eq!(ds.status, StatusCode::CREATED, "{}", ds.body);
    assert!(
        !ds.body.contains("not-shown"),
        "the password never comes back: {}",
        ds.body
    );
    assert_eq!(ds.json()["secrets_set"], json!(["password"]));
    let id = ds.json()["id"].as_str().unwrap().to_string();

    // The connector's real check, and discovery.
    let test = app
        .call(
            "POST",
            &format!("/api/v1/datasources/{id}/test"),
            Some(&admin),
            None,
            None,
        )
        .await;
    assert_eq!(test.status, StatusCode::OK, "{}", test.body);
    let tables = app
        .call(
            "GET",
            &format!("/api/v1/datasources/{id}/discover"),
            Some(&admin),
            None,
            None,
        )
        .await;
    assert_eq!(tables.status, StatusCode::OK);
    assert!(tables
        .json()
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["columns"].is_array()));
    let bad = app
        .call("POST", "/api/v1/datasources", Some(&admin), Some(json!({"name": "nowhere", "kind": "postgres", "connection_string": "postgres://postgres@127.0.0.1:1/test"})), None)
        .await;
    let bad_id = bad.json()["id"].as_str().unwrap().to_string();
    let failed = app
        .call(
            "POST",
            &format!("/api/v1/datasources/{bad_id}/test"),
            Some(&admin),
            None,
            None,
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        failed.json()["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{}",
        failed.body
    );
    let dup = app
        .call("POST", "/api/v1/datasources", Some(&admin), Some(json!({"name": "warehouse", "kind": "mysql", "connection_string": "mysql://root@h/db"})), None)
        .await;
    assert_eq!(
        (dup.status, dup.json()["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );

    // A sync between them; bad input names the field.
    let sync = json!({"name": "orders", "source": {"datasource_id": id, "table": "public.orders"},
        "destination": {"datasource_id": id, "table": "orders_copy"}, "mode": "by_id", "key_columns": ["id"]});
    let created = app
        .call(
            "POST",
            "/api/v1/syncs",
            Some(&admin),
            Some(sync.clone()),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let sid = created.json()["id"].as_str().unwrap().to_string();
    let mut wrong = sync.clone();
    wrong["name"] = json!("other");
    wrong["destination"]["datasource_id"] = json!("missing");
    let refused = app
        .call("POST", "/api/v1/syncs", Some(&admin), Some(wrong), None)
        .await;
    assert_eq!(refused.json()["field"], "destination.datasource_id");

    // In use: the data source cannot go, and the answer names the sync.
    let in_use = app
        .call(
            "DELETE",
            &format!("/api/v1/datasources/{id}"),
            Some(&admin),
            None,
            None,
        )
        .await;
    assert_eq!(in_use.status, StatusCode::CONFLICT);
    assert!(in_use.json()["error"].as_str().unwrap().contains("orders"));

    // Offsets: only while paused, compare-and-swap, recorded.
    let cursor = json!({"kind": "id", "last_id": 500});
    let running = app
        .call(
            "PUT",
            &format!("/api/v1/syncs/{sid}/offset"),
            Some(&admin),
            Some(json!({"expected": null, "cursor": cursor})),
            None,
        )
        .await;
    assert_eq!(running.status, StatusCode::CONFLICT, "{}", running.body);
    assert_eq!(
        app.call(
            "POST",
            &format!("/api/v1/syncs/{sid}/pause"),
            Some(&admin),
            None,
            None
        )
        .await
        .json()["enabled"],
        false
    );
    // Paused, but its last batch still running (the lock is held): its offset commit would
    // overwrite the edit, so the edit waits until the run stopped.
    let lock = app.services.keys.sync_lock(&sid);
    app.services
        .store
        .put(&lock, b"agent-1 x".to_vec(), None)
        .await
        .unwrap();
    let finishing = app
        .call(
            "PUT",
            &format!("/api/v1/syncs/{sid}/offset"),
            Some(&admin),
            Some(json!({"expected": null, "cursor": cursor})),
            None,
        )
        .await;
    assert_eq!(finishing.status, StatusCode::CONFLICT, "{}", finishing.body);
    assert!(
        finishing.json()["error"]
            .as_str()
            .unwrap()
            .contains("still finishing its last batch"),
        "{}",
        finishing.body
    );
    app.services.store.delete(&lock).await.unwrap();
    let stale = app
        .call(
            "PUT",
            &format!("/api/v1/syncs/{sid}/offset"),
            Some(&admin),
            Some(json!({"expected": {"kind": "id", "last_id": 7}, "cursor": cursor})),
            None,
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    let set = app
        .call(
            "PUT",
            &format!("/api/v1/syncs/{sid}/offset"),
            Some(&admin),
            Some(json!({"expected": null, "cursor": cursor})),
            None,
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json()["edited"], true);
    let changes = app
        .call(
            "GET",
            &format!("/api/v1/syncs/{sid}/offset/changes"),
            Some(&admin),
            None,
            None,
        )
        .await;
    assert_eq!(changes.json()[0]["by"], "admin");
    assert_eq!(changes.json()[0]["new"]["last_id"], 500);

    // A viewer reads but cannot change.
    app.call(
        "POST",
        "/api/v1/users",
        Some(&admin),
        Some(json!({"username": "val", "password": "viewer-pass-2", "role": "viewer"})),
        None,
    )
    .await;
    let viewer = app.sign_in("val", "viewer-pass-2").await;
    assert_eq!(
        app.call(
            "GET",
            &format!("/api/v1/syncs/{sid}"),
            Some(&viewer),
            None,
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(
            "GET",
            &format!("/api/v1/syncs/{sid}/status"),
            Some(&viewer),
            None,
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.call(
            "POST",
            &format!("/api/v1/syncs/{sid}/resume"),
            Some(&viewer),
            None,
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            "POST",
            &format!("/api/v1/datasources/{id}/test"),
            Some(&viewer),
            None,
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        app.call(
            "DELETE",
            &format!("/api/v1/syncs/{sid}"),
            Some(&admin),
            None,
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(
            "DELETE",
            &format!("/api/v1/datasources/{id}"),
            Some(&admin),
            None,
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn metrics_report_syncs_agents_and_the_leader() {
    let app = app().await;
    let admin = app.sign_in("admin", "admin").await;
    let ds = app
        .call("POST", "/api/v1/datasources", Some(&admin), Some(json!({"name": "m", "kind": "sqlite", "connection_string": "sqlite:///tmp/idra-metrics-test.db"})), None)
        .await;
    let id = ds.json()["id"].as_str().unwrap().to_string();
    let sync = json!({"name": "metered \"one\"", "source": {"datasource_id": id, "table": "t"},
        "destination": {"datasource_id": id, "table": "u"}, "mode": "by_id", "key_columns": ["id"]});
    assert_eq!(
        app.call("POST", "/api/v1/syncs", Some(&admin), Some(sync), None)
            .await
            .status,
        StatusCode::CREATED
    );
    let agents = app
        .call("GET", "/api/v1/agents", Some(&admin), None, None)
        .await;
    assert_eq!(
        (agents.status, agents.json().as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let assignments = app
        .call("GET", "/api/v1/assignments", Some(&admin), None, None)
        .await;
    assert_eq!(
        assignments.json()[0]["agent"],
        serde_json::Value::Null,
        "enabled but unassigned: no agent runs here"
    );
    assert_eq!(
        app.call("GET", "/api/v1/agents", None, None, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let m = app.call("GET", "/metrics", None, None, None).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m
        .headers
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        m.body
            .contains("# TYPE idra_sync_rows_copied_total counter"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains(r#"idra_sync_rows_copied_total{sync="metered \"one\"""#),
        "{}",
        m.body
    );
    assert!(m.body.contains(r#"state="idle"} 1"#), "{}", m.body);
    assert!(m.body.contains("idra_agents 0"));
    assert!(m.body.contains(r#"idra_leader{agent=""} 0"#));
}

#[tokio::test]
async fn import_and_export_sync_files() {
    let app = app().await;
    let admin = app.sign_in("admin", "admin").await;
    let legacy = json!([{
        "sync_name": "legacy orders", "mode": "IdField", "disabled": false,
        "source_connector": {"id": "id", "connector_name": "pg", "connector_source_type": "PostgresGORM",
            "connection_string": "postgres://app:pw-import@db:5432/shop", "table": "orders"},
        "destination_connector": {"id": "id", "connector_name": "my", "connector_source_type": "MysqlGORM",
            "connection_string": "mysql://root@dwh:3306/test", "table": "orders", "save_mode": "Upsert"}
    }]);
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/syncs/import")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::COOKIE, &admin)
        .body(Body::from(legacy.to_string()))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let export = app
        .call("GET", "/api/v1/syncs/export", Some(&admin), None, None)
        .await;
    assert_eq!(export.json()["syncs"][0]["name"], "legacy orders");
    assert_eq!(export.json()["syncs"][0]["write_mode"], "upsert");
    assert!(!export.body.contains("pw-import"), "no secrets in exports");
    let bad = Request::builder()
        .method("POST")
        .uri("/api/v1/syncs/import")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::COOKIE, &admin)
        .body(Body::from(r#"[{"sync_name": "x", "mode": "Sometimes"}]"#))
        .unwrap();
    let resp = app.router.clone().oneshot(bad).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["field"], "file");
    assert!(v["error"].as_str().unwrap().contains("sync `x`"), "{v}");
}

/// The document is generated from the handlers; this checks the other direction: every
/// operation it names answers (401 without a session, so it is routed and guarded), and it
/// covers every endpoint the product promises.
#[tokio::test]
async fn openapi_document_matches_the_handlers() {
    let app = app().await;
    let doc = app
        .call("GET", "/api/v1/openapi.json", None, None, None)
        .await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.body);
    let doc = doc.json();
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            operations.push(format!("{} {path}", method.to_uppercase()));
            let public = op["security"] == json!([{}]);
            let uri = format!(
                "/api/v1{}",
                path.replace("{id}", "x").replace("{name}", "x")
            );
            let resp = app
                .call(&method.to_uppercase(), &uri, None, None, None)
                .await;
            if public {
                assert_ne!(resp.status, StatusCode::NOT_FOUND, "{method} {path}");
                assert_ne!(
                    resp.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}"
                );
            } else {
                assert_eq!(
                    resp.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path}: {}",
                    resp.body
                );
            }
            if let Some(schema) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                let name = schema.rsplit('/').next().unwrap();
                assert!(
                    doc["components"]["schemas"][name].is_object(),
                    "{method} {path}: schema {name} missing"
                );
            }
        }
    }
    for promised in [
        "POST /session",
        "DELETE /session",
        "GET /datasources",
        "POST /datasources",
        "GET /datasources/{id}",
        "PUT /datasources/{id}",
        "DELETE /datasources/{id}",
        "POST /datasources/{id}/test",
        "GET /datasources/{id}/discover",
        "GET /syncs",
        "POST /syncs",
        "GET /syncs/{id}",
        "PUT /syncs/{id}",
        "DELETE /syncs/{id}",
        "POST /syncs/{id}/run",
        "POST /syncs/{id}/pause",
        "POST /syncs/{id}/resume",
        "GET /syncs/{id}/status",
        "GET /syncs/{id}/offset",
        "PUT /syncs/{id}/offset",
        "POST /syncs/import",
        "GET /syncs/export",
        "GET /agents",
        "GET /assignments",
        "GET /users",
        "POST /users",
        "GET /health",
    ] {
        assert!(
            operations.iter().any(|o| o == promised),
            "{promised} missing from the document: {operations:?}"
        );
    }
    // A request body's field names are those the handler accepts.
    let sync_input = &doc["components"]["schemas"]["SyncInput"]["properties"];
    for field in [
        "name",
        "source",
        "destination",
        "mode",
        "key_columns",
        "batch_size",
    ] {
        assert!(sync_input[field].is_object(), "SyncInput.{field}");
    }
}

// --- Response headers: every answer (page, API error, redirect, refusal, missing file)
// carries the browser-side defences, built the way `run` builds the router.

/// The app as `startup::run` serves it, with `public_url` as `--public-url`.
async fn served(public_url: Option<&str>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&dir.path().join("store"))
            .await
            .unwrap(),
    );
    let cipher = Cipher::from_key_file(&dir.path().join("secret.key")).unwrap();
    let services = Services::new(store, Keys::default(), cipher);
    services.bootstrap(None).await.unwrap();
    let site = dir.path().join("site");
    let router = crate::startup::app(
        services.clone(),
        RouterConfig {
            public_url: public_url.map(String::from),
            ..RouterConfig::new(leptos_options(
                site.to_str().unwrap(),
                "127.0.0.1:3000".parse().unwrap(),
            ))
        },
    );
    App {
        router,
        services,
        _dir: dir,
    }
}

/// One answer of each kind the server gives, with a label for messages.
async fn one_of_each(app: &App) -> Vec<(&'static str, Resp)> {
    let login = app.call("GET", "/login", None, None, None).await;
    assert_eq!(login.status, StatusCode::OK);
    let api_error = app.call("GET", "/api/v1/users", None, None, None).await;
    assert_eq!(
        api_error.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        api_error.body
    );
    let redirect = app.call("GET", "/", None, None, None).await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    let refused = app
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "admin", "password": "admin"})),
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let missing = app.call("GET", "/pkg/missing.js", None, None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    vec![
        ("GET /login", login),
        ("GET /api/v1/users unauthenticated", api_error),
        ("GET / redirect", redirect),
        ("cross-origin POST", refused),
        ("missing file", missing),
    ]
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = served(Some("http://idra.example.com")).await;
    for (what, r) in one_of_each(&app).await {
        let h = |name: &str| {
            r.headers
                .get(name)
                .unwrap_or_else(|| panic!("{what}: no {name} header"))
                .to_str()
                .unwrap()
                .to_string()
        };
        let csp = h("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{what}: `{directive}` missing from {csp}"
            );
        }
        assert_eq!(h("x-frame-options"), "DENY", "{what}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(h("referrer-policy"), "same-origin", "{what}");
        assert!(
            r.headers.get("strict-transport-security").is_none(),
            "{what}: HSTS over http would be ignored and wrong"
        );
    }
}

#[tokio::test]
async fn hsts_is_sent_only_when_the_public_url_is_https() {
    let https = served(Some("https://idra.example.com")).await;
    for (what, r) in one_of_each(&https).await {
        assert_eq!(
            r.headers
                .get("strict-transport-security")
                .unwrap_or_else(|| panic!("{what}: no HSTS")),
            "max-age=31536000",
            "{what}"
        );
    }
    let unset = served(None).await;
    let login = unset.call("GET", "/login", None, None, None).await;
    assert!(login.headers.get("strict-transport-security").is_none());
}

/// The page hydrates with an inline module script (leptos' HydrationScripts) that
/// instantiates WebAssembly: the policy must allow both, or pages stop being interactive.
#[tokio::test]
async fn the_content_security_policy_allows_hydration() {
    let app = served(None).await;
    let login = app.call("GET", "/login", None, None, None).await;
    assert!(
        login.body.contains("<script type=\"module\""),
        "the page no longer hydrates with an inline script; revisit the policy: {}",
        login.body
    );
    let csp = login
        .headers
        .get("content-security-policy")
        .expect("a policy")
        .to_str()
        .unwrap();
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .expect("a script-src directive");
    assert!(script_src.contains("'unsafe-inline'"), "{csp}");
    assert!(script_src.contains("'wasm-unsafe-eval'"), "{csp}");
    // Styles fall under default-src 'self': inline ones would be dropped by the browser.
    let cookie = app.sign_in("admin", "admin").await;
    let dashboard = app.call("GET", "/", Some(&cookie), None, None).await;
    assert_eq!(dashboard.status, StatusCode::OK);
    for page in [&login, &dashboard] {
        assert!(
            !page.body.contains(" style=") && !page.body.contains("<style"),
            "an inline style needs style-src in the policy: {}",
            page.body
        );
    }
}

/// A server function called without a session answers 401 (it answered 500 with
/// `sign in first`), like the REST API.
#[tokio::test]
async fn a_server_function_without_a_session_answers_401() {
    let app = app().await;
    let req = Request::builder()
        .method("POST")
        .uri("/api/datasources/kinds")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // The page that made the call sends the browser to the login page on this flag.
    assert!(body.contains("session ended"), "{body}");
    assert!(body.contains(r#""signed_out":true"#), "{body}");
}

// --- Attacks from the security review (issue 14): each is performed and must be refused.

/// A clock for the sign-in limiter that the test moves forward.
fn test_clock() -> (idra_core::service::Clock, Arc<std::sync::Mutex<Instant>>) {
    let now = Arc::new(std::sync::Mutex::new(Instant::now()));
    let read = now.clone();
    (Arc::new(move || *read.lock().unwrap()), now)
}

/// The app with its sign-in limiter on a clock the test moves.
async fn app_on_clock(admin_password: &str) -> (App, Arc<std::sync::Mutex<Instant>>) {
    let (clock, now) = test_clock();
    let app = app_setup(Some(admin_password), |services, _| {
        services.limiter = Arc::new(LoginLimiter::with_clock(clock));
    })
    .await;
    (app, now)
}

/// Finding 4: 32 wrong passwords sent at once for one user. The attempts are counted before
/// the (slow) password check, so at most 5 are checked; the others are refused with 429.
#[tokio::test]
async fn parallel_guesses_for_one_user_are_checked_at_most_five_times() {
    let (app, now) = app_on_clock("right-password-1").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let req = sign_in_request("198.51.100.7", "admin", &format!("guess-{i}"));
        tasks.spawn(send_to(app.router.clone(), req));
    }
    let (mut wrong, mut limited) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        match r.status {
            StatusCode::UNAUTHORIZED => {
                assert_eq!(r.json()["error"], "invalid username or password");
                wrong += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(r.headers.get(header::RETRY_AFTER).is_some(), "{}", r.body);
                assert!(r.json()["error"].is_string(), "{}", r.body);
                limited += 1;
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert!(wrong <= 5, "{wrong} of 32 parallel guesses were checked");
    assert_eq!(wrong + limited, 32);
    let checked = app.services.hashing.verifications();
    assert!(checked <= 5, "{checked} passwords were checked");

    // The owner, elsewhere, waits out the user's window like everyone else, then gets in.
    let owner = "203.0.113.5";
    let early = app
        .try_sign_in_from(owner, "admin", "right-password-1")
        .await;
    assert_eq!(
        early.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        early.body
    );
    let wait: u64 = early.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    *now.lock().unwrap() += Duration::from_secs(wait);
    let later = app
        .try_sign_in_from(owner, "admin", "right-password-1")
        .await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.body);
}

/// Finding 4: failures from one address (many users behind one NAT or proxy) slow that
/// address down; they do not shut everyone behind it out for 15 minutes.
#[tokio::test]
async fn failures_from_one_address_slow_it_down_without_locking_it_out() {
    let (app, now) = app_on_clock("right-password-1").await;
    let nat = "198.51.100.7";
    for i in 0..20 {
        let r = app.try_sign_in_from(nat, &format!("user{i}"), "nope").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let slowed = app.try_sign_in_from(nat, "admin", "right-password-1").await;
    assert_eq!(
        slowed.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        slowed.body
    );
    let wait: u64 = slowed.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        wait <= 60,
        "an address waits at most a minute, not {wait} s"
    );
    // Other addresses are not slowed down.
    let elsewhere = app
        .try_sign_in_from("203.0.113.5", "admin", "right-password-1")
        .await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
    // After the delay, the slowed address signs in.
    *now.lock().unwrap() += Duration::from_secs(wait);
    let after = app.try_sign_in_from(nat, "admin", "right-password-1").await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
}

/// Finding 4: password checks run in a bounded number of slots (one per CPU). When they
/// stay busy, a sign-in is answered 503 with Retry-After instead of queueing without end,
/// and the attempt does not count against the user.
#[tokio::test]
async fn sign_ins_beyond_the_hashing_slots_are_told_to_come_back() {
    let app = app_setup(Some("right-password-1"), |services, _| {
        services.hashing = Arc::new(PasswordHashing::new(1, Duration::from_millis(20)));
    })
    .await;
    let busy_slot = app.services.hashing.slot().await;
    for _ in 0..MAX_FAILURES_PER_USER + 1 {
        let r = app
            .try_sign_in_from("198.51.100.7", "admin", "right-password-1")
            .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert!(r.headers.get(header::RETRY_AFTER).is_some());
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("too many sign-ins at once"),
            "{}",
            r.body
        );
    }
    assert_eq!(app.services.hashing.verifications(), 0);
    drop(busy_slot);
    let r = app
        .try_sign_in_from("198.51.100.7", "admin", "right-password-1")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// The admin creates `name` with `role`; `name` signs in from two browsers.
async fn two_sessions_of(app: &App, admin: &str, name: &str, role: &str) -> (String, String) {
    let created = app
        .call(
            "POST",
            "/api/v1/users",
            Some(admin),
            Some(json!({"username": name, "password": "first-password-1", "role": role})),
            None,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let one = app.sign_in(name, "first-password-1").await;
    let two = app.sign_in(name, "first-password-1").await;
    assert_ne!(one, two);
    (one, two)
}

async fn whoami(app: &App, cookie: &str) -> Resp {
    app.call("GET", "/api/v1/session", Some(cookie), None, None)
        .await
}

/// Finding 5: an admin resets a user's password (say, because it leaked): every session of
/// that user ends.
#[tokio::test]
async fn a_password_reset_ends_the_users_sessions() {
    let app = app_with(Some("admin-password-1")).await;
    let admin = app.sign_in("admin", "admin-password-1").await;
    let (one, two) = two_sessions_of(&app, &admin, "ana", "editor").await;
    let reset = app
        .call(
            "PATCH",
            "/api/v1/users/ana",
            Some(&admin),
            Some(json!({"password": "second-password-2"})),
            None,
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    for cookie in [&one, &two] {
        let r = whoami(&app, cookie).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert_eq!(r.json()["error"], "sign in first");
    }
    let page = app.call("GET", "/syncs", Some(&one), None, None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "pages ask to sign in");
    app.sign_in("ana", "second-password-2").await;
    assert_eq!(
        whoami(&app, &admin).await.status,
        StatusCode::OK,
        "other users keep their sessions"
    );
}

/// Finding 5: a role change ends the user's sessions.
#[tokio::test]
async fn a_role_change_ends_the_users_sessions() {
    let app = app_with(Some("admin-password-1")).await;
    let admin = app.sign_in("admin", "admin-password-1").await;
    let (one, two) = two_sessions_of(&app, &admin, "ana", "editor").await;
    let demote = app
        .call(
            "PATCH",
            "/api/v1/users/ana",
            Some(&admin),
            Some(json!({"role": "viewer"})),
            None,
        )
        .await;
    assert_eq!(demote.status, StatusCode::OK, "{}", demote.body);
    for cookie in [&one, &two] {
        assert_eq!(whoami(&app, cookie).await.status, StatusCode::UNAUTHORIZED);
    }
}

/// Finding 5: a deleted user's cookie does not come back to life when someone else is
/// later created with the same name.
#[tokio::test]
async fn a_recreated_username_does_not_revive_old_sessions() {
    let app = app_with(Some("admin-password-1")).await;
    let admin = app.sign_in("admin", "admin-password-1").await;
    let (one, _) = two_sessions_of(&app, &admin, "ana", "editor").await;
    let deleted = app
        .call("DELETE", "/api/v1/users/ana", Some(&admin), None, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(whoami(&app, &one).await.status, StatusCode::UNAUTHORIZED);
    let again = app
        .call(
            "POST",
            "/api/v1/users",
            Some(&admin),
            Some(json!({"username": "ana", "password": "another-ana-1", "role": "admin"})),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    let r = whoami(&app, &one).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let users = app
        .call("GET", "/api/v1/users", Some(&one), None, None)
        .await;
    assert_eq!(users.status, StatusCode::UNAUTHORIZED, "{}", users.body);
}

/// `POST` to a server function of the UI with form-encoded arguments.
async fn server_fn(app: &App, path: &str, cookie: &str, form: &str) -> Resp {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .unwrap();
    app.send(req).await
}

/// Finding 5: changing one's own password (a stolen session is the usual reason) ends one's
/// other sessions; the session that changed it stays signed in.
#[tokio::test]
async fn changing_ones_password_ends_ones_other_sessions() {
    let app = app_with(Some("admin-password-1")).await;
    let admin = app.sign_in("admin", "admin-password-1").await;
    let (one, two) = two_sessions_of(&app, &admin, "ana", "editor").await;
    let changed = server_fn(
        &app,
        "/api/change_password",
        &one,
        "current_password=first-password-1&new_password=second-password-2",
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let one = changed.cookie();
    assert_eq!(whoami(&app, &one).await.status, StatusCode::OK);
    assert_eq!(whoami(&app, &two).await.status, StatusCode::UNAUTHORIZED);
}

/// Rewrites the one stored session's data (to inject a sign-in time).
async fn edit_the_session(app: &App, edit: impl FnOnce(&mut tower_sessions::session::Record)) {
    let sessions = app
        .services
        .store
        .list_all(&app.services.keys.sessions())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    let kv = &sessions[0];
    let mut record: tower_sessions::session::Record =
        idra_core::store::decode(&kv.key, &kv.value).unwrap();
    edit(&mut record);
    app.services
        .store
        .put(
            &kv.key,
            idra_core::store::encode(&record),
            Some(kv.lease).filter(|l| *l != 0),
        )
        .await
        .unwrap();
}

/// Finding 5: a session ends 7 days after sign-in however busy it is.
#[tokio::test]
async fn a_session_ends_seven_days_after_sign_in() {
    let app = app().await;
    let cookie = app.sign_in("admin", "admin").await;
    let days_ago = |d: i64| json!((chrono::Utc::now() - chrono::Duration::days(d)).timestamp());
    edit_the_session(&app, |r| {
        r.data.insert("signed_in_at".into(), days_ago(6));
    })
    .await;
    assert_eq!(whoami(&app, &cookie).await.status, StatusCode::OK);
    edit_the_session(&app, |r| {
        r.data.insert("signed_in_at".into(), days_ago(8));
    })
    .await;
    let r = whoami(&app, &cookie).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let page = app.call("GET", "/", Some(&cookie), None, None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

/// A request with `Host: host` (and the matching `Origin`, as a DNS-rebound page sends).
fn request_for_host(host: &str, method: &str, uri: &str, body: Option<Value>) -> Request<Body> {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, host)
        .header(header::ORIGIN, format!("http://{host}"));
    match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    }
}

/// Finding 6: DNS rebinding. A page on attacker.example whose name now resolves to
/// 127.0.0.1 talks to the server as a same-origin page: Host and Origin are both
/// attacker.example. Any Host the server does not know is refused.
#[tokio::test]
async fn a_foreign_host_is_refused() {
    let app = app().await;
    for (method, uri, body) in [
        (
            "POST",
            "/api/v1/session",
            Some(json!({"username": "admin", "password": "admin"})),
        ),
        ("GET", "/api/v1/health", None),
        ("GET", "/login", None),
        ("GET", "/metrics", None),
    ] {
        let r = app
            .send(request_for_host("attacker.example", method, uri, body))
            .await;
        assert_eq!(
            r.status,
            StatusCode::MISDIRECTED_REQUEST,
            "{method} {uri}: {}",
            r.body
        );
        assert_eq!(r.json()["field"], "Host");
        let error = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            error.contains("attacker.example") && error.contains("--public-url"),
            "{error}"
        );
        assert!(r.headers.get(header::SET_COOKIE).is_none());
    }
    for host in [
        "127.0.0.1:3000",
        "localhost:3000",
        "LocalHost:3000",
        "[::1]:3000",
    ] {
        let r = app
            .send(request_for_host(host, "GET", "/api/v1/health", None))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.body);
    }
    let other_port = app
        .send(request_for_host(
            "localhost:8080",
            "GET",
            "/api/v1/health",
            None,
        ))
        .await;
    assert_eq!(other_port.status, StatusCode::MISDIRECTED_REQUEST);
}

/// Finding 6: while admin has the default password, that sign-in works only from the
/// machine the server runs on.
#[tokio::test]
async fn the_default_admin_password_signs_in_only_from_this_machine() {
    let app = app().await;
    let remote = app.try_sign_in_from("198.51.100.7", "admin", "admin").await;
    assert_eq!(remote.status, StatusCode::FORBIDDEN, "{}", remote.body);
    let error = remote.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("default password"), "{error}");
    assert!(error.contains("127.0.0.1"), "{error}");
    // A proxy on this machine that was not declared with --trusted-proxy: the connection is
    // local, the client is not.
    let mut proxied = sign_in_request("127.0.0.1", "admin", "admin");
    proxied
        .headers_mut()
        .insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
    let proxied = app.send(proxied).await;
    assert_eq!(proxied.status, StatusCode::FORBIDDEN, "{}", proxied.body);
    // A wrong password gets the usual answer, which tells nothing about the default.
    let wrong = app
        .try_sign_in_from("198.51.100.7", "admin", "admin2")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    for local in ["127.0.0.1", "::1"] {
        let r = app.try_sign_in_from(local, "admin", "admin").await;
        assert_eq!(r.status, StatusCode::OK, "{local}: {}", r.body);
    }
    let admin = app.services.user("admin").await.unwrap().unwrap();
    app.services
        .change_own_password(&admin, "admin".into(), "a-better-password".into())
        .await
        .unwrap();
    let changed = app
        .try_sign_in_from("198.51.100.7", "admin", "a-better-password")
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
}

/// `X-Forwarded-For` counts only from a proxy named with `--trusted-proxy`: through it, the
/// limits and the default password's rule apply to the forwarded client; from anyone else
/// the header is ignored.
#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let app = app_setup(None, |_, config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let via = |peer_ip: &str, forwarded: &str| {
        let mut req = sign_in_request(peer_ip, "admin", "admin");
        req.headers_mut()
            .insert("x-forwarded-for", forwarded.parse().unwrap());
        req
    };
    // Through the trusted local proxy, for a client elsewhere.
    let r = app.send(via("127.0.0.1", "198.51.100.7")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // A stranger claiming to be forwarded for 127.0.0.1.
    let r = app.send(via("198.51.100.8", "127.0.0.1")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // The proxy's own machine.
    let r = app.send(via("127.0.0.1", "127.0.0.1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Limits follow the forwarded client: one client slowed down, not the proxy. (The
    // refused default-password sign-in above was its first failure.)
    for i in 1..FREE_FAILURES_PER_IP {
        let mut req = sign_in_request("127.0.0.1", &format!("user{i}"), "nope");
        req.headers_mut()
            .insert("x-forwarded-for", "198.51.100.7".parse().unwrap());
        assert_eq!(app.send(req).await.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.send(via("127.0.0.1", "198.51.100.7")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let r = app.send(via("127.0.0.1", "127.0.0.1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
