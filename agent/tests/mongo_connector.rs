//! The MongoDB connector against SecantusDB, a MongoDB-wire-protocol server (started with
//! SCRAM auth on 127.0.0.1:27017 by scripts/start-mongo.sh; `IDRA_TEST_MONGO` points
//! elsewhere): queries by key, change streams resumed by their stored token, bulk upserts.

mod support;

use std::collections::BTreeMap;

use idra_agent::connectors::ConnectionSpec;
use idra_core::model::{ConnectorKind, Cursor, SyncMode, WriteMode};
use idra_core::secret::Secret;
use mongodb::bson::{doc, Document};
use support::compliance::{self, Peer};
use support::{sync, unique, Db, Harness};

fn mongo_url() -> String {
    std::env::var("IDRA_TEST_MONGO").unwrap_or_else(|_| {
        "mongodb://idra@127.0.0.1:27017/idra_test?authSource=admin&directConnection=true".into()
    })
}

fn spec(password: &str, options: &[(&str, &str)]) -> ConnectionSpec {
    ConnectionSpec {
        kind: ConnectorKind::MongoDb,
        connection_string: mongo_url(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: BTreeMap::from([("password".to_string(), Secret::new(password))]),
    }
}

async fn collection(name: &str) -> mongodb::Collection<Document> {
    let uri = mongo_url().replacen("idra@", "idra:idra-secret@", 1);
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    client.database("idra_test").collection(name)
}

#[tokio::test]
async fn mongodb_passes_the_compliance_harness() {
    let peer = Peer {
        label: "mongodb",
        source: spec("idra-secret", &[]),
        destination: spec("idra-secret", &[]),
        bad_credentials: Some(spec("wrong-password", &[])),
        fresh: Box::new(|| unique("coll")),
        declare_schema: true,
        exact_types: true,
        millisecond_timestamps: true,
    };
    compliance::check_all(&peer).await;
}

#[tokio::test]
async fn object_ids_page_in_order_and_upserts_replace() {
    let name = unique("people");
    let coll = collection(&name).await;
    let docs: Vec<Document> = (0..25)
        .map(|i| doc! { "name": format!("p{i}"), "age": i })
        .collect();
    coll.insert_many(docs).await.unwrap();

    // By _id (ObjectIds, inferred fields) in batches of 10, then again after an update.
    let lite = Db::sqlite();
    let dst = unique("people");
    let mut h = Harness::new(
        sync("from_mongo", &name, &dst, SyncMode::ById, WriteMode::Upsert),
        &lite,
        &lite,
    );
    h.runner.job.sync.key_columns = vec!["_id".into()];
    h.runner.job.source = spec("idra-secret", &[]);
    h.sync_until(&lite, &dst, 25).await;
    assert_eq!(lite.duplicates_by(&dst, "_id").await, 0);
    let offset = h
        .runner
        .offsets
        .load(&h.runner.job.sync.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(offset.cursor, Cursor::Token { ref token } if token.contains("$oid")),
        "{offset:?}"
    );

    // Into MongoDB with upsert by `age`: a second copy of the same rows (a new sync with
    // its own offset) replaces them, never duplicates.
    let back = unique("people_back");
    for _ in 0..2 {
        let mut to = Harness::new(
            sync("to_mongo", &dst, &back, SyncMode::ById, WriteMode::Upsert),
            &lite,
            &lite,
        );
        to.runner.job.sync.key_columns = vec!["age".into()];
        to.runner.job.destination = spec("idra-secret", &[]);
        to.runner.run_once().await.unwrap();
    }
    assert_eq!(
        collection(&back)
            .await
            .count_documents(doc! {})
            .await
            .unwrap(),
        25
    );
}

#[tokio::test]
async fn change_streams_resume_from_the_stored_token_after_a_restart() {
    let name = unique("events");
    let coll = collection(&name).await;
    coll.insert_many(
        (1..=5)
            .map(|i| doc! { "id": i as i64, "v": format!("v{i}") })
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let lite = Db::sqlite();
    let dst = unique("events");
    let options = [
        ("change_stream", "true"),
        ("schema", "id bigint, v text"),
        ("wait_ms", "300"),
    ];
    let mut h = Harness::new(
        sync("stream", &name, &dst, SyncMode::ById, WriteMode::Upsert),
        &lite,
        &lite,
    );
    h.runner.job.source = spec("idra-secret", &options);
    h.sync_until(&lite, &dst, 5).await;
    let offset = h
        .runner
        .offsets
        .load(&h.runner.job.sync.id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(offset.cursor, Cursor::Token { .. }), "{offset:?}");

    // The agent restarts (new runner, new connection): it resumes after the stored token,
    // so only the new events arrive; an update arrives as the whole new document.
    coll.insert_many(
        (6..=8)
            .map(|i| doc! { "id": i as i64, "v": format!("v{i}") })
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    coll.update_one(doc! { "id": 2_i64 }, doc! { "$set": { "v": "changed" } })
        .await
        .unwrap();
    let mut again = Harness::new(h.runner.job.sync.clone(), &lite, &lite);
    again.runner.job.source = spec("idra-secret", &options);
    std::mem::swap(&mut again.runner.offsets, &mut h.runner.offsets);
    let report = again.runner.run_once().await.unwrap();
    assert_eq!(
        report.rows, 4,
        "three inserts and one update after the token"
    );
    assert_eq!(lite.count(&dst).await, 8);
    assert_eq!(
        lite.scalar(&format!("SELECT count(*) FROM {dst} WHERE v = 'changed'"))
            .await,
        1
    );
}
