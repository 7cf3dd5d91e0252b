//! Loading a file's syncs and data sources into the Store (`idra-agent import`) and
//! writing them back out in Idra's own format (`idra-agent export`), so a cluster can be set
//! up without the UI. Secrets are sealed on the way in; on the way out they are left out
//! unless asked for.

use std::collections::BTreeMap;

use crate::model::{DataSourceInput, SecretInput, SyncConfig};
use crate::secret::{Cipher, DataSourceRecord};
use crate::store::{decode, encode, Keys, Op, Store, Txn};
use chrono::Utc;
use serde_json::{json, Value};

use super::{sync_id, ConfigError, FileConfig};

#[derive(Debug, PartialEq, Eq)]
pub struct Imported {
    pub datasources: usize,
    pub syncs: usize,
}

/// Writes every data source and sync of `config` (replacing those with the same name) in
/// one transaction: a file is imported whole or not at all.
pub async fn import(
    store: &dyn Store,
    keys: &Keys,
    cipher: &Cipher,
    config: &FileConfig,
) -> Result<Imported, ConfigError> {
    let now = Utc::now();
    let mut ops = Vec::new();
    for d in &config.datasources {
        let id = sync_id(&d.name);
        let input = DataSourceInput {
            name: d.name.clone(),
            kind: d.kind,
            connection_string: d.connection_string.clone(),
            options: d.options.clone(),
            secrets: d
                .secrets
                .iter()
                .map(|(k, v)| (k.clone(), SecretInput::Set(v.expose().to_string())))
                .collect(),
        }
        .normalize()
        .map_err(|e| {
            ConfigError(format!(
                "data source `{}`: field `{}`: {}",
                d.name, e.field, e.message
            ))
        })?;
        let key = keys.datasource(&id);
        let previous: Option<DataSourceRecord> = match store
            .get(&key)
            .await
            .map_err(|e| ConfigError(e.to_string()))?
        {
            Some(kv) => decode(&key, &kv.value).ok(),
            None => None,
        };
        let record = DataSourceRecord::from_input(cipher, &id, input, previous.as_ref(), now)
            .map_err(|e| ConfigError(format!("data source `{}`: {e}", d.name)))?;
        ops.push(Op::put(&key, encode(&record), None));
    }
    let err = |e: crate::store::StoreError| ConfigError(e.to_string());
    for s in &config.syncs {
        let mut sync: SyncConfig = s.clone();
        // A sync imported before files could name its id was stored under an id made of
        // its name: keep that one, or importing the file again would add a second sync
        // copying the same table.
        let by_name = sync_id(&s.name);
        if sync.id != by_name
            && store
                .get(&keys.sync(&by_name))
                .await
                .map_err(err)?
                .is_some()
        {
            sync.id = by_name;
        }
        // A start offset applies to a sync that has none yet (importing the same file
        // again must not move a running sync back), and is written before the sync itself
        // so no agent can start the sync from the beginning first.
        if let Some(cursor) = config.start_offsets.get(&s.id) {
            let key = keys.offset(&sync.id);
            let offset = crate::model::Offset {
                cursor: cursor.clone(),
                fence: 0,
                updated_at: now,
                edited: true,
            };
            store
                .txn(
                    Txn::new()
                        .when(vec![crate::store::Compare::missing(&key)])
                        .and_then(vec![Op::put(&key, encode(&offset), None)]),
                )
                .await
                .map_err(err)?;
        }
        sync.source.datasource_id = sync_id(&s.source.datasource_id);
        sync.destination.datasource_id = sync_id(&s.destination.datasource_id);
        sync.updated_at = now;
        ops.push(Op::put(&keys.sync(&sync.id), encode(&sync), None));
    }
    // In transactions etcd accepts (MAX_TXN_OPS), data sources before the syncs that use
    // them, so every sync that appears can already run.
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() {
        let chunk: Vec<Op> = ops.by_ref().take(crate::store::MAX_TXN_OPS).collect();
        store.txn(Txn::new().and_then(chunk)).await.map_err(err)?;
    }
    Ok(Imported {
        datasources: config.datasources.len(),
        syncs: config.syncs.len(),
    })
}

