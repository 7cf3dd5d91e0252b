//! etcd over TLS with client-certificate authentication: a private etcd started by this
//! test with certificates made by `openssl`. Skipped (visibly) without `etcd`, and fails
//! instead when `IDRA_REQUIRE_ETCD=1`.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use idra_core::store::{EtcdOptions, EtcdStore, Store};

struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=idra-test-ca",
    ]);
    run(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let mut req = vec!["req"];
        req.extend(ec);
        let (key, csr, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("/CN={name}"),
        );
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        run(dir, &req);
        let (pem, ext) = (format!("{name}.pem"), format!("{name}.ext"));
        run(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn tls_with_client_certificates() {
    if Command::new("etcd").arg("--version").output().is_err()
        || Command::new("openssl").arg("version").output().is_err()
    {
        if std::env::var("IDRA_REQUIRE_ETCD").as_deref() == Ok("1") {
            panic!("IDRA_REQUIRE_ETCD=1 but etcd or openssl is not installed");
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped: etcd TLS test: etcd or openssl is not installed"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (port, peer) = (free_port(), free_port());
    let url = format!("https://127.0.0.1:{port}");
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let _etcd = Etcd(
        Command::new("etcd")
            .args([
                "--name",
                "tls",
                "--data-dir",
                &p("data"),
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-cluster",
                &format!("tls=http://127.0.0.1:{peer}"),
                "--cert-file",
                &p("server.pem"),
                "--key-file",
                &p("server.key"),
                "--trusted-ca-file",
                &p("ca.pem"),
                "--client-cert-auth",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let options = EtcdOptions {
        endpoints: vec![url.clone()],
        ca: Some(dir.path().join("ca.pem")),
        cert: Some(dir.path().join("client.pem")),
        key: Some(dir.path().join("client.key")),
        ..EtcdOptions::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let store = loop {
        match EtcdStore::connect(options.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "TLS etcd never answered: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    store.put("/idra/tls", b"ok".to_vec(), None).await.unwrap();
    assert_eq!(store.get("/idra/tls").await.unwrap().unwrap().value, b"ok");

    // Without a client certificate etcd refuses; the error names the endpoint.
    let no_cert = EtcdOptions {
        cert: None,
        key: None,
        ..options.clone()
    };
    let e = EtcdStore::connect(no_cert)
        .await
        .err()
        .expect("client certificate required")
        .to_string();
    assert!(e.contains(&url), "{e}");
    // Trusting another CA fails too.
    let mut wrong_ca = options.clone();
    wrong_ca.ca = Some(dir.path().join("client.pem"));
    assert!(EtcdStore::connect(wrong_ca).await.is_err());
}
