use idra_core::model::{DataSourceChoice, SyncConfig, SyncPage, TableView};
use leptos::prelude::*;

use super::{JsonAnswer, UiError};

pub const PAGE_SIZE: usize = 50;

#[server(endpoint = "syncs/page", output = JsonAnswer)]
pub async fn list_sync_page(search: String, page: usize) -> Result<SyncPage, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?
        .sync_page(&actor, &search, page, PAGE_SIZE)
        .await?)
}

/// The data sources a sync can read from or write to, for the editor's pickers.
#[server(endpoint = "datasources/choices", output = JsonAnswer)]
pub async fn list_datasource_choices() -> Result<Vec<DataSourceChoice>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let all = server::services()?.list_datasources(&actor).await?;
    Ok(all
        .into_iter()
        .map(|d| DataSourceChoice {
            id: d.id,
            name: d.name,
        })
        .collect())
}

/// Tables and columns of a saved data source (editors: it connects with the secrets).
#[server(endpoint = "datasources/discover", output = JsonAnswer)]
pub async fn discover_tables(id: String) -> Result<Vec<TableView>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    match server::services()?.discover_datasource(&actor, &id).await? {
        Ok(tables) => Ok(tables),
        Err(message) => Err(UiError::new(format!("Cannot list the tables: {message}"))),
    }
}

/// Creates (no id) or replaces a sync from the editor's fields.
#[allow(clippy::too_many_arguments)]
#[server(endpoint = "syncs/save", output = JsonAnswer)]
pub async fn save_sync(
    id: String,
    name: String,
    source_datasource: String,
    source_table: String,
    source_query: String,
    destination_datasource: String,
    destination_table: String,
    mode: String,
    key_column: String,
    timestamp_column: String,
    write_mode: String,
    batch_size: String,
    poll_interval: String,
) -> Result<SyncConfig, UiError> {
    use super::server;
    use idra_core::model::{Endpoint, SyncInput, ValidationError};
    use idra_core::service::ServiceError;
    let actor = server::actor().await?;
    let invalid = |field: &str, message: &str| {
        UiError::from(ServiceError::from(ValidationError::new(field, message)))
    };
    use idra_core::model::{SyncMode, WriteMode};
    let mode = SyncMode::from_name(&mode).ok_or_else(|| invalid("mode", "pick a mode"))?;
    let write_mode = WriteMode::from_name(&write_mode)
        .ok_or_else(|| invalid("write_mode", "pick insert or upsert"))?;
    let batch_size = batch_size
        .trim()
        .parse()
        .map_err(|_| invalid("batch_size", "must be a whole number"))?;
    let poll_interval_secs = poll_interval
        .trim()
        .parse()
        .map_err(|_| invalid("poll_interval_secs", "must be a whole number of seconds"))?;
    let query = Some(source_query.trim().to_string()).filter(|q| !q.is_empty());
    let input = SyncInput {
        name: name.trim().to_string(),
        source: Endpoint {
            datasource_id: source_datasource,
            table: if query.is_some() {
                String::new()
            } else {
                source_table
            },
            query,
        },
        destination: Endpoint {
            datasource_id: destination_datasource,
            table: destination_table.trim().to_string(),
            query: None,
        },
        mode,
        write_mode,
        key_columns: if key_column.is_empty() {
            vec![]
        } else {
            vec![key_column]
        },
        timestamp_column: Some(timestamp_column).filter(|t| !t.is_empty()),
        batch_size,
        poll_interval_secs,
        settle_secs: 0,
        enabled: true,
    };
    let services = server::services()?;
    Ok(if id.is_empty() {
        services.create_sync(&actor, input).await?
    } else {
        services.update_sync(&actor, &id, input).await?
    })
}

#[server(endpoint = "syncs/enabled", output = JsonAnswer)]
pub async fn set_sync_enabled(id: String, enabled: bool) -> Result<SyncConfig, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?
        .set_sync_enabled(&actor, &id, enabled)
        .await?)
}

#[server(endpoint = "syncs/delete", output = JsonAnswer)]
pub async fn delete_sync(id: String) -> Result<(), UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.delete_sync(&actor, &id).await?)
}

#[server(endpoint = "syncs/run", output = JsonAnswer)]
pub async fn run_sync_now(id: String) -> Result<(), UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.request_run(&actor, &id).await?)
}

/// Imports a sync file; returns what was loaded.
#[server(endpoint = "syncs/import", output = JsonAnswer)]
pub async fn import_syncs(text: String) -> Result<String, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let n = server::services()?.import_file(&actor, &text).await?;
    Ok(format!(
        "Imported {} data sources and {} syncs.",
        n.datasources, n.syncs
    ))
}