/// The Store's data sources and syncs in Idra's own file format.
pub async fn export(
    store: &dyn Store,
    keys: &Keys,
    cipher: &Cipher,
    with_secrets: bool,
) -> Result<Value, ConfigError> {
    let err = |e: crate::store::StoreError| ConfigError(e.to_string());
    let mut names = BTreeMap::new();
    let mut datasources = Vec::new();
    for kv in store.list_all(&keys.datasources()).await.map_err(err)? {
        let r: DataSourceRecord = decode(&kv.key, &kv.value).map_err(err)?;
        names.insert(r.source.id.clone(), r.source.name.clone());
        let mut entry = json!({
            "name": r.source.name,
            "kind": r.source.kind,
            "connection_string": r.source.connection_string,
            "options": r.source.options,
        });
        if with_secrets {
            let secrets = r
                .open_secrets(cipher)
                .map_err(|e| ConfigError(e.to_string()))?;
            for (name, secret) in &secrets {
                if name == "password" {
                    entry["password"] = json!(secret.expose());
                } else {
                    entry["secrets"][name] = json!(secret.expose());
                }
            }
        }
        datasources.push(entry);
    }
    let mut syncs = Vec::new();
    for kv in store.list_all(&keys.syncs()).await.map_err(err)? {
        let s: SyncConfig = decode(&kv.key, &kv.value).map_err(err)?;
        let ds = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
        let mut source = json!({"datasource": ds(&s.source.datasource_id)});
        match &s.source.query {
            Some(q) => source["query"] = json!(q),
            None => source["table"] = json!(s.source.table),
        }
        syncs.push(json!({
            "name": s.name,
            "source": source,
            "destination": {"datasource": ds(&s.destination.datasource_id), "table": s.destination.table},
            "mode": s.mode,
            "write_mode": s.write_mode,
            "key_columns": s.key_columns,
            "timestamp_column": s.timestamp_column,
            "batch_size": s.batch_size,
            "poll_interval_secs": s.poll_interval_secs,
            "settle_secs": s.settle_secs,
            "enabled": s.enabled,
        }));
    }
    Ok(json!({"datasources": datasources, "syncs": syncs}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmbeddedStore;

    const FILE: &str = r#"{"datasources": [
        {"name": "Shop DB", "kind": "postgres", "connection_string": "postgres://app:pw-secret@db:5432/shop"},
        {"name": "lake", "kind": "sqlite", "connection_string": "sqlite:///tmp/lake.db"}],
      "syncs": [{"name": "orders", "source": {"datasource": "Shop DB", "table": "public.orders"},
                 "destination": {"datasource": "lake", "table": "orders"}, "mode": "by_id", "key_columns": ["id"]}]}"#;

    #[tokio::test]
    async fn import_then_export_round_trips_and_seals_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let cipher = Cipher::from_key_file(&dir.path().join("k")).unwrap();
        let config = super::super::parse(FILE).unwrap();
        assert_eq!(
            import(&store, &keys, &cipher, &config).await.unwrap(),
            Imported {
                datasources: 2,
                syncs: 1
            }
        );
        // The password is sealed in the store, not in clear.
        let raw = store
            .get(&keys.datasource("shop_db"))
            .await
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&raw.value).contains("pw-secret"));
        let sync: SyncConfig = decode(
            "k",
            &store
                .get(&keys.sync("orders"))
                .await
                .unwrap()
                .unwrap()
                .value,
        )
        .unwrap();
        assert_eq!(sync.source.datasource_id, "shop_db");

        let out = export(&store, &keys, &cipher, false).await.unwrap();
        assert!(
            !out.to_string().contains("pw-secret"),
            "secrets stay out by default"
        );
        let again = super::super::parse(&out.to_string()).unwrap();
        assert_eq!(again.syncs[0].name, "orders");
        assert_eq!(again.syncs[0].source.datasource_id, "Shop DB");
        let with = export(&store, &keys, &cipher, true).await.unwrap();
        let shop = with["datasources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "Shop DB")
            .unwrap();
        assert_eq!(shop["password"], "pw-secret");
        // Importing twice replaces, it does not duplicate.
        import(&store, &keys, &cipher, &config).await.unwrap();
        assert_eq!(store.list_all(&keys.syncs()).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn secret_options_are_sealed_and_every_secret_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let cipher = Cipher::from_key_file(&dir.path().join("k")).unwrap();
        let file = r#"{"datasources": [{"name": "events", "kind": "kafka", "connection_string": "broker:9092",
            "options": {"security.protocol": "SASL_SSL", "sasl.password": "kafka-secret"}}]}"#;
        import(&store, &keys, &cipher, &super::super::parse(file).unwrap())
            .await
            .unwrap();
        let raw = store
            .get(&keys.datasource("events"))
            .await
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&raw.value).contains("kafka-secret"));
        let without = export(&store, &keys, &cipher, false).await.unwrap();
        assert!(!without.to_string().contains("kafka-secret"), "{without}");
        let with = export(&store, &keys, &cipher, true).await.unwrap();
        assert_eq!(
            with["datasources"][0]["secrets"]["sasl_password"],
            "kafka-secret"
        );
        let again = super::super::parse(&with.to_string()).unwrap();
        assert_eq!(
            again.datasources[0].secrets["sasl_password"].expose(),
            "kafka-secret"
        );
    }
}
