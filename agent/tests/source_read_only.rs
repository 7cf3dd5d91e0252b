//! Source reads cannot write: a custom query that calls a function with side effects fails
//! instead of changing the source (security review, "custom queries can write").

mod support;

use idra_core::model::{SyncMode, WriteMode};
use support::*;

#[tokio::test]
async fn a_custom_query_calling_a_writing_function_is_refused_and_writes_nothing() {
    let (src, dst) = (Db::pg(), Db::sqlite());
    let s = unique("ro");
    create_source(&src, &s).await;
    insert_rows(&src, &s, 1, 3, minute).await;
    let log = unique("ro_log");
    let f = unique("ro_fn");
    src.exec(&format!("CREATE TABLE {log} (x int)")).await;
    src.exec(&format!(
        "CREATE FUNCTION {f}() RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO {log} VALUES (1); SELECT 1 $$"
    ))
    .await;
    let d = unique("ro_d");
    let mut cfg = sync("readonly", "", &d, SyncMode::ById, WriteMode::Insert);
    cfg.source.query = Some(format!("SELECT id, name FROM {s} WHERE {f}() = 1"));
    let mut h = Harness::new(cfg, &src, &dst);
    let e = h.runner.run_once().await.unwrap_err();
    assert!(e.message.contains("read-only transaction"), "{e}");
    assert_eq!(src.count(&log).await, 0, "the function wrote nothing");
}
