use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};

use crate::connectors::{ConnectionSpec, ConnectorError};

/// SQLite files have no credentials.
pub const SECRET_FIELDS: &[&str] = &[];

/// The directory every SQLite data source's file must be under, set once at start from
/// `--sqlite-dir` (a process-wide setting: connectors are opened by the engine and by the
/// server's "Test connection", and neither carries process settings to them). Unset, every
/// SQLite file is refused.
static SQLITE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Confines this process's SQLite data sources to `dir` (made absolute against the current
/// directory; it need not exist yet). Once per process: setting another directory later is
/// an error, setting the same one again is not.
pub fn set_dir(dir: &Path) -> Result<(), String> {
    let dir =
        std::path::absolute(dir).map_err(|e| format!("--sqlite-dir {}: {e}", dir.display()))?;
    let set = SQLITE_DIR.get_or_init(|| dir.clone());
    if *set == dir {
        Ok(())
    } else {
        Err(format!(
            "--sqlite-dir {}: this process already keeps SQLite files under {}",
            dir.display(),
            set.display()
        ))
    }
}

/// The directory set by [`set_dir`], if any.
pub fn dir() -> Option<&'static Path> {
    SQLITE_DIR.get().map(PathBuf::as_path)
}

/// Files Idra itself keeps in its data dir (the embedded store's `LOCK`, `snapshot.json`,
/// `wal.jsonl`; the secret key) and state dir (`state.json`): never a data source's file,
/// even when the SQLite directory holds them (it is the data dir by default). A test keeps
/// this list in step with what a data dir really holds.
pub const IDRA_FILES: &[&str] = &[
    "LOCK",
    "snapshot.json",
    "snapshot.json.tmp",
    "wal.jsonl",
    "secret.key",
    "state.json",
    "state.json.tmp",
];

pub struct SqliteConfig {
    pub options: SqliteConnectOptions,
    pub display: String,
}

impl SqliteConfig {
    /// `sqlite:///abs/path.db`, `sqlite://rel/path.db` or a bare file path, under this
    /// process's SQLite directory (see [`set_dir`]); a relative path is taken from that
    /// directory. A destination file is created when missing; a source file must exist.
    pub fn from_spec(spec: &ConnectionSpec, create: bool) -> Result<Self, ConnectorError> {
        Self::from_spec_in(spec, create, dir())
    }

