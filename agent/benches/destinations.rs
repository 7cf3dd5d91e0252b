//! Throughput of every destination on 100,000 rows (10 batches of 10,000, the engine's
//! default batch size): rows of (bigint id, timestamptz, 40-character text,
//! numeric(12,2), int), each batch written with its commit record as the engine does.
//! Run by `make bench` (bench/run.sh); prints rows/s per destination and checks that each
//! destination received every row.
//!
//! Peers: Postgres, MariaDB and RabbitMQ as started for the tests, SQLite in a temporary
//! file, MongoDB = SecantusDB (scripts/start-mongo.sh), S3 = s3s-fs in this process, HTTP =
//! an axum endpoint in this process, Kafka = librdkafka's mock cluster in this process (not a
//! real broker's speed), SQL Server only with IDRA_TEST_MSSQL_URL.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use chrono::{TimeZone, Utc};
use idra_agent::connectors::types::{Column, ColumnType};
use idra_agent::connectors::values::{BatchBuilder, Value};
use idra_agent::connectors::{self, Commit, ConnectionSpec, WriteRequest};
use idra_core::model::{ConnectorKind, Cursor, WriteMode};
use idra_core::secret::Secret;

const ROWS: usize = 100_000;
const BATCH: usize = 10_000;

fn columns() -> Vec<Column> {
    vec![
        Column::new("id", ColumnType::Int64, false),
        Column::new("ts", ColumnType::TimestampTz, false),
        Column::new("txt", ColumnType::Text, false),
        Column::new(
            "amount",
            ColumnType::Decimal {
                precision: 12,
                scale: 2,
            },
            false,
        ),
        Column::new("n", ColumnType::Int32, false),
    ]
}

fn batches() -> Vec<RecordBatch> {
    let cols = columns();
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0..ROWS / BATCH)
        .map(|b| {
            let mut builder = BatchBuilder::new(&cols, BATCH);
            for i in 0..BATCH {
                let id = (b * BATCH + i + 1) as i64;
                builder.push(0, Value::Int(id)).unwrap();
                builder
                    .push(1, Value::TimestampTz(start + chrono::Duration::seconds(id)))
                    .unwrap();
                builder
                    .push(
                        2,
                        Value::Text(format!("{:032x}{id:08}", id * 2_654_435_761)),
                    )
                    .unwrap();
                builder
                    .push(3, Value::Decimal((id % 1_000_000) as i128))
                    .unwrap();
                builder.push(4, Value::Int(id % 1000)).unwrap();
                builder.end_row();
            }
            builder.finish().unwrap()
        })
        .collect()
}

