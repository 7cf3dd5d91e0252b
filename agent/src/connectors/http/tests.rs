//! Pure-logic tests of the HTTP API connector. Against a live server (with injected 429s
//! and 500s): agent/tests/http_connector.rs.

use std::collections::BTreeMap;

use idra_core::model::{ConnectorKind, Cursor};
use idra_core::secret::Secret;

use super::client::at_path;
use super::config::{Auth, HttpConfig, Pagination};
use super::source::HttpSource;
use crate::connectors::ConnectionSpec;

fn spec(url: &str, options: &[(&str, &str)], password: Option<&str>) -> ConnectionSpec {
    ConnectionSpec {
        kind: ConnectorKind::Http,
        connection_string: url.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: password
            .map(|p| BTreeMap::from([("password".to_string(), Secret::new(p.to_string()))]))
            .unwrap_or_default(),
    }
}

#[test]
fn credentials_stay_out_of_urls() {
    let e = HttpConfig::from_spec(&spec("https://api.example.com/v1?api_key=abc", &[], None))
        .unwrap_err();
    assert!(
        e.message.contains("`api_key`") && e.message.contains("password"),
        "{}",
        e.message
    );
    // A user in the URL becomes the basic-auth user and leaves the URL.
    let c =
        HttpConfig::from_spec(&spec("https://ann@api.example.com/v1", &[], Some("pw"))).unwrap();
    assert_eq!(c.base.as_str(), "https://api.example.com/v1/");
    assert_eq!(
        c.auth,
        Auth::Basic {
            user: "ann".into(),
            password: "pw".into()
        }
    );
    assert!(!format!("{c:?}").contains("pw"));
}

#[test]
fn auth_follows_what_is_set() {
    let c = HttpConfig::from_spec(&spec("http://h/", &[], Some("t0k"))).unwrap();
    assert_eq!(c.auth, Auth::Bearer("t0k".into()));
    let c = HttpConfig::from_spec(&spec("http://h/", &[], None)).unwrap();
    assert_eq!(c.auth, Auth::None);
    let e = HttpConfig::from_spec(&spec("http://h/", &[("auth", "bearer")], None)).unwrap_err();
    assert!(e.message.starts_with("password:"), "{}", e.message);
    let e = HttpConfig::from_spec(&spec("http://h/", &[("auth", "digest")], None)).unwrap_err();
    assert!(e.message.contains("`auth`"), "{}", e.message);
    let e = HttpConfig::from_spec(&spec("http://h/", &[("pagesize", "5")], None)).unwrap_err();
    assert!(
        e.message.contains("`pagesize`") && e.message.contains("known:"),
        "{}",
        e.message
    );
    let e = HttpConfig::from_spec(&spec("ftp://h/", &[], None)).unwrap_err();
    assert!(e.message.starts_with("connection_string:"), "{}", e.message);
}

#[test]
fn a_path_cannot_send_the_token_to_another_host() {
    let c = HttpConfig::from_spec(&spec("https://api.example.com/v1", &[], Some("tok"))).unwrap();
    assert_eq!(
        c.url("orders?x=1").unwrap().as_str(),
        "https://api.example.com/v1/orders?x=1"
    );
    for path in [
        "https://attacker.example/collect",
        "http://api.example.com/v1/orders",
        "\\\\attacker.example/collect",
        "../admin",
        "orders/../../admin",
        "/%2e%2e/admin",
    ] {
        let e = c.url(path).unwrap_err();
        assert!(e.message.contains("leads outside"), "{path}: {}", e.message);
    }
}

#[test]
fn pages_are_asked_for_per_pagination() {
    let key = HttpConfig::from_spec(&spec("http://h/api", &[], None)).unwrap();
    assert_eq!(key.url("orders").unwrap().as_str(), "http://h/api/orders");
    let q = HttpSource::page_query(&key, &Cursor::Id { last_id: 41 }, 10).unwrap();
    assert_eq!(
        q,
        vec![("limit".into(), "10".into()), ("after".into(), "41".into())]
    );
    assert_eq!(
        HttpSource::page_query(&key, &Cursor::Start, 10)
            .unwrap()
            .len(),
        1
    );
    let token = Cursor::Token {
        token: "abc".into(),
    };
    assert!(HttpSource::page_query(&key, &token, 10).is_err());

    let cur = HttpConfig::from_spec(&spec(
        "http://h/",
        &[("pagination", "cursor"), ("cursor_param", "c")],
        None,
    ))
    .unwrap();
    let q = HttpSource::page_query(&cur, &token, 5).unwrap();
    assert_eq!(q[1], ("c".into(), "abc".into()));

    let page = HttpConfig::from_spec(&spec(
        "http://h/",
        &[("pagination", "page"), ("first_page", "0")],
        None,
    ))
    .unwrap();
    assert_eq!(
        page.pagination,
        Pagination::Page {
            page_param: "page".into(),
            first_page: 0
        }
    );
    let q = HttpSource::page_query(&page, &Cursor::Start, 5).unwrap();
    assert_eq!(q[1], ("page".into(), "0".into()));
    let q = HttpSource::page_query(&page, &Cursor::Token { token: "3".into() }, 5).unwrap();
    assert_eq!(q[1], ("page".into(), "3".into()));
}

#[test]
fn records_are_found_by_dot_path() {
    let v = serde_json::json!({"data": {"items": [1, 2]}, "pages": [{"n": 7}]});
    assert_eq!(
        at_path(&v, "data.items").unwrap(),
        &serde_json::json!([1, 2])
    );
    assert_eq!(at_path(&v, "pages.0.n").unwrap(), &serde_json::json!(7));
    assert!(at_path(&v, "data.missing").is_none());
    assert_eq!(at_path(&v, "").unwrap(), &v);
}
