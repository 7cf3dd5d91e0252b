//! Data sources and syncs: create, read, replace, delete, pause, and hand-edited offsets.
//! Editors change them, viewers read them; every write is a compare-and-swap.

use chrono::Utc;

use super::{require, ServiceError, Services};
use crate::model::{
    Cursor, DataSource, DataSourceInput, Offset, OffsetChange, Role, SyncConfig, SyncInput,
    SyncStatus, User, ValidationError,
};
use crate::secret::DataSourceRecord;
use crate::store::{decode, encode, Compare, KeyValue, Op, Txn};

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

fn conflict(what: &str) -> ServiceError {
    ServiceError::Conflict(format!("{what} changed meanwhile; reload and try again"))
}

impl Services {
    async fn datasource_record(
        &self,
        id: &str,
    ) -> Result<(DataSourceRecord, KeyValue), ServiceError> {
        let key = self.keys.datasource(id);
        let kv = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("data source `{id}`")))?;
        Ok((decode(&key, &kv.value)?, kv))
    }

    pub async fn datasource(&self, actor: &User, id: &str) -> Result<DataSource, ServiceError> {
        require(actor, Role::Viewer)?;
        Ok(self.datasource_record(id).await?.0.source)
    }

    /// The record with sealed secrets, for the server's connection tests (editor only).
    pub async fn datasource_for_connecting(
        &self,
        actor: &User,
        id: &str,
    ) -> Result<DataSourceRecord, ServiceError> {
        require(actor, Role::Editor)?;
        Ok(self.datasource_record(id).await?.0)
    }

    async fn check_datasource_name(
        &self,
        name: &str,
        except: Option<&str>,
    ) -> Result<(), ServiceError> {
        for kv in self.store.list_all(&self.keys.datasources()).await? {
            let r: DataSourceRecord = decode(&kv.key, &kv.value)?;
            if r.source.name == name && Some(r.source.id.as_str()) != except {
                return Err(ValidationError::new(
                    "name",
                    format!("a data source named `{name}` exists; pick another name"),
                )
                .into());
            }
        }
        Ok(())
    }

    pub async fn create_datasource(
        &self,
        actor: &User,
        input: DataSourceInput,
    ) -> Result<DataSource, ServiceError> {
        require(actor, Role::Editor)?;
        let input = input.normalize()?;
        self.check_datasource_name(&input.name, None).await?;
        let id = new_id();
        let record = DataSourceRecord::from_input(&self.cipher, &id, input, None, Utc::now())?;
        let key = self.keys.datasource(&id);
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::missing(&key)])
                    .and_then(vec![Op::put(&key, encode(&record), None)]),
            )
            .await?;
        if !resp.succeeded {
            return Err(conflict("the data source"));
        }
        Ok(record.source)
    }

    /// Replaces a data source; secrets the input marks `keep` keep their stored value.
    pub async fn update_datasource(
        &self,
        actor: &User,
        id: &str,
        input: DataSourceInput,
    ) -> Result<DataSource, ServiceError> {
        require(actor, Role::Editor)?;
        let input = input.normalize()?;
        self.check_datasource_name(&input.name, Some(id)).await?;
        let (previous, kv) = self.datasource_record(id).await?;
        let record =
            DataSourceRecord::from_input(&self.cipher, id, input, Some(&previous), Utc::now())?;
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::mod_revision(&kv.key, kv.mod_revision)])
                    .and_then(vec![Op::put(&kv.key, encode(&record), None)]),
            )
            .await?;
        if !resp.succeeded {
            return Err(conflict("the data source"));
        }
        Ok(record.source)
    }

    /// Deletes a data source no sync uses; otherwise names the syncs that do.
    pub async fn delete_datasource(&self, actor: &User, id: &str) -> Result<(), ServiceError> {
        require(actor, Role::Editor)?;
        let (_, kv) = self.datasource_record(id).await?;
        let users: Vec<String> = self
            .all_syncs()
            .await?
            .into_iter()
            .filter(|(s, _)| s.source.datasource_id == id || s.destination.datasource_id == id)
            .map(|(s, _)| s.name)
            .collect();
        if !users.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "data source is used by sync {}: change or delete them first",
                users.join(", ")
            )));
        }
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::mod_revision(&kv.key, kv.mod_revision)])
                    .and_then(vec![Op::delete(&kv.key)]),
            )
            .await?;
        if !resp.succeeded {
            return Err(conflict("the data source"));
        }
        Ok(())
    }

    async fn all_syncs(&self) -> Result<Vec<(SyncConfig, KeyValue)>, ServiceError> {
        let mut out = Vec::new();
        for kv in self.store.list_all(&self.keys.syncs()).await? {
            out.push((decode(&kv.key, &kv.value)?, kv));
        }
        Ok(out)
    }

    async fn sync_record(&self, id: &str) -> Result<(SyncConfig, KeyValue), ServiceError> {
        let key = self.keys.sync(id);
        let kv = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("sync `{id}`")))?;
        Ok((decode(&key, &kv.value)?, kv))
    }

    pub async fn sync(&self, actor: &User, id: &str) -> Result<SyncConfig, ServiceError> {
        require(actor, Role::Viewer)?;
        Ok(self.sync_record(id).await?.0)
    }

    async fn check_sync(&self, sync: &SyncConfig) -> Result<(), ServiceError> {
        sync.validate()?;
        for (field, id) in [
            ("source.datasource_id", &sync.source.datasource_id),
            ("destination.datasource_id", &sync.destination.datasource_id),
        ] {
            let Some(kv) = self.store.get(&self.keys.datasource(id)).await? else {
                return Err(ValidationError::new(
                    field,
                    format!("no data source `{id}`; pick one from the list"),
                )
                .into());
            };
            if field == "source.datasource_id" {
                let record: DataSourceRecord = decode(&kv.key, &kv.value)?;
                sync.validate_keys_for(record.source.kind)?;
            }
        }
        for (other, _) in self.all_syncs().await? {
            if other.name == sync.name && other.id != sync.id {
                return Err(ValidationError::new(
                    "name",
                    format!("a sync named `{}` exists; pick another name", sync.name),
                )
                .into());
            }
        }
        Ok(())
    }

    pub async fn create_sync(
        &self,
        actor: &User,
        input: SyncInput,
    ) -> Result<SyncConfig, ServiceError> {
        require(actor, Role::Editor)?;
        let now = Utc::now();
        let sync = input.into_config(new_id(), now, now);
        self.check_sync(&sync).await?;
        let key = self.keys.sync(&sync.id);
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::missing(&key)])
                    .and_then(vec![Op::put(&key, encode(&sync), None)]),
            )
            .await?;
        if !resp.succeeded {
            return Err(conflict("the sync"));
        }
        Ok(sync)
    }

    pub async fn update_sync(
        &self,
        actor: &User,
        id: &str,
        input: SyncInput,
    ) -> Result<SyncConfig, ServiceError> {
        require(actor, Role::Editor)?;
        let (previous, kv) = self.sync_record(id).await?;
        let sync = input.into_config(id.to_string(), previous.created_at, Utc::now());
        self.check_sync(&sync).await?;
        self.replace_sync(&kv, &sync).await?;
        Ok(sync)
    }

    async fn replace_sync(&self, kv: &KeyValue, sync: &SyncConfig) -> Result<(), ServiceError> {
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::mod_revision(&kv.key, kv.mod_revision)])
                    .and_then(vec![Op::put(&kv.key, encode(sync), None)]),
            )
            .await?;
        if !resp.succeeded {
            return Err(conflict("the sync"));
        }
        Ok(())
    }

    /// Pause (disable) or resume (enable) a sync; agents stop or start it within seconds.
    pub async fn set_sync_enabled(
        &self,
        actor: &User,
        id: &str,
        enabled: bool,
    ) -> Result<SyncConfig, ServiceError> {
        require(actor, Role::Editor)?;
        let (mut sync, kv) = self.sync_record(id).await?;
        sync.enabled = enabled;
        sync.updated_at = Utc::now();
        self.replace_sync(&kv, &sync).await?;
        Ok(sync)
    }

    /// Deletes a sync with its offset and status (its assignment goes with the next plan).
    pub async fn delete_sync(&self, actor: &User, id: &str) -> Result<(), ServiceError> {
        require(actor, Role::Editor)?;
        let (_, kv) = self.sync_record(id).await?;
        let ops = vec![
            Op::delete(&kv.key),
            Op::delete(&self.keys.offset(id)),
            Op::delete(&self.keys.status(id)),
            // An untaken "Run now" would otherwise stay in the store, and pending in every
            // agent's memory, for good.
            Op::delete(&self.keys.run_request(id)),
        ];
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::mod_revision(&kv.key, kv.mod_revision)])
                    .and_then(ops),
            )
            .await?;
        if !resp.succeeded {
            return Err(conflict("the sync"));
        }
        Ok(())
    }

    pub async fn sync_status(&self, actor: &User, id: &str) -> Result<SyncStatus, ServiceError> {
        self.sync(actor, id).await?;
        let key = self.keys.status(id);
        Ok(match self.store.get(&key).await? {
            Some(kv) => decode(&key, &kv.value)?,
            None => SyncStatus::default(),
        })
    }

    pub async fn sync_offset(
        &self,
        actor: &User,
        id: &str,
    ) -> Result<Option<Offset>, ServiceError> {
        self.sync(actor, id).await?;
        let key = self.keys.offset(id);
        Ok(match self.store.get(&key).await? {
            Some(kv) => Some(decode(&key, &kv.value)?),
            None => None,
        })
    }

    /// Sets an offset by hand: only while the sync is paused, only if it is still `expected`
    /// (compare-and-swap), and recorded with who and when.
    pub async fn set_sync_offset(
        &self,
        actor: &User,
        id: &str,
        expected: Option<Cursor>,
        new: Cursor,
    ) -> Result<Offset, ServiceError> {
        require(actor, Role::Editor)?;
        let (sync, sync_kv) = self.sync_record(id).await?;
        if sync.enabled {
            return Err(ServiceError::Conflict(
                "pause the sync before editing its offset: a running sync would overwrite it"
                    .into(),
            ));
        }
        // Paused is not yet stopped: the run finishes its batch and then commits its
        // offset, which would overwrite this edit. Its lock is released once it stopped.
        let lock = self.keys.sync_lock(id);
        if self.store.get(&lock).await?.is_some() {
            return Err(ServiceError::Conflict(
                "the sync is still finishing its last batch; try again in a few seconds".into(),
            ));
        }
        let key = self.keys.offset(id);
        let current = self.store.get(&key).await?;
        let current_offset: Option<Offset> = match &current {
            Some(kv) => Some(decode(&key, &kv.value)?),
            None => None,
        };
        let current_cursor = current_offset.as_ref().map(|o| o.cursor.clone());
        if current_cursor != expected {
            return Err(ServiceError::Conflict(format!(
                "the offset is now {}, not what you saw; reload and decide again",
                current_cursor
                    .as_ref()
                    .map_or("not started".into(), Cursor::describe)
            )));
        }
        let now = Utc::now();
        let offset = Offset {
            cursor: new.clone(),
            fence: current_offset.map_or(0, |o| o.fence),
            updated_at: now,
            edited: true,
        };
        let change = OffsetChange {
            sync_id: id.to_string(),
            by: actor.username.clone(),
            at: now,
            old: current_cursor,
            new,
        };
        let change_key = format!(
            "{}{}",
            self.keys.offset_changes(id),
            now.format("%Y%m%dT%H%M%S%.6fZ")
        );
        let guard = match &current {
            Some(kv) => Compare::mod_revision(&key, kv.mod_revision),
            None => Compare::missing(&key),
        };
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![
                        guard,
                        Compare::mod_revision(&sync_kv.key, sync_kv.mod_revision),
                        Compare::missing(&lock),
                    ])
                    .and_then(vec![
                        Op::put(&key, encode(&offset), None),
                        Op::put(&change_key, encode(&change), None),
                    ]),
            )
            .await?;
        if !resp.succeeded {
            return Err(conflict("the offset or the sync"));
        }
        Ok(offset)
    }

    pub async fn offset_changes(
        &self,
        actor: &User,
        id: &str,
    ) -> Result<Vec<OffsetChange>, ServiceError> {
        require(actor, Role::Viewer)?;
        let mut out = Vec::new();
        for kv in self.store.list_all(&self.keys.offset_changes(id)).await? {
            out.push(decode(&kv.key, &kv.value)?);
        }
        Ok(out)
    }

    /// Asks the agent running the sync to run it now instead of at its next poll.
    pub async fn request_run(&self, actor: &User, id: &str) -> Result<(), ServiceError> {
        require(actor, Role::Editor)?;
        let (sync, kv) = self.sync_record(id).await?;
        if !sync.enabled {
            return Err(ServiceError::Conflict(
                "the sync is paused; resume it to run it".into(),
            ));
        }
        // Only while the sync is still there: a request written after a concurrent delete
        // would stay in the store for good.
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::mod_revision(&kv.key, kv.mod_revision)])
                    .and_then(vec![Op::put(
                        &self.keys.run_request(id),
                        encode(&Utc::now()),
                        None,
                    )]),
            )
            .await?;
        if !resp.succeeded {
            return Err(conflict("the sync"));
        }
        Ok(())
    }

    /// Loads a file (Idra's format or the original Idra's) into the store.
    pub async fn import_file(
        &self,
        actor: &User,
        text: &str,
    ) -> Result<crate::config::store_io::Imported, ServiceError> {
        require(actor, Role::Editor)?;
        let config = crate::config::parse(text)
            .map_err(|e| ServiceError::Invalid(ValidationError::new("file", e.0)))?;
        crate::config::store_io::import(self.store.as_ref(), &self.keys, &self.cipher, &config)
            .await
            .map_err(|e| ServiceError::Conflict(e.0))
    }

    /// The store's data sources and syncs in Idra's format, without secrets.
    pub async fn export_file(&self, actor: &User) -> Result<serde_json::Value, ServiceError> {
        require(actor, Role::Viewer)?;
        crate::config::store_io::export(self.store.as_ref(), &self.keys, &self.cipher, false)
            .await
            .map_err(|e| ServiceError::Conflict(e.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConnectorKind, DataSourceInput, Endpoint, SyncMode, WriteMode};
    use crate::service::test_support::{services, user};

    fn sqlite(name: &str) -> DataSourceInput {
        DataSourceInput {
            name: name.into(),
            kind: ConnectorKind::Sqlite,
            connection_string: format!("sqlite:///tmp/{name}.db"),
            options: Default::default(),
            secrets: Default::default(),
        }
    }

    #[tokio::test]
    async fn deleting_a_sync_removes_its_untaken_run_request() {
        let (s, _dir) = services().await;
        let editor = user(Role::Editor);
        let from = s.create_datasource(&editor, sqlite("from")).await.unwrap();
        let to = s.create_datasource(&editor, sqlite("to")).await.unwrap();
        let endpoint = |id: &str| Endpoint {
            datasource_id: id.into(),
            table: "t".into(),
            query: None,
        };
        let sync = s
            .create_sync(
                &editor,
                SyncInput {
                    name: "copy".into(),
                    source: endpoint(&from.id),
                    destination: endpoint(&to.id),
                    mode: SyncMode::ById,
                    write_mode: WriteMode::Insert,
                    key_columns: vec!["id".into()],
                    timestamp_column: None,
                    batch_size: 100,
                    poll_interval_secs: 5,
                    settle_secs: 0,
                    enabled: true,
                },
            )
            .await
            .unwrap();
        s.request_run(&editor, &sync.id).await.unwrap();
        let key = s.keys.run_request(&sync.id);
        assert!(s.store.get(&key).await.unwrap().is_some());
        s.delete_sync(&editor, &sync.id).await.unwrap();
        assert!(s.store.get(&key).await.unwrap().is_none());
    }
}
