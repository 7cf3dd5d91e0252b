//! The SQL Server connector against a real server, when `IDRA_TEST_MSSQL_URL` holds an
//! ADO.NET connection string (e.g. `server=tcp:127.0.0.1,1433;user=sa;password=…;
//! database=test;TrustServerCertificate=true`, on a server accepting unencrypted
//! connections). No SQL Server exists on the project's machines: without the variable each
//! test prints a `skipped:` line. The T-SQL and type mapping are unit tested regardless
//! (agent/src/connectors/sqlserver/tests.rs).

mod support;

use std::collections::BTreeMap;

use idra_agent::connectors::ConnectionSpec;
use idra_core::model::{ConnectorKind, SyncMode, WriteMode};
use idra_core::secret::Secret;
use support::compliance::{self, Peer};
use support::{create_source, insert_rows, minute, sync, unique, Db, Harness};

/// Says so on the terminal even though the test harness captures test output (only the
/// print macros are captured, not a direct write to stderr).
fn skip(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test} (set IDRA_TEST_MSSQL_URL to run it against a SQL Server)"
    );
}

/// The connection string without its password, and the password.
fn server() -> Option<(String, String)> {
    let url = std::env::var("IDRA_TEST_MSSQL_URL").ok()?;
    let mut password = String::new();
    let rest: Vec<&str> = url
        .split(';')
        .filter(|part| match part.split_once('=') {
            Some((k, v))
                if matches!(k.trim().to_ascii_lowercase().as_str(), "password" | "pwd") =>
            {
                password = v.trim().to_string();
                false
            }
            _ => true,
        })
        .collect();
    Some((rest.join(";"), password))
}

fn spec(cs: &str, password: &str) -> ConnectionSpec {
    ConnectionSpec {
        kind: ConnectorKind::SqlServer,
        connection_string: cs.into(),
        options: BTreeMap::new(),
        secrets: BTreeMap::from([("password".to_string(), Secret::new(password))]),
    }
}

#[tokio::test]
async fn sql_server_passes_the_compliance_harness() {
    let Some((cs, password)) = server() else {
        skip("sql_server_passes_the_compliance_harness");
        return;
    };
    let peer = Peer {
        label: "sql server",
        source: spec(&cs, &password),
        destination: spec(&cs, &password),
        bad_credentials: Some(spec(&cs, "not-the-password")),
        fresh: Box::new(|| unique("t")),
        declare_schema: false,
        exact_types: false,
        millisecond_timestamps: false,
    };
    compliance::check_all(&peer).await;
}

#[tokio::test]
async fn sqlite_to_sql_server_in_every_incremental_mode() {
    let Some((cs, password)) = server() else {
        skip("sqlite_to_sql_server_in_every_incremental_mode");
        return;
    };
    let lite = Db::sqlite();
    let src = unique("src");
    create_source(&lite, &src).await;
    insert_rows(&lite, &src, 1, 25, minute).await;
    for (mode, write) in [
        (SyncMode::ById, WriteMode::Insert),
        (SyncMode::ByTimestamp, WriteMode::Upsert),
    ] {
        let dst = unique("dst");
        let mut to = Harness::new(sync("to_mssql", &src, &dst, mode, write), &lite, &lite);
        to.runner.job.destination = spec(&cs, &password);
        to.runner.run_once().await.unwrap();
        // And back, through the SQL Server source.
        let back = unique("back");
        let mut from = Harness::new(sync("from_mssql", &dst, &back, mode, write), &lite, &lite);
        from.runner.job.source = spec(&cs, &password);
        from.sync_until(&lite, &back, 25).await;
        assert_eq!(lite.rows(&back).await, lite.rows(&src).await, "{mode:?}");
    }
}
