//! The HTTP surface driven in-process with `oneshot`, over a real embedded store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use idra_core::secret::Cipher;
use idra_core::service::Services;
use idra_core::store::{EmbeddedStore, Keys, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::{leptos_options, router, RouterConfig};

struct App {
    router: Router,
    services: Services,
    _dir: tempfile::TempDir,
}

async fn app_with(admin_password: Option<&str>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open(&dir.path().join("store"))
            .await
            .unwrap(),
    );
    let cipher = Cipher::from_key_file(&dir.path().join("secret.key")).unwrap();
    let services = Services::new(store, Keys::default(), cipher)
        .with_probe(Arc::new(idra_agent::probe::ConnectorProbe));
    assert!(services
        .bootstrap(admin_password.map(String::from))
        .await
        .unwrap());
    let site = dir.path().join("site");
    let router = router(
        services.clone(),
        RouterConfig {
            leptos: leptos_options(site.to_str().unwrap(), "127.0.0.1:3000".parse().unwrap()),
            secure_cookies: false,
            lock_token: None,
        },
    );
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
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
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
    // admin is an editor now: its session loses user management at once.
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
    let admin = app.services.user("admin").await.unwrap().unwrap();
    app.services
        .change_own_password(&admin, "admin".into(), "a-better-password".into())
        .await
        .unwrap();
    let dash = app.call("GET", "/", Some(&cookie), None, None).await;
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
            RouterConfig {
                leptos: leptos_options(site.to_str().unwrap(), "127.0.0.1:3000".parse().unwrap()),
                secure_cookies: false,
                lock_token: None,
            },
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
        leptos_options(site.to_str().unwrap(), "127.0.0.1:3000".parse().unwrap()),
        public_url,
        None,
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
    assert!(body.contains("sign in first"), "{body}");
}
