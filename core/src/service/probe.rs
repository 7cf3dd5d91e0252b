//! Checking a data source through its connector. The connectors live in the agent crate;
//! the server hands an implementation to `Services`, so the UI and the API share it.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{require, ServiceError, Services};
use crate::model::{ConnectorKind, Role, TableView, User};
use crate::secret::Secret;

/// What a connector needs to connect.
pub struct ProbeTarget {
    pub kind: ConnectorKind,
    pub connection_string: String,
    pub options: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
}

#[async_trait]
pub trait Probe: Send + Sync {
    /// Connects and runs the connector's trivial check; the error says what to fix.
    async fn test(&self, target: ProbeTarget) -> Result<(), String>;
    async fn discover(&self, target: ProbeTarget) -> Result<Vec<TableView>, String>;
    /// Kinds this build can connect to.
    fn available(&self) -> Vec<ConnectorKind>;
}

impl Services {
    async fn probe_target(
        &self,
        actor: &User,
        id: &str,
    ) -> Result<(ProbeTarget, &dyn Probe), ServiceError> {
        let record = self.datasource_for_connecting(actor, id).await?;
        let secrets = record
            .open_secrets(&self.cipher)
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let probe = self
            .probe
            .as_deref()
            .ok_or_else(|| ServiceError::Conflict("this server has no connectors".into()))?;
        Ok((
            ProbeTarget {
                kind: record.source.kind,
                connection_string: record.source.connection_string,
                options: record.source.options,
                secrets,
            },
            probe,
        ))
    }

    /// Runs the saved data source's connection check (editors: it uses the secrets).
    pub async fn test_datasource(
        &self,
        actor: &User,
        id: &str,
    ) -> Result<Result<(), String>, ServiceError> {
        let (target, probe) = self.probe_target(actor, id).await?;
        Ok(probe.test(target).await)
    }

    pub async fn discover_datasource(
        &self,
        actor: &User,
        id: &str,
    ) -> Result<Result<Vec<TableView>, String>, ServiceError> {
        let (target, probe) = self.probe_target(actor, id).await?;
        Ok(probe.discover(target).await)
    }

    /// Checks a data source as typed in a form, before saving. For an existing data source
    /// a secret the form left alone (`keep`) is taken from the store.
    pub async fn test_datasource_input(
        &self,
        actor: &User,
        id: Option<&str>,
        input: crate::model::DataSourceInput,
    ) -> Result<Result<(), String>, ServiceError> {
        require(actor, Role::Editor)?;
        let input = input.normalize()?;
        let mut secrets = match id {
            Some(id) => {
                let record = self.datasource_for_connecting(actor, id).await?;
                record
                    .open_secrets(&self.cipher)
                    .map_err(|e| ServiceError::Conflict(e.to_string()))?
            }
            None => BTreeMap::new(),
        };
        for (name, action) in &input.secrets {
            match action {
                crate::model::SecretInput::Keep => {}
                crate::model::SecretInput::Clear => {
                    secrets.remove(name);
                }
                crate::model::SecretInput::Set(v) => {
                    secrets.insert(name.clone(), Secret::new(v.clone()));
                }
            }
        }
        let probe = self
            .probe
            .as_deref()
            .ok_or_else(|| ServiceError::Conflict("this server has no connectors".into()))?;
        Ok(probe
            .test(ProbeTarget {
                kind: input.kind,
                connection_string: input.connection_string,
                options: input.options,
                secrets,
            })
            .await)
    }

    /// Connector kinds that work in this build (the others are listed but unavailable).
    pub fn available_kinds(&self, actor: &User) -> Result<Vec<ConnectorKind>, ServiceError> {
        require(actor, Role::Viewer)?;
        Ok(self
            .probe
            .as_ref()
            .map(|p| p.available())
            .unwrap_or_default())
    }
}
