//! The document's frame: title, base path and the session-cookie security scheme. The paths
//! and schemas themselves come from the handlers' `#[utoipa::path]` annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, Server};

pub const SESSION_SCHEME: &str = "session";

pub fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("Idra REST API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Sign in with `POST /session` ({username, password}); the answer sets the \
             `idra_session` cookie that every other call needs. Viewers may read, operators \
             may also change syncs and data sources, admins may also manage users. Errors are \
             `{error, field?}`.",
        ))
        .build();
    doc.servers = Some(vec![Server::new("/api/v1")]);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        SESSION_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("idra_session"))),
    );
    // Every operation needs the cookie unless its annotation says `security(())`.
    doc.security = Some(vec![SecurityRequirement::new(
        SESSION_SCHEME,
        Vec::<String>::new(),
    )]);
    doc
}
