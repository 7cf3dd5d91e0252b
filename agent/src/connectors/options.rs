//! A data source's options (`key = value` lines in the form) as the connectors that take
//! Idra's own options read them: one error shape, naming the option and what it accepts.

use std::str::FromStr;

use super::json::parse_schema;
use super::types::Column;
use super::{ConnectionSpec, ConnectorError};

pub fn error(name: &str, msg: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::fatal(format!("options: `{name}` {msg}"))
}

/// Refuses an option the connector does not know, listing those it does.
pub fn only_known(spec: &ConnectionSpec, known: &[&str], what: &str) -> Result<(), ConnectorError> {
    match spec.options.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(name) if known.is_empty() => Err(error(name, format!("is not {what}"))),
        Some(name) => Err(error(
            name,
            format!("is not {what}; known: {}", known.join(", ")),
        )),
    }
}

/// A whole-number option, `default` when unset.
pub fn number<T: FromStr>(
    spec: &ConnectionSpec,
    name: &str,
    default: T,
) -> Result<T, ConnectorError> {
    match spec.options.get(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| error(name, format!("must be a whole number in range, not `{v}`"))),
    }
}

/// A true/false option, `default` when unset.
pub fn flag(spec: &ConnectionSpec, name: &str, default: bool) -> Result<bool, ConnectorError> {
    match spec.options.get(name).map(|s| s.trim()) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(error(name, format!("is `{other}`; use true or false"))),
    }
}

/// The declared fields of the `schema` option (`id bigint, name text`), if any.
pub fn schema(spec: &ConnectionSpec) -> Result<Option<Vec<Column>>, ConnectorError> {
    spec.options
        .get("schema")
        .map(|s| parse_schema(s).map_err(|e| e.context("options")))
        .transpose()
}
