use idra_core::model::DataSource;
use leptos::prelude::*;

use super::{JsonAnswer, UiError};

/// Kinds whose connector this server has (the others are listed as unavailable).
#[server(endpoint = "datasources/kinds", output = JsonAnswer)]
pub async fn available_kinds() -> Result<Vec<String>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?
        .available_kinds(&actor)?
        .into_iter()
        .map(|k| k.as_str().to_string())
        .collect())
}

/// `key = value`, one per line; blank lines and `#` comments are skipped.
#[cfg(feature = "ssr")]
fn parse_options(text: &str) -> Result<std::collections::BTreeMap<String, String>, UiError> {
    use idra_core::model::ValidationError;
    let mut out = std::collections::BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            let e =
                ValidationError::new("options", format!("line {}: expected `key = value`", n + 1));
            return Err(idra_core::service::ServiceError::from(e).into());
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// The form's fields as a data source input. An empty password field keeps the stored one.
#[cfg(feature = "ssr")]
fn input(
    name: String,
    kind: String,
    connection_string: String,
    password: String,
    options: String,
) -> Result<idra_core::model::DataSourceInput, UiError> {
    use idra_core::model::{ConnectorKind, DataSourceInput, SecretInput};
    let kind = ConnectorKind::parse(&kind).map_err(idra_core::service::ServiceError::from)?;
    let mut secrets = std::collections::BTreeMap::new();
    if !password.is_empty() {
        secrets.insert("password".to_string(), SecretInput::Set(password));
    }
    Ok(DataSourceInput {
        name: name.trim().to_string(),
        kind,
        connection_string: connection_string.trim().to_string(),
        options: parse_options(&options)?,
        secrets,
    })
}

/// Creates (no id) or replaces a data source.
#[server(endpoint = "datasources/save", output = JsonAnswer)]
pub async fn save_datasource(
    id: String,
    name: String,
    kind: String,
    connection_string: String,
    password: String,
    options: String,
) -> Result<DataSource, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let services = server::services()?;
    let input = input(name, kind, connection_string, password, options)?;
    Ok(if id.is_empty() {
        services.create_datasource(&actor, input).await?
    } else {
        services.update_datasource(&actor, &id, input).await?
    })
}

/// Runs the connector's real check on the form's values.
#[server(endpoint = "datasources/test", output = JsonAnswer)]
pub async fn test_datasource(
    id: String,
    name: String,
    kind: String,
    connection_string: String,
    password: String,
    options: String,
) -> Result<String, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let name = if name.trim().is_empty() {
        "unsaved".into()
    } else {
        name
    };
    let input = input(name, kind, connection_string, password, options)?;
    let id = (!id.is_empty()).then_some(id);
    match server::services()?
        .test_datasource_input(&actor, id.as_deref(), input)
        .await?
    {
        Ok(()) => Ok("Connection OK".into()),
        Err(message) => Err(UiError::new(format!("Connection failed: {message}"))),
    }
}

#[server(endpoint = "datasources/delete", output = JsonAnswer)]
pub async fn delete_datasource(id: String) -> Result<(), UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.delete_datasource(&actor, &id).await?)
}