    /// [`Self::from_spec`] with the SQLite directory given (`None`: refuse every file).
    pub fn from_spec_in(
        spec: &ConnectionSpec,
        create: bool,
        sqlite_dir: Option<&Path>,
    ) -> Result<Self, ConnectorError> {
        // Options first: a refused option must stop us before anything touches the file.
        let pragmas = SqliteOptions::parse(&spec.options)?;
        let location = Location::parse(&spec.connection_string)?;
        let root = sqlite_dir.ok_or_else(|| {
            ConnectorError::fatal(
                "connection_string: this Idra process accepts no SQLite files; start it with --sqlite-dir <the directory that holds them>",
            )
        })?;
        let file = confine(&location.path, root)?;
        let options = SqliteConnectOptions::new()
            .filename(&file)
            .read_only(location.read_only)
            .immutable(location.immutable)
            .shared_cache(location.shared_cache)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let options = pragmas.apply(options);
        let display = format!("SQLite file {}", file.display());
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

/// A connection string, read the way sqlx reads one (`sqlite://` or `sqlite:`, a
/// percent-encoded path, `?` parameters) but keeping only what cannot leave the file: a
/// path, and the `mode` (`ro`, `rw`, `rwc`), `immutable` and `cache` parameters. sqlx would
/// also take `:memory:`, `mode=memory` and `vfs=`, and hands SQLite the name with
/// `SQLITE_OPEN_URI`, so a name starting with `file:` would be a URI with its own path and
/// parameters; those are refused.
struct Location {
    path: PathBuf,
    read_only: bool,
    immutable: bool,
    shared_cache: bool,
}

impl Location {
    fn parse(connection_string: &str) -> Result<Self, ConnectorError> {
        let cs = connection_string.trim();
        let rest = cs
            .strip_prefix("sqlite://")
            .or_else(|| cs.strip_prefix("sqlite:"))
            .unwrap_or(cs);
        let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
        let bad = |what: &str| {
            ConnectorError::fatal(format!(
                "connection_string: {what}; give the path of a database file, e.g. sqlite://shop.db (under the SQLite directory) or sqlite:///path/to/file.db"
            ))
        };
        let path = percent_decode(database).ok_or_else(|| bad("not a path (bad %-escape)"))?;
        if path.is_empty() {
            return Err(bad("no file named"));
        }
        if path == ":memory:" {
            return Err(bad("in-memory databases are not data sources"));
        }
        if path
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("file:"))
        {
            return Err(bad("`file:` URIs are not accepted"));
        }
        if path.contains('\0') {
            return Err(bad("the path holds a NUL character"));
        }
        let mut location = Self {
            path: PathBuf::from(path),
            read_only: false,
            immutable: false,
            shared_cache: false,
        };
        for (key, value) in url::form_urlencoded::parse(params.as_bytes()) {
            match (&*key, &*value) {
                ("mode", "ro") => location.read_only = true,
                // Whether a missing file is created is the connector's choice (destinations).
                ("mode", "rw" | "rwc") => {}
                ("immutable", "true" | "1") => location.immutable = true,
                ("immutable", "false" | "0") => location.immutable = false,
                ("cache", "shared") => location.shared_cache = true,
                ("cache", "private") => location.shared_cache = false,
                ("mode", _) => return Err(bad("`mode` may be ro, rw or rwc")),
                _ => {
                    return Err(bad(&format!(
                        "the parameter `{key}` is not accepted (allowed: mode=ro|rw|rwc, immutable=1, cache=shared|private)"
                    )))
                }
            }
        }
        Ok(location)
    }
}

/// `%XX` escapes decoded, as sqlx does for the database part; `None` if not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The file `path` names, if it is under `root`: the canonical path SQLite is given.
/// Relative paths are taken from `root`; `..` is refused outright; the parent directory is
/// resolved (symlinks included) and must be inside `root`, and so must the file itself
/// when it exists (a symlink to elsewhere, or to nothing, is refused: SQLite would follow
/// it, and create its target). Idra's own files are refused. What stays open: a hard link
/// to a file elsewhere looks like any file, and someone who can change the directory while
/// this runs could swap a symlink in; both need write access to the directory on the host.
pub fn confine(path: &Path, root: &Path) -> Result<PathBuf, ConnectorError> {
    let fix = |root: &Path| {
        format!(
            "put the file under {} or start Idra with --sqlite-dir <a directory that holds it>",
            root.display()
        )
    };
    let canonical_root = root.canonicalize().map_err(|e| {
        ConnectorError::fatal(format!(
            "connection_string: the SQLite directory {} cannot be used ({e}); create it, or start Idra with --sqlite-dir <the directory that holds the files>",
            root.display()
        ))
    })?;
    let outside = |shown: &Path| {
        ConnectorError::fatal(format!(
            "connection_string: {} is outside the SQLite directory: {}",
            shown.display(),
            fix(&canonical_root)
        ))
    };
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(ConnectorError::fatal(format!(
            "connection_string: {} climbs with `..`; name the file without it: {}",
            path.display(),
            fix(&canonical_root)
        )));
    }
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        canonical_root.join(path)
    };
    // Nothing outside is looked at, so refusals say nothing about other parts of the host.
    if !absolute.starts_with(root) && !absolute.starts_with(&canonical_root) {
        return Err(outside(&absolute));
    }
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return Err(ConnectorError::fatal(format!(
            "connection_string: {} names no file; give the path of a database file under {}",
            absolute.display(),
            canonical_root.display()
        )));
    };
    let parent = parent.canonicalize().map_err(|e| {
        ConnectorError::fatal(format!(
            "connection_string: the folder of {} cannot be used ({e}); create it under {}",
            absolute.display(),
            canonical_root.display()
        ))
    })?;
    if !parent.starts_with(&canonical_root) {
        return Err(outside(&absolute));
    }
    let mut file = parent.join(name);
    if let Ok(meta) = std::fs::symlink_metadata(&file) {
        if meta.file_type().is_symlink() {
            file = file.canonicalize().map_err(|_| outside(&absolute))?;
            if !file.starts_with(&canonical_root) {
                return Err(outside(&absolute));
            }
        }
        if !std::fs::metadata(&file).is_ok_and(|m| m.is_file()) {
            return Err(ConnectorError::fatal(format!(
                "connection_string: {} is not a file",
                absolute.display()
            )));
        }
    }
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if IDRA_FILES.contains(&name) {
        return Err(ConnectorError::fatal(format!(
            "connection_string: {} is one of Idra's own files ({}); give another file name",
            absolute.display(),
            IDRA_FILES.join(", ")
        )));
    }
    Ok(file)
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
