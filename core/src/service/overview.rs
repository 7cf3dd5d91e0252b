//! Read-only views for the dashboard and the list pages.

use std::sync::Arc;

use super::{require, ServiceError, Services};
use crate::model::{
    AgentInfo, Assignment, AssignmentRow, ClusterView, Counts, DataSource, OffsetPage, OffsetRow,
    Role, SyncConfig, SyncPage, SyncRow, SyncStatus, User,
};
use crate::secret::DataSourceRecord;
use crate::store::{decode, MemberHealth};

impl Services {
    async fn count(&self, prefix: &str) -> Result<usize, ServiceError> {
        Ok(self.store.count(prefix).await?)
    }

    pub async fn counts(&self, actor: &User) -> Result<Counts, ServiceError> {
        require(actor, Role::Viewer)?;
        Ok(Counts {
            syncs: self.count(&self.keys.syncs()).await?,
            datasources: self.count(&self.keys.datasources()).await?,
            agents: self.count(&self.keys.agents()).await?,
            assignments: self.count(&self.keys.assignments()).await?,
            errors: self.count(&self.keys.errors()).await?,
        })
    }

    pub async fn store_health(&self, actor: &User) -> Result<Vec<MemberHealth>, ServiceError> {
        require(actor, Role::Viewer)?;
        Ok(self.store.health().await)
    }

    pub async fn list_syncs(&self, actor: &User) -> Result<Vec<SyncConfig>, ServiceError> {
        Ok(self
            .shared_syncs(actor)
            .await?
            .iter()
            .map(|s| SyncConfig::clone(s))
            .collect())
    }

    /// Every sync in key order, shared with the decode cache: for views that read all syncs
    /// but show few of them.
    async fn shared_syncs(&self, actor: &User) -> Result<Vec<Arc<SyncConfig>>, ServiceError> {
        require(actor, Role::Viewer)?;
        let kvs = self.store.list_all(&self.keys.syncs()).await?;
        Ok(self.syncs.decode_all(&kvs)?)
    }

    /// Data sources as clients may see them: secrets reduced to which ones are set.
    pub async fn list_datasources(&self, actor: &User) -> Result<Vec<DataSource>, ServiceError> {
        require(actor, Role::Viewer)?;
        let mut out = Vec::new();
        for kv in self.store.list_all(&self.keys.datasources()).await? {
            let record: DataSourceRecord = decode(&kv.key, &kv.value)?;
            out.push(record.source);
        }
        Ok(out)
    }

    pub async fn list_agents(&self, actor: &User) -> Result<Vec<AgentInfo>, ServiceError> {
        require(actor, Role::Viewer)?;
        let mut out = Vec::new();
        for kv in self.store.list_all(&self.keys.agents()).await? {
            out.push(decode(&kv.key, &kv.value)?);
        }
        Ok(out)
    }

    /// Offsets of the syncs matching `search` (as on the Syncs page), one page at a time;
    /// offsets are read for that page only.
    pub async fn offset_page(
        &self,
        actor: &User,
        search: &str,
        page: usize,
        page_size: usize,
    ) -> Result<OffsetPage, ServiceError> {
        let page_size = page_size.clamp(1, 500);
        let (shown, total) = search_page(self.shared_syncs(actor).await?, search, page, page_size);
        let keys: Vec<String> = shown.iter().map(|s| self.keys.offset(&s.id)).collect();
        let offsets = self.store.get_many(&keys).await?;
        let mut rows = Vec::with_capacity(shown.len());
        for ((s, key), kv) in shown.iter().zip(&keys).zip(offsets) {
            let offset = match kv {
                Some(kv) => Some(decode(key, &kv.value)?),
                None => None,
            };
            rows.push(OffsetRow {
                sync_id: s.id.clone(),
                sync_name: s.name.clone(),
                offset,
                enabled: s.enabled,
            });
        }
        Ok(OffsetPage {
            rows,
            total,
            page,
            page_size,
        })
    }

    /// Agents, the leader and the assignment of every enabled sync.
    pub async fn cluster_view(&self, actor: &User) -> Result<ClusterView, ServiceError> {
        let agents = self.list_agents(actor).await?;
        let leader = crate::store::leader(self.store.as_ref(), &self.keys.election())
            .await?
            .map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
        let mut by_sync = std::collections::HashMap::new();
        let mut generation = 0;
        for kv in self.store.list_all(&self.keys.assignments()).await? {
            let a: Assignment = decode(&kv.key, &kv.value)?;
            generation = generation.max(a.generation);
            by_sync.insert(a.sync_id.clone(), a);
        }
        let assignments = self
            .shared_syncs(actor)
            .await?
            .iter()
            .filter(|s| s.enabled)
            .map(|s| {
                let a = by_sync.remove(&s.id);
                AssignmentRow {
                    sync_id: s.id.clone(),
                    sync_name: s.name.clone(),
                    generation: a.as_ref().map_or(0, |a| a.generation),
                    agent: a.map(|a| a.agent),
                }
            })
            .collect();
        Ok(ClusterView {
            agents,
            leader,
            generation,
            assignments,
        })
    }

