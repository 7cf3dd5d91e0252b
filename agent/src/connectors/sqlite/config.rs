use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};

use crate::connectors::{ConnectionSpec, ConnectorError};

/// SQLite files have no credentials.
pub const SECRET_FIELDS: &[&str] = &[];

pub struct SqliteConfig {
    pub options: SqliteConnectOptions,
    pub display: String,
}

impl SqliteConfig {
    /// `sqlite:///abs/path.db`, `sqlite://rel/path.db` or a bare file path. A destination
    /// file is created when missing; a source file must exist.
    pub fn from_spec(spec: &ConnectionSpec, create: bool) -> Result<Self, ConnectorError> {
        // Options first: a refused option must stop us before anything touches the file.
        let pragmas = SqliteOptions::parse(&spec.options)?;
        let cs = spec.connection_string.trim();
        let url = if cs.starts_with("sqlite:") {
            cs.to_string()
        } else {
            format!("sqlite://{cs}")
        };
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| ConnectorError::fatal(format!("connection_string: not a SQLite path ({e}); expected sqlite:///path/to/file.db")))?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let options = pragmas.apply(options);
        let display = format!("SQLite file {}", options.get_filename().display());
        Ok(Self { options, display })
    }

    pub fn pool(&self) -> SqlitePool {
        // One connection: SQLite has one writer at a time anyway.
        SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(self.options.clone())
    }
}

/// The pragmas a SQLite data source may set through its options, and what each accepts.
/// Everything else is refused: some pragmas weaken or redirect the database
/// (`writable_schema`, `temp_store_directory`, `key`), and none is needed to sync.
const PRAGMAS: &[(&str, &str)] = &[
    (
        "journal_mode",
        "one of DELETE, TRUNCATE, PERSIST, MEMORY, WAL, OFF",
    ),
    ("synchronous", "one of OFF, NORMAL, FULL, EXTRA (or 0 to 3)"),
    ("locking_mode", "NORMAL or EXCLUSIVE"),
    ("auto_vacuum", "one of NONE, FULL, INCREMENTAL (or 0 to 2)"),
    ("temp_store", "one of DEFAULT, FILE, MEMORY (or 0 to 2)"),
    ("foreign_keys", "ON or OFF (also TRUE/FALSE, YES/NO, 1/0)"),
    (
        "secure_delete",
        "ON, OFF or FAST (also TRUE/FALSE, YES/NO, 1/0)",
    ),
    (
        "busy_timeout",
        "a whole number of milliseconds, 0 to 2147483647",
    ),
    (
        "cache_size",
        "a whole number: pages, or KiB when negative (e.g. -4000)",
    ),
    ("mmap_size", "a whole number of bytes, 0 or more"),
    ("page_size", "a power of two from 512 to 65536"),
    (
        "wal_autocheckpoint",
        "a whole number of pages (0 or less turns it off)",
    ),
    (
        "journal_size_limit",
        "a whole number of bytes, or -1 for no limit",
    ),
];

const BOOL: &[(&str, bool)] = &[
    ("ON", true),
    ("TRUE", true),
    ("YES", true),
    ("1", true),
    ("OFF", false),
    ("FALSE", false),
    ("NO", false),
    ("0", false),
];

/// A data source's options, parsed. sqlx runs `PRAGMA name = value;` verbatim on every new
/// connection, so a value pasted through could append any statement (`NORMAL; ATTACH
/// DATABASE '/any/path' AS a; …` writes files on the host). Here every value is parsed into
/// a typed field, and the SQL is rendered from that field, never from the user's text.
/// Unknown names are refused (the `deny_unknown_fields` rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqliteOptions {
    pub journal_mode: Option<SqliteJournalMode>,
    pub synchronous: Option<SqliteSynchronous>,
    pub locking_mode: Option<SqliteLockingMode>,
    pub auto_vacuum: Option<SqliteAutoVacuum>,
    /// A keyword from this file's table (`DEFAULT`, `FILE`, `MEMORY`), never user text.
    pub temp_store: Option<&'static str>,
    pub foreign_keys: Option<bool>,
    /// A keyword from this file's table (`ON`, `OFF`, `FAST`), never user text.
    pub secure_delete: Option<&'static str>,
    pub busy_timeout: Option<Duration>,
    pub cache_size: Option<i64>,
    pub mmap_size: Option<i64>,
    pub page_size: Option<u32>,
    pub wal_autocheckpoint: Option<i64>,
    pub journal_size_limit: Option<i64>,
}

