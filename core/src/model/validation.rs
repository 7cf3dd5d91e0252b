use serde::{Deserialize, Serialize};

/// A rejected input: which field, and what the user should do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Names shown to people (users, syncs, data sources): non-empty, bounded, no control chars.
pub fn validate_name(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    if trimmed.len() != value.len() {
        return Err(ValidationError::new(
            field,
            "must not start or end with spaces",
        ));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Table and column names. Connectors quote identifiers per dialect anyway; this rejects
/// what no sane schema uses (quotes, semicolons, comment markers) so a typo or an injection
/// attempt fails loudly at save time rather than deep inside a sync.
pub fn validate_identifier(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    if value.len() > 128 {
        return Err(ValidationError::new(
            field,
            "must be at most 128 characters",
        ));
    }
    let ok = value.split('.').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '-')
    });
    if !ok {
        return Err(ValidationError::new(
            field,
            format!("`{value}` is not a valid identifier: use letters, digits, `_`, `$` or `-`, with `.` only between schema and table"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_reject_injection() {
        let err = validate_identifier("source.table", "t\"; DROP TABLE x; --").unwrap_err();
        assert_eq!(err.field, "source.table");
        assert!(validate_identifier("t", "public.orders").is_ok());
        assert!(validate_identifier("t", "public..orders").is_err());
        assert!(validate_identifier("t", "").is_err());
    }

    #[test]
    fn names_reject_blank_and_padding() {
        assert_eq!(validate_name("name", "  ", 10).unwrap_err().field, "name");
        assert!(validate_name("name", " a", 10).is_err());
        assert!(validate_name("name", "abcdefghijk", 10).is_err());
        assert!(validate_name("name", "orders", 10).is_ok());
    }
}
