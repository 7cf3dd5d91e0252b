use idra_core::model::DataSource;
use leptos::prelude::*;

use super::UiError;

/// Kinds whose connector this server has (the others are listed as unavailable).
#[server(endpoint = "datasources/kinds")]
pub async fn available_kinds() -> Result<Vec<String>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?
        .available_kinds(&actor)?
        .into_iter()
        .map(|k| k.as_str().to_string())
        .collect())
}

#[cfg(feature = "ssr")]
fn input(
    name: String,
    kind: String,
    connection_string: String,
    password: String,
) -> Result<idra_core::model::DataSourceInput, UiError> {
    use idra_core::model::{ConnectorKind, DataSourceInput, SecretInput};
    let kind = ConnectorKind::parse(&kind).map_err(idra_core::service::ServiceError::from)?;
    let mut secrets = std::collections::BTreeMap::new();
    // An empty password field means "keep the stored one".
    if !password.is_empty() {
        secrets.insert("password".to_string(), SecretInput::Set(password));
    }
    Ok(DataSourceInput {
        name: name.trim().to_string(),
        kind,
        connection_string: connection_string.trim().to_string(),
        options: Default::default(),
        secrets,
    })
}

/// Creates (no id) or replaces a data source.
#[server(endpoint = "datasources/save")]
pub async fn save_datasource(
    id: String,
    name: String,
    kind: String,
    connection_string: String,
    password: String,
) -> Result<DataSource, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let services = server::services()?;
    let input = input(name, kind, connection_string, password)?;
    Ok(if id.is_empty() {
        services.create_datasource(&actor, input).await?
    } else {
        services.update_datasource(&actor, &id, input).await?
    })
}

/// Runs the connector's real check on the form's values.
#[server(endpoint = "datasources/test")]
pub async fn test_datasource(
    id: String,
    name: String,
    kind: String,
    connection_string: String,
    password: String,
) -> Result<String, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let input = input(
        if name.trim().is_empty() {
            "unsaved".into()
        } else {
            name
        },
        kind,
        connection_string,
        password,
    )?;
    let id = (!id.is_empty()).then_some(id);
    match server::services()?
        .test_datasource_input(&actor, id.as_deref(), input)
        .await?
    {
        Ok(()) => Ok("Connection OK".into()),
        Err(message) => Err(UiError::new(format!("Connection failed: {message}"))),
    }
}

#[server(endpoint = "datasources/delete")]
pub async fn delete_datasource(id: String) -> Result<(), UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.delete_datasource(&actor, &id).await?)
}