    /// Syncs whose name or tables contain `search`, sorted by name, one page at a time;
    /// statuses are read for that page only.
    pub async fn sync_page(
        &self,
        actor: &User,
        search: &str,
        page: usize,
        page_size: usize,
    ) -> Result<SyncPage, ServiceError> {
        let page_size = page_size.clamp(1, 500);
        let names: std::collections::HashMap<String, String> = self
            .list_datasources(actor)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect();
        let (shown, total) = search_page(self.shared_syncs(actor).await?, search, page, page_size);
        let keys: Vec<String> = shown.iter().map(|s| self.keys.status(&s.id)).collect();
        let statuses = self.store.get_many(&keys).await?;
        let mut rows = Vec::with_capacity(shown.len());
        for ((sync, key), kv) in shown.iter().zip(&keys).zip(statuses) {
            let status: SyncStatus = match kv {
                Some(kv) => decode(key, &kv.value).unwrap_or_default(),
                None => SyncStatus::default(),
            };
            let name = |id: &str| {
                names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| format!("{id} (missing)"))
            };
            rows.push(SyncRow {
                source_name: name(&sync.source.datasource_id),
                destination_name: name(&sync.destination.datasource_id),
                sync: SyncConfig::clone(sync),
                status,
            });
        }
        Ok(SyncPage {
            rows,
            total,
            page,
            page_size,
        })
    }

    /// The newest runs of a sync, newest first.
    pub async fn sync_runs(
        &self,
        actor: &User,
        sync_id: &str,
    ) -> Result<Vec<crate::model::RunRecord>, ServiceError> {
        require(actor, Role::Viewer)?;
        let mut out: Vec<crate::model::RunRecord> = Vec::new();
        for kv in self.store.list_all(&self.keys.runs(sync_id)).await? {
            out.push(decode(&kv.key, &kv.value)?);
        }
        out.reverse();
        Ok(out)
    }

    /// Failed runs across syncs, newest first, a page at a time.
    pub async fn errors_page(
        &self,
        actor: &User,
        page: usize,
        page_size: usize,
    ) -> Result<(Vec<crate::model::RunRecord>, usize), ServiceError> {
        require(actor, Role::Viewer)?;
        let all = self.store.list_all(&self.keys.errors()).await?;
        let total = all.len();
        let mut out = Vec::new();
        for kv in all.iter().rev().skip(page * page_size).take(page_size) {
            out.push(decode(&kv.key, &kv.value)?);
        }
        Ok((out, total))
    }
}

/// The syncs whose name or tables contain `search` (any case), sorted by name: the page asked
/// for and how many matched in all.
fn search_page(
    syncs: Vec<Arc<SyncConfig>>,
    search: &str,
    page: usize,
    page_size: usize,
) -> (Vec<Arc<SyncConfig>>, usize) {
    let needle = search.trim().to_lowercase();
    let mut matching: Vec<Arc<SyncConfig>> = syncs
        .into_iter()
        .filter(|s| {
            needle.is_empty()
                || s.name.to_lowercase().contains(&needle)
                || s.source.table.to_lowercase().contains(&needle)
                || s.destination.table.to_lowercase().contains(&needle)
        })
        .collect();
    // Cached: lowercasing inside the comparison allocated twice per comparison, about 20,000
    // strings per page request with 1,000 syncs.
    matching.sort_by_cached_key(|s| s.name.to_lowercase());
    let total = matching.len();
    let shown = matching
        .into_iter()
        .skip(page.saturating_mul(page_size))
        .take(page_size)
        .collect();
    (shown, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syncs(names: &[&str]) -> Vec<Arc<SyncConfig>> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                Arc::new(SyncConfig {
                    id: format!("s{i}"),
                    name: name.to_string(),
                    ..SyncConfig::example()
                })
            })
            .collect()
    }

    fn names(page: &[Arc<SyncConfig>]) -> Vec<&str> {
        page.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn search_matches_name_or_table_in_any_case_and_sorts_by_name() {
        let all = syncs(&["beta", "Alpha", "gamma"]);
        let (page, total) = search_page(all.clone(), "", 0, 10);
        assert_eq!((names(&page), total), (vec!["Alpha", "beta", "gamma"], 3));
        let (page, total) = search_page(all.clone(), " ALP ", 0, 10);
        assert_eq!((names(&page), total), (vec!["Alpha"], 1));
        // Every example sync reads `public.orders`.
        let (_, total) = search_page(all, "PUBLIC.ord", 0, 10);
        assert_eq!(total, 3);
    }

    #[test]
    fn pages_count_every_match_and_past_the_end_is_empty() {
        let all = syncs(&["a", "b", "c", "d", "e"]);
        let (page, total) = search_page(all.clone(), "", 1, 2);
        assert_eq!((names(&page), total), (vec!["c", "d"], 5));
        let (page, total) = search_page(all.clone(), "", 2, 2);
        assert_eq!((names(&page), total), (vec!["e"], 5));
        let (page, total) = search_page(all, "", usize::MAX, 2);
        assert_eq!((page.len(), total), (0, 5));
        let counted = OffsetPage {
            rows: Vec::new(),
            total,
            page: 0,
            page_size: 2,
        };
        assert_eq!(counted.pages(), 3);
        assert_eq!(
            OffsetPage {
                total: 0,
                ..counted
            }
            .pages(),
            1
        );
    }
}
