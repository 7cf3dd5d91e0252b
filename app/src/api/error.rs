#[cfg(feature = "ssr")]
use leptos::prelude::use_context;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What a server function reports: a message for people, and the input field it is about
/// (so the form can show it next to that field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiError {
    pub message: String,
    pub field: Option<String>,
    /// The request had no valid session (it expired, or the user signed out elsewhere):
    /// the page sends the browser to the login page instead of showing an error.
    #[serde(default)]
    pub signed_out: bool,
}

impl UiError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
            signed_out: false,
        }
    }

    /// The message when it concerns `field`, for rendering next to that input.
    pub fn for_field(&self, field: &str) -> Option<String> {
        (self.field.as_deref() == Some(field)).then(|| self.message.clone())
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for UiError {}

/// A field the browser refused before sending (a batch size that is no number, say).
impl From<idra_core::model::ValidationError> for UiError {
    fn from(v: idra_core::model::ValidationError) -> Self {
        Self {
            message: v.message,
            field: Some(v.field),
            signed_out: false,
        }
    }
}

impl FromServerFnError for UiError {
    type Encoder = super::JsonText;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::new(format!(
            "the server could not be reached or answered oddly: {value}"
        ))
    }
}

#[cfg(feature = "ssr")]
impl From<idra_core::service::ServiceError> for UiError {
    fn from(e: idra_core::service::ServiceError) -> Self {
        use idra_core::service::ServiceError;
        // A server function answers 401 without a session and 403 without the role (500
        // before), as the REST API does, so clients and proxies see what happened.
        let status = match &e {
            ServiceError::Unauthenticated => Some(axum::http::StatusCode::UNAUTHORIZED),
            ServiceError::Forbidden { .. } => Some(axum::http::StatusCode::FORBIDDEN),
            _ => None,
        };
        if let (Some(status), Some(response)) =
            (status, use_context::<leptos_axum::ResponseOptions>())
        {
            response.set_status(status);
        }
        match e {
            ServiceError::Invalid(v) => v.into(),
            ServiceError::Unauthenticated => Self {
                signed_out: true,
                ..Self::new("your session ended: sign in again")
            },
            ServiceError::Store(s) => {
                leptos::logging::error!("store error: {s}");
                Self::new(format!("the store failed: {s}"))
            }
            other => Self::new(other.to_string()),
        }
    }
}