impl SqliteOptions {
    pub fn parse(options: &BTreeMap<String, String>) -> Result<Self, ConnectorError> {
        use SqliteJournalMode as J;
        use SqliteSynchronous as S;
        let mut o = Self::default();
        for (name, value) in options {
            let n = name.as_str();
            let v = value.trim();
            match n {
                "journal_mode" => {
                    o.journal_mode = Some(keyword(
                        n,
                        v,
                        &[
                            ("DELETE", J::Delete),
                            ("TRUNCATE", J::Truncate),
                            ("PERSIST", J::Persist),
                            ("MEMORY", J::Memory),
                            ("WAL", J::Wal),
                            ("OFF", J::Off),
                        ],
                    )?)
                }
                "synchronous" => {
                    o.synchronous = Some(keyword(
                        n,
                        v,
                        &[
                            ("OFF", S::Off),
                            ("0", S::Off),
                            ("NORMAL", S::Normal),
                            ("1", S::Normal),
                            ("FULL", S::Full),
                            ("2", S::Full),
                            ("EXTRA", S::Extra),
                            ("3", S::Extra),
                        ],
                    )?)
                }
                "locking_mode" => {
                    o.locking_mode = Some(keyword(
                        n,
                        v,
                        &[
                            ("NORMAL", SqliteLockingMode::Normal),
                            ("EXCLUSIVE", SqliteLockingMode::Exclusive),
                        ],
                    )?)
                }
                "auto_vacuum" => {
                    o.auto_vacuum = Some(keyword(
                        n,
                        v,
                        &[
                            ("NONE", SqliteAutoVacuum::None),
                            ("0", SqliteAutoVacuum::None),
                            ("FULL", SqliteAutoVacuum::Full),
                            ("1", SqliteAutoVacuum::Full),
                            ("INCREMENTAL", SqliteAutoVacuum::Incremental),
                            ("2", SqliteAutoVacuum::Incremental),
                        ],
                    )?)
                }
                "temp_store" => {
                    o.temp_store = Some(keyword(
                        n,
                        v,
                        &[
                            ("DEFAULT", "DEFAULT"),
                            ("0", "DEFAULT"),
                            ("FILE", "FILE"),
                            ("1", "FILE"),
                            ("MEMORY", "MEMORY"),
                            ("2", "MEMORY"),
                        ],
                    )?)
                }
                "foreign_keys" => o.foreign_keys = Some(keyword(n, v, BOOL)?),
                "secure_delete" => {
                    o.secure_delete = Some(if v.eq_ignore_ascii_case("FAST") {
                        "FAST"
                    } else if keyword(n, v, BOOL)? {
                        "ON"
                    } else {
                        "OFF"
                    })
                }
                "busy_timeout" => {
                    let ms = integer(n, v, 0..=i64::from(i32::MAX))?;
                    // In range, so it fits the i32 sqlx hands SQLite (it panics beyond).
                    o.busy_timeout = Some(Duration::from_millis(ms.unsigned_abs()))
                }
                "cache_size" => o.cache_size = Some(integer(n, v, i64::MIN..=i64::MAX)?),
                "mmap_size" => o.mmap_size = Some(integer(n, v, 0..=i64::MAX)?),
                "page_size" => {
                    let size = integer(n, v, 512..=65536)?;
                    if size.count_ones() != 1 {
                        return Err(invalid(n));
                    }
                    o.page_size = Some(size as u32)
                }
                "wal_autocheckpoint" => {
                    o.wal_autocheckpoint = Some(integer(n, v, i64::MIN..=i64::MAX)?)
                }
                "journal_size_limit" => o.journal_size_limit = Some(integer(n, v, -1..=i64::MAX)?),
                _ => {
                    let names: Vec<&str> = PRAGMAS.iter().map(|(name, _)| *name).collect();
                    return Err(ConnectorError::fatal(format!(
                        "options.{n}: not a SQLite pragma Idra sets; allowed: {}",
                        names.join(", ")
                    )));
                }
            }
        }
        Ok(o)
    }

    /// The parsed options on top of the connector's defaults. Every value reaches SQL
    /// through sqlx's typed setters or as a number or keyword rendered here.
    pub fn apply(&self, mut o: SqliteConnectOptions) -> SqliteConnectOptions {
        if let Some(m) = self.journal_mode {
            o = o.journal_mode(m);
        }
        if let Some(s) = self.synchronous {
            o = o.synchronous(s);
        }
        if let Some(m) = self.locking_mode {
            o = o.locking_mode(m);
        }
        if let Some(a) = self.auto_vacuum {
            o = o.auto_vacuum(a);
        }
        if let Some(t) = self.temp_store {
            o = o.pragma("temp_store", t);
        }
        if let Some(on) = self.foreign_keys {
            o = o.foreign_keys(on);
        }
        if let Some(s) = self.secure_delete {
            o = o.pragma("secure_delete", s);
        }
        if let Some(t) = self.busy_timeout {
            o = o.busy_timeout(t);
        }
        if let Some(p) = self.page_size {
            o = o.page_size(p);
        }
        for (name, n) in [
            ("cache_size", self.cache_size),
            ("mmap_size", self.mmap_size),
            ("wal_autocheckpoint", self.wal_autocheckpoint),
            ("journal_size_limit", self.journal_size_limit),
        ] {
            if let Some(n) = n {
                o = o.pragma(name, n.to_string());
            }
        }
        o
    }
}

/// The refusal for a value outside the option's set. It says what is allowed and does not
/// repeat the value: that may be SQL, and messages end up in logs and the UI.
fn invalid(name: &str) -> ConnectorError {
    let allowed = PRAGMAS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("a documented value", |(_, a)| a);
    ConnectorError::fatal(format!("options.{name}: must be {allowed}"))
}

fn keyword<T: Copy>(name: &str, value: &str, allowed: &[(&str, T)]) -> Result<T, ConnectorError> {
    allowed
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(value))
        .map(|(_, t)| *t)
        .ok_or_else(|| invalid(name))
}

/// Plain decimal digits with an optional minus sign (no `+`, hex or spaces inside).
fn integer(name: &str, value: &str, range: RangeInclusive<i64>) -> Result<i64, ConnectorError> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(name));
    }
    value
        .parse()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| invalid(name))
}
