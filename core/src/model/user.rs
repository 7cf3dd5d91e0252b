use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validation::{validate_name, ValidationError};

/// What a user may do. Ordered: every role can do what the ones below it can.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only access to everything but user management.
    Viewer,
    /// Creates and changes syncs and data sources.
    Editor,
    /// Everything, including users.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Editor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            other => Err(ValidationError::new(
                "role",
                format!("`{other}` is not a role: use admin, editor or viewer"),
            )),
        }
    }
}

/// A user as any client may see it. The password hash lives only in [`UserRecord`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    #[serde(default)]
    pub email: String,
    pub role: Role,
    /// True while the seeded admin still has the password it was created with.
    #[serde(default)]
    pub default_password: bool,
    pub created_at: DateTime<Utc>,
}

/// What the store keeps under `users/<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    #[serde(flatten)]
    pub user: User,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Sessions remember the epoch they were signed in under and end when it changes: it is
    /// drawn anew when the user is created (so a re-created name never matches an old
    /// session) and whenever the password or the role changes.
    #[serde(default)]
    pub session_epoch: String,
}

/// Input for creating a user.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub email: String,
}

pub const MIN_PASSWORD_LEN: usize = 8;

impl User {
    pub fn validate_username(username: &str) -> Result<(), ValidationError> {
        validate_name("username", username, 64)?;
        if !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
        {
            return Err(ValidationError::new(
                "username",
                "use only letters, digits, `.`, `_`, `-` and `@`",
            ));
        }
        Ok(())
    }

    pub fn validate_email(email: &str) -> Result<(), ValidationError> {
        if email.is_empty() {
            return Ok(());
        }
        let valid = email.len() <= 254
            && !email.contains(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if valid {
            Ok(())
        } else {
            Err(ValidationError::new(
                "email",
                format!("`{email}` is not an email address (expected name@example.com), or leave it empty"),
            ))
        }
    }

    pub fn validate_password(field: &str, password: &str) -> Result<(), ValidationError> {
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(ValidationError::new(
                field,
                format!("must be at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        if password.len() > 1024 {
            return Err(ValidationError::new(field, "must be at most 1024 bytes"));
        }
        Ok(())
    }
}

impl NewUser {
    pub fn validate(&self) -> Result<(), ValidationError> {
        User::validate_username(&self.username)?;
        User::validate_password("password", &self.password)?;
        User::validate_email(&self.email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Editor));
        assert!(Role::Editor.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Editor));
        assert_eq!("Editor".parse::<Role>().unwrap(), Role::Editor);
        assert_eq!("root".parse::<Role>().unwrap_err().field, "role");
    }

    #[test]
    fn new_user_errors_name_the_field() {
        let mut u = NewUser {
            username: "ana".into(),
            password: "long enough".into(),
            role: Role::Viewer,
            email: String::new(),
        };
        assert!(u.validate().is_ok());
        u.password = "short".into();
        assert_eq!(u.validate().unwrap_err().field, "password");
        u.password = "long enough".into();
        u.email = "ana@".into();
        assert_eq!(u.validate().unwrap_err().field, "email");
        u.email = "ana@example.com".into();
        u.username = "a b".into();
        assert_eq!(u.validate().unwrap_err().field, "username");
    }
}
