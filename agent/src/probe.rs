//! The connectors as `idra_core`'s `Probe`: what the server uses to test a data source and
//! list its tables.

use async_trait::async_trait;
use idra_core::model::{ColumnView, ConnectorKind, TableView};
use idra_core::service::probe::{Probe, ProbeTarget};

use crate::connectors::{self, ConnectionSpec};

pub struct ConnectorProbe;

fn spec(t: ProbeTarget) -> ConnectionSpec {
    ConnectionSpec {
        kind: t.kind,
        connection_string: t.connection_string,
        options: t.options,
        secrets: t.secrets,
    }
}

#[async_trait]
impl Probe for ConnectorProbe {
    async fn test(&self, target: ProbeTarget) -> Result<(), String> {
        let source = connectors::open_source(&spec(target)).map_err(|e| e.message)?;
        source.test_connection().await.map_err(|e| e.message)
    }

    async fn discover(&self, target: ProbeTarget) -> Result<Vec<TableView>, String> {
        let source = connectors::open_source(&spec(target)).map_err(|e| e.message)?;
        let tables = source.discover().await.map_err(|e| e.message)?;
        Ok(tables
            .into_iter()
            .map(|t| TableView {
                name: t.name,
                columns: t
                    .columns
                    .into_iter()
                    .map(|c| ColumnView {
                        name: c.name,
                        ty: c.ty.name(),
                        nullable: c.nullable,
                    })
                    .collect(),
            })
            .collect())
    }

    fn available(&self) -> Vec<ConnectorKind> {
        connectors::registry().into_iter().map(|e| e.kind).collect()
    }
}
