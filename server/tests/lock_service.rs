//! The lock service at `/locks` through the real binary and real sockets: how the flags turn
//! it on, and each attack of the security finding performed and refused. Clients on other
//! addresses are simulated by binding the client socket to another loopback address
//! (127.0.0.2, …), which Linux routes to the same machine.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// An `idra-server` process with its own data directory, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn command(dir: &Path, port: u16, lock_flags: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_idra-server"));
    // Nothing from the caller's environment (an IDRA_LOCK_TOKEN, an IDRA_ETCD) leaks in.
    c.env_clear()
        .env("RUST_LOG", "warn")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--site-root")
        .arg(dir.join("site"))
        .arg("--no-agent")
        .args(lock_flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Starts the server and waits until it accepts connections.
async fn start(lock_flags: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = command(dir.path(), port, lock_flags).spawn().unwrap();
    let mut server = Server {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = server.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("idra-server {lock_flags:?} exited with {status}: {err}");
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return server;
        }
        assert!(Instant::now() < deadline, "idra-server never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the server with flags that must stop its start; returns its stderr.
fn refused_start(lock_flags: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path(), free_port(), lock_flags)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("idra-server {lock_flags:?} started although its lock flags are invalid");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{lock_flags:?}: {err}");
    err
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// An error answer like the rest of the API: `{error, field?}` with a message.
    fn error(&self) -> String {
        let json = self.json();
        let error = json["error"].as_str();
        assert!(
            error.is_some_and(|e| !e.is_empty()),
            "no JSON error in {self:?}"
        );
        error.unwrap().to_string()
    }
}

/// One HTTP/1.1 request from the client address `from` (a loopback address).
async fn request(
    server: &Server,
    from: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{from}:0").parse::<SocketAddr>().unwrap())
        .unwrap();
    let mut stream = tokio::time::timeout(
        Duration::from_secs(10),
        socket.connect(([127, 0, 0, 1], server.port).into()),
    )
    .await
    .expect("connect timed out")
    .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n",
        server.port
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("answer timed out")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("no end of headers");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")),
        "this little client reads no chunked bodies"
    );
    Resp {
        status,
        headers,
        body: body.to_string(),
    }
}

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

/// (a) Without --lock-token or --locks-open (`make run`), every lock route refuses and says
/// which flag turns the service on.
#[tokio::test]
async fn off_unless_a_token_or_locks_open_is_given() {
    let server = start(&[]).await;
    for (method, path) in [
        ("GET", "/locks/leader"),
        ("PUT", "/locks/leader?holder=pod-a"),
        ("DELETE", "/locks/leader?holder=pod-a"),
    ] {
        let r = request(&server, A, method, path, &[]).await;
        assert_eq!(r.status, 403, "{method} {path}: {r:?}");
        let e = r.error();
        assert!(
            e.contains("--lock-token") && e.contains("--locks-open"),
            "{e}"
        );
    }
    // The rest of the server works.
    assert_eq!(
        request(&server, A, "GET", "/api/v1/health", &[])
            .await
            .status,
        200
    );

    // --locks-open opens it explicitly, with no token.
    let open = start(&["--locks-open"]).await;
    let r = request(&open, A, "PUT", "/locks/leader?holder=pod-a", &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn contradictory_or_weak_lock_flags_stop_the_start() {
    let err = refused_start(&["--lock-token", TOKEN, "--locks-open"]);
    assert!(
        err.contains("--lock-token") && err.contains("--locks-open") && err.contains("not both"),
        "{err}"
    );
    let err = refused_start(&["--lock-token", "short"]);
    assert!(err.contains("--lock-token"), "{err}");
    assert!(err.contains("at least"), "{err}");
}

/// (b) A wrong or missing token is refused with 401; the right one is accepted as
/// `Authorization: Bearer` and as `?token=` (Metaparticle clients send no headers).
#[tokio::test]
async fn the_token_by_header_or_query_and_nothing_else() {
    let server = start(&["--lock-token", TOKEN]).await;
    let wrong = format!("Bearer {}", TOKEN.replace('0', "1"));
    for (path, headers) in [
        ("/locks/l?holder=a", vec![]),
        ("/locks/l?holder=a", vec![("Authorization", wrong.as_str())]),
        ("/locks/l?holder=a&token=nope", vec![]),
        ("/locks/l?holder=a&token=", vec![]),
    ] {
        let r = request(&server, A, "PUT", path, &headers).await;
        assert_eq!(r.status, 401, "{path} {headers:?}: {r:?}");
        assert!(r.error().contains("token"), "{r:?}");
    }
    let (k, v) = bearer();
    let r = request(&server, A, "PUT", "/locks/l?holder=a", &[(k, &v)]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = request(&server, A, "GET", &format!("/locks/l?token={TOKEN}"), &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["holders"][0]["holder"], "a");
}

/// A Metaparticle client as it really is: no headers, the token and its name in the URL,
/// heartbeats by PUT. Its hold answers to its name from its address, nobody else.
#[tokio::test]
async fn metaparticle_clients_work_with_the_token_in_the_url() {
    let server = start(&["--lock-token", TOKEN]).await;
    let url = |holder: &str| format!("/locks/leader?holder={holder}&token={TOKEN}");
    assert_eq!(
        request(&server, A, "GET", &url("pod-a"), &[]).await.status,
        404
    );
    assert_eq!(
        request(&server, A, "PUT", &url("pod-a"), &[]).await.status,
        200
    );
    assert_eq!(
        request(&server, A, "GET", &url("pod-a"), &[]).await.status,
        200
    );
    assert_eq!(
        request(&server, A, "PUT", &url("pod-a"), &[]).await.status,
        200,
        "heartbeat"
    );
    assert_eq!(
        request(&server, B, "PUT", &url("pod-b"), &[]).await.status,
        409
    );
    // Someone elsewhere naming pod-a can neither renew nor release its hold: to them it
    // holds nothing (404, as before the lock service had access control).
    let r = request(&server, B, "PUT", &url("pod-a"), &[]).await;
    assert_eq!(r.status, 409, "{r:?}");
    let r = request(&server, B, "DELETE", &url("pod-a"), &[]).await;
    assert_eq!(r.status, 404, "{r:?}");
    r.error();
    let r = request(&server, A, "GET", &url("pod-a"), &[]).await;
    assert_eq!(r.json()["holders"][0]["holder"], "pod-a", "{r:?}");
    // pod-a itself releases it.
    assert_eq!(
        request(&server, A, "DELETE", &url("pod-a"), &[])
            .await
            .status,
        200
    );
    assert_eq!(
        request(&server, A, "GET", &url("pod-a"), &[]).await.status,
        404
    );
}

/// (c, d) Each acquisition gets a secret. Without it, or with a wrong one, nobody renews or
/// releases the hold; with it the holder may even move. Once used, only the secret counts.
/// GET shows holders, never secrets.
#[tokio::test]
async fn each_acquisition_has_a_secret_that_guards_its_hold() {
    let server = start(&["--lock-token", TOKEN]).await;
    let (k, v) = bearer();
    let auth = (k, v.as_str());
    let holder = ("X-Lock-Holder", "job-runner");
    let r = request(&server, A, "PUT", "/locks/job?ttl=60", &[auth, holder]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32, "{secret}");
    assert_eq!(r.header("x-lock-secret"), Some(secret.as_str()));

    let r = request(&server, B, "GET", "/locks/job", &[auth]).await;
    assert_eq!(r.status, 200);
    assert!(
        !r.body.contains(&secret),
        "GET shows the secret: {}",
        r.body
    );
    assert!(!r.body.contains("secret"), "{}", r.body);
    assert!(r.header("x-lock-secret").is_none());

    let wrong = ("X-Lock-Secret", "not-the-secret");
    let right = ("X-Lock-Secret", secret.as_str());
    let r = request(&server, A, "PUT", "/locks/job", &[auth, holder, wrong]).await;
    assert_eq!(r.status, 409, "wrong secret: {r:?}");
    let r = request(&server, B, "PUT", "/locks/job", &[auth, holder]).await;
    assert_eq!(r.status, 409, "no secret, another address: {r:?}");
    let r = request(&server, A, "DELETE", "/locks/job", &[auth, holder, wrong]).await;
    assert_eq!(r.status, 404, "{r:?}");
    r.error();
    assert_eq!(r.json()["field"], "secret", "{r:?}");
    let r = request(&server, B, "DELETE", "/locks/job", &[auth, holder]).await;
    assert_eq!(r.status, 404, "{r:?}");
    r.error();

    // The holder with its secret, even from another address.
    let r = request(
        &server,
        B,
        "PUT",
        "/locks/job?ttl=60",
        &[auth, holder, right],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json().get("secret").is_none(), "a renewal issues none");
    // It used the secret: its address alone no longer does.
    let r = request(&server, A, "PUT", "/locks/job", &[auth, holder]).await;
    assert_eq!(r.status, 409, "{r:?}");
    let r = request(&server, A, "DELETE", "/locks/job", &[auth, holder]).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = request(
        &server,
        A,
        "DELETE",
        &format!("/locks/job?holder=job-runner&secret={secret}"),
        &[auth],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        request(&server, A, "GET", "/locks/job", &[auth])
            .await
            .status,
        404
    );
}

/// (e) Lock and holder names are capped in length.
#[tokio::test]
async fn names_and_holders_are_capped_in_length() {
    let server = start(&["--lock-token", TOKEN]).await;
    let (k, v) = bearer();
    let auth = (k, v.as_str());
    let long = "n".repeat(129);
    let r = request(
        &server,
        A,
        "PUT",
        &format!("/locks/{long}?holder=a"),
        &[auth],
    )
    .await;
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.json()["field"], "name");
    let r = request(
        &server,
        A,
        "PUT",
        &format!("/locks/x?holder={long}"),
        &[auth],
    )
    .await;
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.json()["field"], "holder");
    let fits = "n".repeat(128);
    let r = request(
        &server,
        A,
        "PUT",
        &format!("/locks/{fits}?holder={fits}"),
        &[auth],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// (e) One lock takes at most 32 holders (the total number of locks is capped too: see the
/// unit tests, which lower the cap).
#[tokio::test]
async fn a_lock_takes_at_most_32_holders() {
    let server = start(&["--lock-token", TOKEN]).await;
    let (k, v) = bearer();
    let auth = (k, v.as_str());
    let mut refused = None;
    for i in 0..40 {
        let r = request(
            &server,
            A,
            "PUT",
            &format!("/locks/shared?mode=shared&holder=reader-{i}"),
            &[auth],
        )
        .await;
        if r.status != 200 {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("40 holders of one lock were all accepted");
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.error().contains("holders"), "{r:?}");
    assert_eq!(i, 32, "the 33rd holder is refused");
}

/// (e) Each client address gets a limited number of requests per second: then 429 with
/// Retry-After, while other addresses go on.
#[tokio::test]
async fn each_address_is_limited_in_requests_per_second() {
    let server = start(&["--lock-token", TOKEN]).await;
    let (k, v) = bearer();
    let auth = (k, v.as_str());
    let mut limited = None;
    for _ in 0..200 {
        let r = request(&server, A, "GET", "/locks/free", &[auth]).await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 404, "{r:?}");
    }
    let r = limited.expect("200 requests in a row from one address were all served");
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(wait >= 1, "{r:?}");
    r.error();
    assert_eq!(
        request(&server, B, "GET", "/locks/free", &[auth])
            .await
            .status,
        404,
        "another address is still served"
    );
}

/// A proxy in front of the server that it was not told to trust (no `--trusted-proxy`).
const PROXY: &str = "127.0.0.3";

/// Behind a proxy the server does not trust, every client has the proxy's address, so the
/// address proves no holder: someone else behind the same proxy, with the token and the
/// holder's name from GET, neither releases nor renews a hold that was taken without its
/// secret being used. Only the secret does.
#[tokio::test]
async fn an_untrusted_proxy_lends_its_clients_no_address() {
    let server = start(&["--lock-token", TOKEN]).await;
    let url = |holder: &str| format!("/locks/leader?holder={holder}&token={TOKEN}");
    let pod_a = [("X-Forwarded-For", "10.1.0.1")];
    let other = [("X-Forwarded-For", "10.1.0.2")];
    let r = request(&server, PROXY, "PUT", &url("pod-a"), &pod_a).await;
    assert_eq!(r.status, 200, "{r:?}");
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let r = request(&server, PROXY, "GET", &url("x"), &other).await;
    assert_eq!(r.json()["holders"][0]["holder"], "pod-a", "{r:?}");

    // The attack: release (or renew) pod-a's hold by its name, through the same proxy.
    for (headers, what) in [
        (&other[..], "X-Forwarded-For"),
        (&[("Forwarded", "for=10.1.0.2")][..], "Forwarded"),
        (&[("X-Real-IP", "10.1.0.2")][..], "X-Real-IP"),
    ] {
        let r = request(&server, PROXY, "DELETE", &url("pod-a"), headers).await;
        assert_eq!(r.status, 404, "{what}: {r:?}");
        assert!(r.error().contains("--trusted-proxy"), "{what}: {r:?}");
        let r = request(&server, PROXY, "PUT", &url("pod-a"), headers).await;
        assert_eq!(r.status, 409, "{what}: {r:?}");
        assert!(r.error().contains("--trusted-proxy"), "{what}: {r:?}");
    }
    // Nor from the proxy's own address, unforwarded: the hold never had an address.
    let r = request(&server, PROXY, "DELETE", &url("pod-a"), &[]).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = request(&server, PROXY, "GET", &url("x"), &[]).await;
    assert_eq!(r.json()["holders"][0]["holder"], "pod-a", "{r:?}");

    // pod-a itself, without the secret, proves no more than anyone behind the proxy; with
    // it, it renews and releases.
    let r = request(&server, PROXY, "PUT", &url("pod-a"), &pod_a).await;
    assert_eq!(r.status, 409, "{r:?}");
    let with_secret = format!("{}&secret={secret}", url("pod-a"));
    let r = request(&server, PROXY, "PUT", &with_secret, &pod_a).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = request(&server, PROXY, "DELETE", &with_secret, &pod_a).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// Behind a proxy named with `--trusted-proxy`, each client is the address it forwards: a
/// Metaparticle client heartbeats and releases by its name, nobody else does. A forwarding
/// header the server does not read (`Forwarded`) leaves the client unknown: no address.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_address() {
    let server = start(&["--lock-token", TOKEN, "--trusted-proxy", PROXY]).await;
    let url = |holder: &str| format!("/locks/leader?holder={holder}&token={TOKEN}");
    let pod_a = [("X-Forwarded-For", "10.1.0.1")];
    let other = [("X-Forwarded-For", "10.1.0.2")];
    let r = request(&server, PROXY, "PUT", &url("pod-a"), &pod_a).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = request(&server, PROXY, "PUT", &url("pod-a"), &pod_a).await;
    assert_eq!(r.status, 200, "heartbeat: {r:?}");
    let r = request(&server, PROXY, "PUT", &url("pod-a"), &other).await;
    assert_eq!(r.status, 409, "{r:?}");
    let r = request(&server, PROXY, "DELETE", &url("pod-a"), &other).await;
    assert_eq!(r.status, 404, "{r:?}");
    r.error();
    let r = request(
        &server,
        PROXY,
        "DELETE",
        &url("pod-a"),
        &[("Forwarded", "for=10.1.0.1")],
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.error().contains("--trusted-proxy"), "{r:?}");
    let r = request(&server, PROXY, "DELETE", &url("pod-a"), &pod_a).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// Requests without the right token are counted apart from those with it: one client
/// without the token, behind the same address (an ingress, a NAT), cannot use up the rate
/// of the clients that have it, whose heartbeats would then fail and their holds expire.
#[tokio::test]
async fn requests_without_the_token_do_not_use_up_the_rate_of_those_with_it() {
    let server = start(&["--lock-token", TOKEN]).await;
    let (k, v) = bearer();
    let auth = (k, v.as_str());
    let shared = "127.0.0.4";
    let mut limited = None;
    for _ in 0..200 {
        let r = request(&server, shared, "GET", "/locks/free?token=guess", &[]).await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 401, "{r:?}");
    }
    let r = limited.expect("200 requests with a wrong token were all served");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    let r = request(&server, shared, "GET", "/locks/free", &[auth]).await;
    assert_eq!(r.status, 404, "the token's holders are still served: {r:?}");
    let r = request(&server, shared, "GET", "/locks/free?token=guess", &[]).await;
    assert_eq!(r.status, 429, "guesses still wait: {r:?}");
}

/// A hold lasts at most an hour: a longer `?ttl=` is cut to 3600 seconds (Metaparticle
/// clients heartbeat well within their TTL), so one client cannot keep locks from everyone
/// for a day.
#[tokio::test]
async fn a_hold_lasts_at_most_an_hour() {
    let server = start(&["--lock-token", TOKEN]).await;
    let (k, v) = bearer();
    let auth = (k, v.as_str());
    let before = chrono::Utc::now();
    let r = request(&server, A, "PUT", "/locks/day?holder=a&ttl=86400", &[auth]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(r.json()["holders"][0]["expires_at"].clone()).unwrap();
    assert!(
        expires <= chrono::Utc::now() + chrono::Duration::seconds(3600)
            && expires >= before + chrono::Duration::seconds(3590),
        "{r:?}"
    );
    assert_eq!(r.json()["ttl"], 3600, "the TTL granted: {r:?}");
    let r = request(&server, A, "PUT", "/locks/day?holder=a&ttl=0", &[auth]).await;
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.json()["field"], "ttl");
}
