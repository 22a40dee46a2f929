//! Config administration: search with paging, export to and import from the Nacos ZIP layout.

use super::config::make_key;
use super::config::ConfigService;
use super::config::Page;
use super::config::PublishOptions;
use super::config_zip;
use super::config_zip::ZipConfig;
use super::config_zip::ZipLimits;
use super::DomainError;
use super::ReadConsistency;
use crate::state_machine::command::ConfigItem;
use crate::state_machine::command::ConfigKey;
use crate::state_machine::command::ConfigMeta;
use crate::state_machine::config_store;

use super::config::MAX_PAGE_SIZE;

/// What a search filters on; empty fields match everything.
#[derive(Debug, Default, Clone)]
pub struct ConfigFilter {
    pub namespace: Option<String>,
    pub data_id: String,
    pub group: String,
    pub app_name: String,
    /// Comma-separated; a config matches when it carries any of them.
    pub tags: String,
    /// `search=blur`: `*` in dataId/group is a wildcard. Otherwise names match exactly.
    pub blur: bool,
    /// Export's `dataIds`: an explicit list (exact names).
    pub data_ids: Vec<String>,
}

/// Whole-string glob with `*` only (any run of characters), as Nacos' blur search treats its
/// input and its permission resources (`*` → `.*`) are matched.
pub fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl ConfigFilter {
    fn name_matches(&self, pattern: &str, value: &str) -> bool {
        pattern.is_empty() || if self.blur { glob(pattern, value) } else { pattern == value }
    }

    pub fn matches(&self, key: &ConfigKey, item: &ConfigItem) -> bool {
        self.name_matches(&self.data_id, &key.data_id)
            && self.name_matches(&self.group, &key.group)
            && (self.app_name.is_empty() || self.app_name == item.meta.app_name)
            && (self.data_ids.is_empty() || self.data_ids.iter().any(|d| d == &key.data_id))
            && (self.tags.trim().is_empty() || {
                let have: Vec<&str> = item.meta.tags.split(',').map(str::trim).collect();
                self.tags.split(',').map(str::trim).filter(|t| !t.is_empty()).any(|t| have.contains(&t))
            })
    }
}

/// Import conflict policy (Nacos `policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPolicy {
    /// Keep an existing config (the default).
    Skip,
    Overwrite,
    /// Import nothing when any config exists already.
    Abort,
}

impl ImportPolicy {
    pub fn parse(s: Option<&str>) -> Result<ImportPolicy, DomainError> {
        match s.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
            None | Some("") | Some("SKIP") => Ok(ImportPolicy::Skip),
            Some("OVERWRITE") => Ok(ImportPolicy::Overwrite),
            Some("ABORT") => Ok(ImportPolicy::Abort),
            Some(other) => Err(DomainError::Invalid(format!("unknown policy {other}: use SKIP, OVERWRITE or ABORT"))),
        }
    }
}

/// The reply of an import, in Nacos' shape.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    pub success_count: usize,
    pub skip_count: usize,
    pub fail_count: usize,
    pub fail_data: Vec<ImportFailure>,
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportFailure {
    pub data_id: String,
    pub group: String,
    pub reason: String,
}

impl ConfigService {
    /// Configs matching `f`, one page (`page_no` from 1), in key order.
    pub async fn search(
        &self,
        f: &ConfigFilter,
        page_no: usize,
        page_size: usize,
        consistency: ReadConsistency,
    ) -> Result<Page<(ConfigKey, ConfigItem)>, DomainError> {
        let all = self.matching(f, consistency).await?;
        let page_no = page_no.max(1);
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let total = all.len();
        let items = all.into_iter().skip((page_no - 1) * page_size).take(page_size).collect();
        Ok(Page { total, page_no, page_size, items })
    }

    async fn matching(
        &self,
        f: &ConfigFilter,
        consistency: ReadConsistency,
    ) -> Result<Vec<(ConfigKey, ConfigItem)>, DomainError> {
        if consistency == ReadConsistency::Linearizable {
            self.node().linearizable_barrier().await?;
        }
        let ns = f.namespace.as_deref().map(|n| super::config::normalize_namespace(Some(n)));
        let all = config_store::list(&self.node().sm.db(), ns.as_deref())?;
        Ok(all.into_iter().filter(|(k, item)| f.matches(k, item)).collect())
    }

