use idra_core::model::{DataSourceChoice, SyncConfig, SyncInput, SyncPage, TableView};
use leptos::prelude::*;

use super::{JsonAnswer, JsonArgs, UiError};

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

/// Creates (no id) or replaces a sync, whole: the editor sends the stored sync with its
/// edits, so what the form does not show (paused, settle time, composite keys) is kept.
#[server(endpoint = "syncs/save", input = JsonArgs, output = JsonAnswer)]
pub async fn save_sync(id: Option<String>, input: SyncInput) -> Result<SyncConfig, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let services = server::services()?;
    Ok(match id {
        None => services.create_sync(&actor, input).await?,
        Some(id) => services.update_sync(&actor, &id, input).await?,
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