fn spec(
    kind: ConnectorKind,
    cs: &str,
    options: &[(&str, &str)],
    password: Option<&str>,
) -> ConnectionSpec {
    ConnectionSpec {
        kind,
        connection_string: cs.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: password
            .map(|p| BTreeMap::from([("password".to_string(), Secret::new(p))]))
            .unwrap_or_default(),
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Writes every batch to `table` and returns rows/s.
async fn run(
    label: &str,
    spec: &ConnectionSpec,
    table: &str,
    batches: &[RecordBatch],
) -> Option<f64> {
    let dest = match connectors::open_destination(spec) {
        Ok(d) => d,
        Err(e) => {
            println!("{label:<24} error: {e}");
            return None;
        }
    };
    let keys = vec!["id".to_string()];
    if let Err(e) = dest.ensure_table(table, &columns(), &keys, true).await {
        println!("{label:<24} error: {e}");
        return None;
    }
    let sync_id = unique("bench");
    let began = Instant::now();
    for (i, batch) in batches.iter().enumerate() {
        let commit = Commit {
            sync_id: sync_id.clone(),
            fence: 0,
            cursor: Cursor::Id {
                last_id: ((i + 1) * BATCH) as i64,
            },
        };
        let req = WriteRequest {
            table,
            keys: &keys,
            mode: WriteMode::Insert,
            rows: batch,
            commit: &commit,
        };
        if let Err(e) = dest.write(req).await {
            println!("{label:<24} error: {e}");
            return None;
        }
    }
    dest.finish_load(table, &keys).await.ok();
    let secs = began.elapsed().as_secs_f64();
    let rate = ROWS as f64 / secs;
    println!("{label:<24} {ROWS} rows in {secs:6.2} s  {rate:>10.0} rows/s");
    Some(rate)
}

async fn count_sql(kind: ConnectorKind, url: &str, table: &str) -> i64 {
    let source = connectors::open_source(&spec(kind, url, &[], None)).unwrap();
    let rs = connectors::ReadSpec {
        table: Some(table.into()),
        query: None,
        key: "id".into(),
        timestamp: None,
        settle_before: None,
        snapshot: false,
    };
    let cols = source.columns(&rs).await.unwrap();
    source
        .read(&rs, &cols, &Cursor::Start, ROWS + 1)
        .await
        .unwrap()
        .rows
        .num_rows() as i64
}

fn check(label: &str, got: i64) {
    if got != ROWS as i64 {
        println!("{label:<24} MISMATCH: the destination holds {got} rows, expected {ROWS}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn main() {
    let batches = batches();
    println!("== destinations: {ROWS} rows in batches of {BATCH} (bigint, timestamptz, text(40), numeric(12,2), int)");

    let pg = std::env::var("IDRA_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let t = unique("bench_dst");
    if run(
        "postgres",
        &spec(ConnectorKind::Postgres, &pg, &[], None),
        &t,
        &batches,
    )
    .await
    .is_some()
    {
        check(
            "postgres",
            count_sql(ConnectorKind::Postgres, &pg, &t).await,
        );
    }

    let my = std::env::var("IDRA_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let t = unique("bench_dst");
    if run(
        "mysql/mariadb",
        &spec(ConnectorKind::Mysql, &my, &[], None),
        &t,
        &batches,
    )
    .await
    .is_some()
    {
        check(
            "mysql/mariadb",
            count_sql(ConnectorKind::Mysql, &my, &t).await,
        );
    }

    let dir = tempfile::tempdir().unwrap();
    idra_agent::connectors::sqlite::set_dir(&std::env::temp_dir()).unwrap();
    let lite = format!("sqlite://{}", dir.path().join("bench.db").display());
    if run(
        "sqlite",
        &spec(ConnectorKind::Sqlite, &lite, &[], None),
        "bench_dst",
        &batches,
    )
    .await
    .is_some()
    {
        check(
            "sqlite",
            count_sql(ConnectorKind::Sqlite, &lite, "bench_dst").await,
        );
    }

    match std::env::var("IDRA_TEST_MSSQL_URL") {
        Err(_) => println!(
            "{:<24} skipped: set IDRA_TEST_MSSQL_URL (no SQL Server on this machine)",
            "sql server"
        ),
        Ok(url) => {
            let (cs, pw): (Vec<&str>, Vec<&str>) = url
                .split(';')
                .partition(|p| !p.trim().to_ascii_lowercase().starts_with("password"));
            let password = pw
                .first()
                .and_then(|p| p.split_once('='))
                .map(|(_, v)| v.trim())
                .unwrap_or("");
            let s = spec(ConnectorKind::SqlServer, &cs.join(";"), &[], Some(password));
            let t = unique("bench_dst");
            if run("sql server", &s, &t, &batches).await.is_some() {
                check(
                    "sql server",
                    count_sql(ConnectorKind::SqlServer, &cs.join(";"), &t).await,
                );
            }
        }
    }

    // MongoDB (SecantusDB, with the test user).
    let mongo = std::env::var("IDRA_TEST_MONGO").unwrap_or_else(|_| {
        "mongodb://idra@127.0.0.1:27017/idra_test?authSource=admin&directConnection=true".into()
    });
    let coll = unique("bench_dst");
    if run(
        "mongodb (secantusdb)",
        &spec(ConnectorKind::MongoDb, &mongo, &[], Some("idra-secret")),
        &coll,
        &batches,
    )
    .await
    .is_some()
    {
        let client = mongodb::Client::with_uri_str(mongo.replacen("idra@", "idra:idra-secret@", 1))
            .await
            .unwrap();
        let n = client
            .database("idra_test")
            .collection::<mongodb::bson::Document>(&coll)
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap();
        check("mongodb (secantusdb)", n as i64);
        client
            .database("idra_test")
            .collection::<mongodb::bson::Document>(&coll)
            .drop()
            .await
            .ok();
    }

    // RabbitMQ (the broker started for the tests): messages on a fresh durable queue.
    let amqp = std::env::var("IDRA_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest@127.0.0.1:5672/%2f".into());
    let q = unique("bench_q");
    if run(
        "rabbitmq",
        &spec(ConnectorKind::RabbitMq, &amqp, &[], Some("guest")),
        &q,
        &batches,
    )
    .await
    .is_some()
    {
        let conn = lapin::Connection::connect(
            &amqp.replacen("guest@", "guest:guest@", 1),
            lapin::ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let decl = ch
            .queue_declare(
                q.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .unwrap();
        check("rabbitmq", decl.message_count() as i64);
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .ok();
    }

    // Kafka: librdkafka's mock cluster in this process.
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    let topic = unique("bench");
    cluster.create_topic(&topic, 4, 1).unwrap();
    run(
        "kafka (mock cluster)",
        &spec(
            ConnectorKind::Kafka,
            &cluster.bootstrap_servers(),
            &[],
            None,
        ),
        &topic,
        &batches,
    )
    .await;

    // S3: s3s-fs in this process, checking signatures; JSON lines and Parquet objects.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("lake")).unwrap();
    let endpoint = serve_s3(root.path()).await;
    for format in ["jsonl", "parquet"] {
        let s = spec(
            ConnectorKind::S3,
            "s3://lake/bench",
            &[
                ("endpoint", &endpoint),
                ("access_key_id", "AKIDBENCH"),
                ("format", format),
            ],
            Some("bench-secret"),
        );
        let folder = unique("dst");
        let label = format!("s3 {format} (s3s-fs)");
        if run(&label, &s, &folder, &batches).await.is_some() {
            let source = connectors::open_source(&s).unwrap();
            let rs = connectors::ReadSpec {
                table: Some(folder.clone()),
                query: None,
                key: "id".into(),
                timestamp: None,
                settle_before: None,
                snapshot: false,
            };
            let cols = source.columns(&rs).await.unwrap();
            check(
                &label,
                source
                    .read(&rs, &cols, &Cursor::Start, ROWS + 1)
                    .await
                    .unwrap()
                    .rows
                    .num_rows() as i64,
            );
        }
    }

    // HTTP: an axum endpoint in this process that parses and counts what it receives.
    let received = Arc::new(AtomicUsize::new(0));
    let base = serve_http(received.clone()).await;
    if run(
        "http api (axum)",
        &spec(ConnectorKind::Http, &base, &[], Some("bench-token")),
        "orders",
        &batches,
    )
    .await
    .is_some()
    {
        check("http api (axum)", received.load(Ordering::SeqCst) as i64);
    }
}

async fn serve_s3(root: &std::path::Path) -> String {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single(
        "AKIDBENCH",
        "bench-secret",
    ));
    let service = b.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
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
    endpoint
}

async fn serve_http(received: Arc<AtomicUsize>) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/api/{*path}",
        post(move |body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                let records: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                received.fetch_add(records.len(), Ordering::SeqCst);
                axum::http::StatusCode::CREATED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/api")
}
