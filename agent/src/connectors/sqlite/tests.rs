//! Pure-logic tests of the SQLite connector. Tests against real files:
//! agent/tests/sql_connectors.rs.

use super::destination::sqlite_type;
use super::source::map_type;
use crate::connectors::types::ColumnType;

#[test]
fn declared_types_round_trip() {
    for ty in ColumnType::ALL {
        assert_eq!(map_type(&sqlite_type(ty)), ty, "{}", sqlite_type(ty));
    }
    assert_eq!(map_type("varchar(20)"), ColumnType::Text);
    assert_eq!(map_type(""), ColumnType::Text);
}

// --- Options are pragmas: the name is allow-listed and the value parsed, so no option can
// smuggle SQL into the `PRAGMA k = v;` sqlx runs on every new connection.

use std::collections::BTreeMap;
use std::path::Path;

use idra_core::model::ConnectorKind;

use super::SqliteConfig;
use crate::connectors::{ConnectionSpec, ErrorKind};

fn spec(file: &Path, options: &[(&str, &str)]) -> ConnectionSpec {
    ConnectionSpec {
        kind: ConnectorKind::Sqlite,
        connection_string: format!("sqlite://{}", file.display()),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        secrets: BTreeMap::new(),
    }
}

/// The config of a file in a temporary directory (the SQLite directory is the system's).
fn config(spec: &ConnectionSpec) -> Result<SqliteConfig, crate::connectors::ConnectorError> {
    SqliteConfig::from_spec_in(spec, true, Some(&std::env::temp_dir()))
}

/// What "Test connection" does: open the config, then a connection (which runs the pragmas).
async fn open(spec: &ConnectionSpec) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, String> {
    let config = config(spec).map_err(|e| {
        assert_eq!(e.kind, ErrorKind::Fatal, "{e}");
        e.message
    })?;
    config.pool().acquire().await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_pragma_value_carrying_sql_is_refused_and_attaches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let planted = dir.path().join("planted.db");
    let attack = format!(
        "NORMAL; ATTACH DATABASE '{}' AS a; CREATE TABLE a.t(x)",
        planted.display()
    );
    let result = open(&spec(
        &dir.path().join("main.db"),
        &[("synchronous", &attack)],
    ))
    .await;
    assert!(
        !planted.exists(),
        "the option ran SQL: {} was created",
        planted.display()
    );
    let message = result.expect_err("the option is refused");
    assert!(message.contains("options.synchronous"), "{message}");
    assert!(
        message.contains("NORMAL") && message.contains("FULL"),
        "says what is allowed: {message}"
    );
    assert!(
        !message.contains("ATTACH") && !message.contains("planted"),
        "echoes the SQL: {message}"
    );
}

