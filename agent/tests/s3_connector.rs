//! The S3 connector against an S3-compatible server started in-process (s3s + s3s-fs over a
//! temporary directory, checking SigV4 signatures), in each format.

mod support;

use std::collections::BTreeMap;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use idra_agent::connectors::{self, ConnectionSpec};
use idra_core::model::{ConnectorKind, SyncMode, WriteMode};
use idra_core::secret::Secret;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use support::compliance::{self, Peer};
use support::{create_source, insert_rows, minute, sync, unique, Db, Harness};

const ACCESS_KEY: &str = "AKIDIDRATEST";
const SECRET_KEY: &str = "idra-secret-key-for-tests";

struct Server {
    endpoint: String,
    root: tempfile::TempDir,
}

async fn serve() -> Server {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("lake")).unwrap();
    let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
    let service = {
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        b.build()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    Server { endpoint, root }
}

fn spec(server: &Server, secret: &str, options: &[(&str, &str)]) -> ConnectionSpec {
    let mut o = BTreeMap::from([
        ("endpoint".to_string(), server.endpoint.clone()),
        ("access_key_id".to_string(), ACCESS_KEY.to_string()),
    ]);
    for (k, v) in options {
        o.insert(k.to_string(), v.to_string());
    }
    ConnectionSpec {
        kind: ConnectorKind::S3,
        connection_string: "s3://lake/raw".into(),
        options: o,
        secrets: BTreeMap::from([("password".to_string(), Secret::new(secret))]),
    }
}

#[tokio::test]
async fn s3_passes_the_compliance_harness_in_every_format() {
    let server = serve().await;
    for (label, options) in [
        (
            "s3 jsonl.gz",
            vec![("format", "jsonl"), ("compression", "gzip")],
        ),
        ("s3 csv", vec![("format", "csv")]),
        ("s3 parquet", vec![("format", "parquet")]),
    ] {
        let peer = Peer {
            label,
            source: spec(&server, SECRET_KEY, &options),
            destination: spec(&server, SECRET_KEY, &options),
            bad_credentials: Some(spec(&server, "not-the-secret", &options)),
            fresh: Box::new(|| unique("folder")),
            declare_schema: true,
            exact_types: true,
            millisecond_timestamps: false,
        };
        compliance::check_all(&peer).await;
    }
}

#[tokio::test]
async fn objects_are_named_in_sequence_and_read_in_order() {
    let server = serve().await;
    let lite = Db::sqlite();
    let src = unique("orders");
    create_source(&lite, &src).await;
    insert_rows(&lite, &src, 1, 25, minute).await;
    let folder = unique("orders");
    let mut h = Harness::new(
        sync("to_s3", &src, &folder, SyncMode::ById, WriteMode::Insert),
        &lite,
        &lite,
    );
    h.runner.job.destination = spec(&server, SECRET_KEY, &[("format", "parquet")]);
    h.runner.run_once().await.unwrap();
    // A new destination (as after a restart) continues the sequence.
    insert_rows(&lite, &src, 26, 30, minute).await;
    let mut h2 = Harness::new(h.runner.job.sync.clone(), &lite, &lite);
    h2.runner.job.destination = spec(&server, SECRET_KEY, &[("format", "parquet")]);
    std::mem::swap(&mut h2.runner.offsets, &mut h.runner.offsets);
    h2.runner.run_once().await.unwrap();

    let dir = server
        .root
        .path()
        .join("lake/raw")
        .join(&folder)
        .join(&h.runner.job.sync.id);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    names.sort();
    let expected: Vec<String> = (1..=4).map(|n| format!("{n:020}.parquet")).collect();
    assert_eq!(names, expected, "batches of 10, 10, 5 then 5");

    // Read back through the engine: every row once, in key order.
    let dst = unique("from_s3");
    let mut back = Harness::new(
        sync("from_s3", &folder, &dst, SyncMode::ById, WriteMode::Insert),
        &lite,
        &lite,
    );
    back.runner.job.source = spec(&server, SECRET_KEY, &[]);
    back.sync_until(&lite, &dst, 30).await;
    assert_eq!(lite.duplicates(&dst).await, 0);
}

#[tokio::test]
async fn wrong_credentials_and_a_missing_bucket_are_named() {
    let server = serve().await;
    let e = connectors::open_source(&spec(&server, "wrong", &[]))
        .unwrap()
        .test_connection()
        .await
        .unwrap_err();
    assert!(
        !e.is_retryable() && e.message.contains("credentials"),
        "{e}"
    );
    let mut missing = spec(&server, SECRET_KEY, &[]);
    missing.connection_string = "s3://no-such-bucket".into();
    let e = connectors::open_source(&missing)
        .unwrap()
        .test_connection()
        .await
        .unwrap_err();
    assert!(e.message.contains("bucket"), "{e}");
    connectors::open_source(&spec(&server, SECRET_KEY, &[]))
        .unwrap()
        .test_connection()
        .await
        .unwrap();
}

/// Review 15: a listing page holding no data objects (folder markers, other files) was
/// listed again from the same place forever; the source now moves past the whole page.
#[tokio::test]
async fn a_page_of_objects_without_data_is_passed_over() {
    let server = serve().await;
    let folder = unique("mixed");
    let dir = server.root.path().join("lake/raw").join(&folder);
    std::fs::create_dir_all(&dir).unwrap();
    // More than one listing page (1,000 keys) of objects that hold no rows, then data.
    for n in 0..1001 {
        std::fs::write(dir.join(format!("a{n:04}.txt")), "not rows").unwrap();
    }
    std::fs::write(
        dir.join("b0001.jsonl"),
        "{\"id\": 1, \"name\": \"one\"}\n{\"id\": 2, \"name\": \"two\"}\n",
    )
    .unwrap();
    let lite = Db::sqlite();
    let dst = unique("from_mixed");
    let mut h = Harness::new(
        sync("mixed", &folder, &dst, SyncMode::ById, WriteMode::Insert),
        &lite,
        &lite,
    );
    h.runner.job.source = spec(&server, SECRET_KEY, &[("schema", "id bigint, name text")]);
    tokio::time::timeout(std::time::Duration::from_secs(60), h.runner.run_once())
        .await
        .expect("the read must not list the same page forever")
        .unwrap();
    assert_eq!(lite.count(&dst).await, 2);
}

/// The cursor stays on data objects: a marker that sorts after later data objects (Spark's
/// `_SUCCESS` after digits) must not become the position, or those objects are skipped.
#[tokio::test]
async fn a_marker_object_does_not_become_the_position() {
    let server = serve().await;
    let folder = unique("marked");
    let dir = server.root.path().join("lake/raw").join(&folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0001.jsonl"), "{\"id\": 1, \"name\": \"one\"}\n").unwrap();
    std::fs::write(dir.join("_SUCCESS"), "").unwrap();
    let lite = Db::sqlite();
    let dst = unique("from_marked");
    let mut h = Harness::new(
        sync("marked", &folder, &dst, SyncMode::ById, WriteMode::Insert),
        &lite,
        &lite,
    );
    h.runner.job.source = spec(&server, SECRET_KEY, &[]);
    h.runner.run_once().await.unwrap();
    std::fs::write(dir.join("0002.jsonl"), "{\"id\": 2, \"name\": \"two\"}\n").unwrap();
    h.runner.run_once().await.unwrap();
    assert_eq!(lite.count(&dst).await, 2);
}