    /// A ZIP of every config matching `f`, in the layout `config_zip` documents.
    pub async fn export_zip(&self, f: &ConfigFilter) -> Result<Vec<u8>, DomainError> {
        let items: Vec<ZipConfig> = self
            .matching(f, ReadConsistency::Local)
            .await?
            .into_iter()
            .map(|(k, item)| ZipConfig {
                data_id: k.data_id,
                group: k.group,
                namespace_id: k.namespace,
                content: item.content,
                content_type: item.meta.config_type,
                app_name: item.meta.app_name,
                desc: item.meta.desc,
                config_tags: item.meta.tags,
                md5: item.md5,
                create_time_ms: item.create_time_ms,
                modify_time_ms: item.modify_time_ms,
            })
            .collect();
        config_zip::export(&items).map_err(|e| DomainError::Invalid(e.to_string()))
    }

    /// Imports a ZIP into `namespace`. Each config is written atomically through Raft on its
    /// own; the import as a whole is not one transaction (as in Nacos). SKIP is decided at apply
    /// time (a create-only write), so a config created concurrently is never overwritten;
    /// ABORT checks every key first and writes nothing when one exists.
    pub async fn import_zip(
        &self,
        namespace: Option<&str>,
        bytes: &[u8],
        policy: ImportPolicy,
        src_user: &str,
        src_ip: &str,
    ) -> Result<ImportResult, DomainError> {
        let limits = ZipLimits {
            max_entries: 20_000,
            max_entry_bytes: self.max_content() as u64,
            max_total_bytes: 64 * 1024 * 1024,
        };
        let (items, bad) = config_zip::import(bytes, &limits).map_err(|e| DomainError::Invalid(e.to_string()))?;
        let mut res = ImportResult::default();
        for (entry, reason) in bad {
            res.fail_data.push(ImportFailure { data_id: entry, group: String::new(), reason });
        }
        self.import_items(namespace, items, res, policy, src_user, src_ip).await
    }

    /// Imports configs already decoded (from a ZIP, or from Consul's KV JSON) into `namespace`,
    /// adding to `res` (which may already hold decoding failures).
    pub async fn import_items(
        &self,
        namespace: Option<&str>,
        items: Vec<ZipConfig>,
        mut res: ImportResult,
        policy: ImportPolicy,
        src_user: &str,
        src_ip: &str,
    ) -> Result<ImportResult, DomainError> {
        let mut valid = Vec::new();
        for it in items {
            match make_key(namespace, Some(&it.group), Some(&it.data_id)) {
                Ok(k) if !it.content.is_empty() => valid.push((k, it)),
                Ok(_) => res.fail_data.push(fail(&it, "empty content".into())),
                Err(e) => res.fail_data.push(fail(&it, e.to_string())),
            }
        }
        if policy == ImportPolicy::Abort {
            let existing: Vec<ImportFailure> = valid
                .iter()
                .filter(|(k, _)| self.node().sm.config_md5(k).is_some())
                .map(|(_, it)| fail(it, "config exists (policy ABORT)".into()))
                .collect();
            if !existing.is_empty() {
                res.skip_count = valid.len() - existing.len();
                res.fail_data.extend(existing);
                res.fail_count = res.fail_data.len();
                return Ok(res);
            }
        }
        for (key, it) in valid {
            let opts = PublishOptions {
                meta: ConfigMeta {
                    config_type: it.content_type.clone(),
                    app_name: it.app_name.clone(),
                    desc: it.desc.clone(),
                    tags: it.config_tags.clone(),
                    encrypted_data_key: String::new(),
                    src_user: src_user.to_string(),
                    src_ip: src_ip.to_string(),
                },
                cas_md5: None,
                create_only: policy != ImportPolicy::Overwrite,
            };
            match self.publish(key, it.content.clone(), opts).await {
                Ok(_) => res.success_count += 1,
                Err(DomainError::Conflict(_)) if policy == ImportPolicy::Skip => res.skip_count += 1,
                Err(e) => res.fail_data.push(fail(&it, e.to_string())),
            }
        }
        res.fail_count = res.fail_data.len();
        Ok(res)
    }
}

fn fail(it: &ZipConfig, reason: String) -> ImportFailure {
    ImportFailure { data_id: it.data_id.clone(), group: it.group.clone(), reason }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn blur_patterns() {
        assert!(glob("*", "anything"));
        assert!(glob("app*", "app.yaml"));
        assert!(glob("*.yaml", "app.yaml"));
        assert!(glob("*pp.ya*", "app.yaml"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXcYb"));
        assert!(!glob("app", "app.yaml"), "without a star the name must match exactly");
        assert!(!glob("ab*ba", "aba"), "prefix and suffix must not overlap");
    }
}