#[test]
fn every_pragma_refuses_a_value_outside_its_set_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.db");
    for name in [
        "journal_mode",
        "synchronous",
        "locking_mode",
        "auto_vacuum",
        "temp_store",
        "foreign_keys",
        "secure_delete",
        "busy_timeout",
        "cache_size",
        "mmap_size",
        "page_size",
        "wal_autocheckpoint",
        "journal_size_limit",
    ] {
        for bad in ["1; DROP TABLE x", "WAL -- x", "0x10", "", "NORMAL;"] {
            let message = config(&spec(&file, &[(name, bad)]))
                .err()
                .unwrap_or_else(|| panic!("{name} = {bad:?} was accepted"))
                .message;
            assert!(message.contains(&format!("options.{name}")), "{message}");
            assert!(
                message.contains("must be"),
                "an allowed name, a refused value: {message}"
            );
            assert!(
                !message.contains("DROP") && !message.contains("--"),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn allowed_pragma_values_reach_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.db");
    let mut conn = open(&spec(
        &file,
        &[
            ("journal_mode", "wal"),
            ("synchronous", "Normal"),
            ("cache_size", "-4000"),
            ("busy_timeout", "2500"),
            ("foreign_keys", "off"),
            ("temp_store", "2"),
        ],
    ))
    .await
    .unwrap();
    let ask = |pragma: &'static str| format!("PRAGMA {pragma}");
    let text: String = sqlx::query_scalar(&ask("journal_mode"))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(text, "wal");
    for (pragma, want) in [
        ("synchronous", 1),
        ("cache_size", -4000),
        ("busy_timeout", 2500),
        ("foreign_keys", 0),
        ("temp_store", 2),
    ] {
        let got: i64 = sqlx::query_scalar(&ask(pragma))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(got, want, "PRAGMA {pragma}");
    }
    drop(conn);
    // The connector's own default (WAL) gives way to the option.
    let other = dir.path().join("other.db");
    let mut conn = open(&spec(&other, &[("journal_mode", "TRUNCATE")]))
        .await
        .unwrap();
    let text: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(text, "truncate");
}

#[test]
fn an_unknown_option_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.db");
    for name in ["writable_schema", "temp_store_directory", "bad name"] {
        let e = config(&spec(&file, &[(name, "1")]))
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        assert_eq!(e.kind, ErrorKind::Fatal);
        assert!(
            e.message.contains(&format!("options.{name}")),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("pragma") && e.message.contains("journal_mode"),
            "lists the allowed: {}",
            e.message
        );
    }
}

// --- Files stay under the SQLite directory (`--sqlite-dir`): no connection string may name
// a file elsewhere on the host, by an absolute path, `..`, a symlink, a `file:` URI or a
// percent-encoded path; in-memory databases and VFS switches are refused too.

use std::path::PathBuf;

/// A SQLite directory and a sibling directory outside it holding a database file.
struct Dirs {
    _tmp: tempfile::TempDir,
    inside: PathBuf,
    outside: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let inside = tmp.path().join("sqlite");
    let outside = tmp.path().join("elsewhere");
    std::fs::create_dir_all(inside.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    // An empty file is a valid, empty SQLite database.
    std::fs::write(outside.join("private.db"), b"").unwrap();
    Dirs {
        _tmp: tmp,
        inside,
        outside,
    }
}

fn cs(connection_string: &str) -> ConnectionSpec {
    ConnectionSpec {
        kind: ConnectorKind::Sqlite,
        connection_string: connection_string.into(),
        options: BTreeMap::new(),
        secrets: BTreeMap::new(),
    }
}

/// The config as a process whose SQLite directory is `dir` builds it.
fn confined(
    spec: &ConnectionSpec,
    create: bool,
    dir: Option<&Path>,
) -> Result<SqliteConfig, crate::connectors::ConnectorError> {
    SqliteConfig::from_spec_in(spec, create, dir)
}

/// The refusal of `connection_string` in a process confined to `dir`, as a source and as a
/// destination.
fn refused(connection_string: &str, dir: &Path) -> String {
    let mut message = String::new();
    for create in [false, true] {
        let e = confined(&cs(connection_string), create, Some(dir))
            .err()
            .unwrap_or_else(|| panic!("{connection_string} was accepted (create: {create})"));
        assert_eq!(e.kind, ErrorKind::Fatal, "{e}");
        assert!(
            e.message.starts_with("connection_string"),
            "names the field: {e}"
        );
        message = e.message;
    }
    message
}

#[tokio::test]
async fn a_file_outside_the_sqlite_dir_is_refused_and_nothing_is_created_there() {
    let d = dirs();
    let message = refused(
        &format!("sqlite://{}", d.outside.join("private.db").display()),
        &d.inside,
    );
    let inside = d.inside.canonicalize().unwrap();
    assert!(
        message.contains(&format!("put the file under {}", inside.display()))
            && message.contains("--sqlite-dir"),
        "says how to fix it: {message}"
    );
    // A destination would create the file: the attack writes nothing.
    let planted = d.outside.join("planted.db");
    let result = match confined(
        &cs(&format!("sqlite://{}", planted.display())),
        true,
        Some(&d.inside),
    ) {
        Ok(config) => config
            .pool()
            .acquire()
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.message),
    };
    assert!(!planted.exists(), "created {}", planted.display());
    assert!(result.is_err());
}

#[test]
fn dot_dot_cannot_climb_out_of_the_sqlite_dir() {
    let d = dirs();
    for attack in [
        format!("sqlite://{}/../elsewhere/private.db", d.inside.display()),
        format!(
            "sqlite://{}/sub/../../elsewhere/private.db",
            d.inside.display()
        ),
        "sqlite://../elsewhere/private.db".to_string(),
        "sqlite:../elsewhere/private.db".to_string(),
        "../elsewhere/private.db".to_string(),
        // Inside after all, but `..` is refused whatever it resolves to.
        format!("sqlite://{}/sub/../x.db", d.inside.display()),
    ] {
        let message = refused(&attack, &d.inside);
        assert!(message.contains(".."), "{attack}: {message}");
    }
}

#[test]
fn a_symlink_out_of_the_sqlite_dir_is_refused() {
    let d = dirs();
    let link = d.inside.join("link.db");
    std::os::unix::fs::symlink(d.outside.join("private.db"), &link).unwrap();
    let door = d.inside.join("door");
    std::os::unix::fs::symlink(&d.outside, &door).unwrap();
    let dangling = d.inside.join("dangling.db");
    std::os::unix::fs::symlink(d.outside.join("new.db"), &dangling).unwrap();
    for attack in [
        format!("sqlite://{}", link.display()),
        "sqlite://link.db".to_string(),
        format!("sqlite://{}/private.db", door.display()),
        "sqlite://door/private.db".to_string(),
        format!("sqlite://{}", dangling.display()),
    ] {
        let message = refused(&attack, &d.inside);
        assert!(message.contains("outside"), "{attack}: {message}");
    }
    assert!(!d.outside.join("new.db").exists());
}

#[test]
fn memory_databases_uris_and_vfs_switches_are_refused() {
    let d = dirs();
    let outside = d.outside.join("private.db");
    let encoded = outside.display().to_string().replace('/', "%2F");
    for attack in [
        "sqlite::memory:".to_string(),
        "sqlite://:memory:".to_string(),
        ":memory:".to_string(),
        "sqlite://?mode=memory".to_string(),
        "sqlite://shop.db?mode=memory".to_string(),
        "sqlite://shop.db?vfs=unix-none".to_string(),
        "sqlite://shop.db?vfs=memdb".to_string(),
        // SQLite reads a name starting with `file:` as a URI (sqlx opens with
        // SQLITE_OPEN_URI), and URIs carry their own path and parameters.
        format!("sqlite://file:{}", outside.display()),
        format!("sqlite://file:{encoded}%3Fvfs=unix-none"),
        format!("file:{}", outside.display()),
        // A percent-encoded absolute path is still that path.
        format!("sqlite://{encoded}"),
        "sqlite://".to_string(),
        "".to_string(),
    ] {
        refused(&attack, &d.inside);
    }
}

#[test]
fn files_under_the_sqlite_dir_are_accepted_by_absolute_or_relative_path() {
    let d = dirs();
    let inside = d.inside.canonicalize().unwrap();
    std::os::unix::fs::symlink(inside.join("sub"), d.inside.join("alias")).unwrap();
    for (connection_string, file) in [
        (
            format!("sqlite://{}", d.inside.join("shop.db").display()),
            inside.join("shop.db"),
        ),
        ("sqlite://shop.db".to_string(), inside.join("shop.db")),
        ("sqlite:shop.db".to_string(), inside.join("shop.db")),
        ("shop.db".to_string(), inside.join("shop.db")),
        ("sqlite://sub/a.db".to_string(), inside.join("sub/a.db")),
        ("sqlite://alias/a.db".to_string(), inside.join("sub/a.db")),
        (
            "sqlite://shop.db?mode=ro".to_string(),
            inside.join("shop.db"),
        ),
        (
            "sqlite://shop.db?immutable=1".to_string(),
            inside.join("shop.db"),
        ),
        (
            "sqlite://shop.db?cache=shared".to_string(),
            inside.join("shop.db"),
        ),
        (
            "sqlite://my%20shop.db".to_string(),
            inside.join("my shop.db"),
        ),
    ] {
        let config = confined(&cs(&connection_string), true, Some(&d.inside))
            .unwrap_or_else(|e| panic!("{connection_string}: {e}"));
        assert_eq!(config.options.get_filename(), file, "{connection_string}");
    }
}

#[test]
fn the_data_dirs_own_files_are_refused_even_inside_the_sqlite_dir() {
    let d = dirs();
    for name in [
        "secret.key",
        "wal.jsonl",
        "snapshot.json",
        "LOCK",
        "state.json",
    ] {
        std::fs::write(d.inside.join(name), b"").unwrap();
        let message = refused(&format!("sqlite://{name}"), &d.inside);
        assert!(message.contains("Idra's own"), "{name}: {message}");
    }
}

/// Every file a data dir (embedded store, secret key) and a single-mode state dir hold is
/// on the list of Idra's own files, so the default SQLite directory (the data dir) can
/// never hand one to a data source.
#[tokio::test]
async fn idra_files_name_every_file_a_data_dir_or_state_dir_holds() {
    use idra_core::model::Offset;

    use crate::engine::{FileOffsets, OffsetStore};

    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let store = idra_core::store::open(None, dir.path()).await.unwrap();
        for i in 0..3 {
            store
                .put(&format!("/idra/k{i}"), b"v".to_vec(), None)
                .await
                .unwrap();
        }
    }
    idra_core::secret::Cipher::load(Some(dir.path())).unwrap();
    let offsets = FileOffsets::open(&dir.path().join("state")).unwrap();
    offsets
        .commit(
            "s",
            &Offset {
                cursor: idra_core::model::Cursor::Start,
                fence: 1,
                updated_at: chrono::Utc::now(),
                edited: false,
            },
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut todo = vec![dir.path().to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    for name in ["secret.key", "LOCK", "wal.jsonl", "state.json"] {
        assert!(seen.iter().any(|s| s == name), "{name} not made: {seen:?}");
    }
    for name in &seen {
        assert!(
            super::IDRA_FILES.contains(&name.as_str()),
            "{name} is missing from IDRA_FILES"
        );
    }
}

#[test]
fn without_a_sqlite_dir_every_file_is_refused() {
    let d = dirs();
    let e = confined(
        &cs(&format!("sqlite://{}", d.inside.join("shop.db").display())),
        true,
        None,
    )
    .err()
    .expect("refused");
    assert!(e.message.contains("--sqlite-dir"), "{e}");
}
