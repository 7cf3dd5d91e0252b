use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use idra_core::service::ServiceError;
use serde::Serialize;

/// Every API error: the right status and a stable body `{error, field?}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    error: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                field: None,
            },
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// Adds `Retry-After: secs` to the answer (429, 503).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Unauthenticated | ServiceError::BadCredentials => {
                StatusCode::UNAUTHORIZED
            }
            ServiceError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Forbidden { .. } | ServiceError::DefaultPasswordFromAfar => {
                StatusCode::FORBIDDEN
            }
            ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Store(s) if s.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let ServiceError::Store(s) = &e {
            tracing::error!(error = %s, "store failure in API request");
        }
        let retry_after = match &e {
            ServiceError::RateLimited { retry_after_secs }
            | ServiceError::Busy { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let message = match &e {
            ServiceError::Invalid(v) => v.message.clone(),
            other => other.to_string(),
        };
        Self {
            status,
            body: ErrorBody {
                error: message,
                field: e.field().map(String::from),
            },
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        resp
    }
}
