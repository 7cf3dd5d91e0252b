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
        let secrets = record.open_secrets(&self.cipher)?;
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
        // A stored secret is used only for the target it was saved for: a form that changed
        // the host (or kind, or a target option) must carry the secret typed again.
        let mut secrets = match id {
            Some(id) => self
                .datasource_for_connecting(actor, id)
                .await?
                .kept_secrets(&self.cipher, &input)?,
            None => BTreeMap::new(),
        };
        for (name, action) in &input.secrets {
            if let crate::model::SecretInput::Set(v) = action {
                secrets.insert(name.clone(), Secret::new(v.clone()));
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::model::{DataSourceInput, SecretInput};
    use crate::service::test_support;

    /// Records where each check would have connected, with which secrets.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, BTreeMap<String, Secret>)>>);

    #[async_trait]
    impl Probe for Recorder {
        async fn test(&self, target: ProbeTarget) -> Result<(), String> {
            let mut seen = self.0.lock().unwrap();
            seen.push((target.connection_string, target.secrets));
            Ok(())
        }
        async fn discover(&self, _: ProbeTarget) -> Result<Vec<TableView>, String> {
            Ok(vec![])
        }
        fn available(&self) -> Vec<ConnectorKind> {
            ConnectorKind::ALL.to_vec()
        }
    }

    async fn services(recorder: Arc<Recorder>) -> (Services, tempfile::TempDir) {
        let (s, dir) = test_support::services().await;
        (s.with_probe(recorder), dir)
    }

    fn editor() -> User {
        test_support::user(Role::Editor)
    }

    fn postgres(cs: &str) -> DataSourceInput {
        DataSourceInput {
            name: "warehouse".into(),
            kind: ConnectorKind::Postgres,
            connection_string: cs.into(),
            options: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    /// A Postgres data source an editor saved with its password.
    async fn saved_with_password(s: &Services) -> crate::model::DataSource {
        s.create_datasource(
            &editor(),
            postgres("postgres://app:prod-secret@db:5432/prod"),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn testing_a_form_with_another_host_does_not_send_the_saved_password() {
        let recorder = Arc::new(Recorder::default());
        let (s, _dir) = services(recorder.clone()).await;
        let saved = saved_with_password(&s).await;
        let mut attack = postgres("postgres://app@attacker.example:5432/prod");
        attack.secrets.insert("password".into(), SecretInput::Keep);
        let err = s
            .test_datasource_input(&editor(), Some(&saved.id), attack.clone())
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("secrets.password"), "{err}");
        assert!(err.to_string().contains("type the password again"), "{err}");
        assert!(
            recorder.0.lock().unwrap().is_empty(),
            "nothing was contacted"
        );
        // The same attack through a save is refused too, and the record is unchanged.
        let err = s
            .update_datasource(&editor(), &saved.id, attack)
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("secrets.password"), "{err}");
        let stored = s.datasource(&editor(), &saved.id).await.unwrap();
        assert_eq!(stored.connection_string, "postgres://app@db:5432/prod");
    }

    #[tokio::test]
    async fn testing_the_saved_target_uses_the_saved_password() {
        let recorder = Arc::new(Recorder::default());
        let (s, _dir) = services(recorder.clone()).await;
        let saved = saved_with_password(&s).await;
        let mut same = postgres("postgres://app@db:5432/prod");
        same.secrets.insert("password".into(), SecretInput::Keep);
        s.test_datasource_input(&editor(), Some(&saved.id), same)
            .await
            .unwrap()
            .unwrap();
        let seen = recorder.0.lock().unwrap();
        assert_eq!(seen[0].1["password"].expose(), "prod-secret");
    }
}
