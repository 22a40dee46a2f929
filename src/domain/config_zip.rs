//! ZIP codec for Nacos config export/import: `GROUP/DATAID` holds the content as stored and
//! `GROUP/DATAID.meta` its metadata as YAML.
//!
//! Pure bytes-in/bytes-out on purpose: nothing here touches the filesystem, so a hostile entry name
//! can at worst become a failure report. Uploads are untrusted, hence the strict path rules and
//! the decompression caps measured on the bytes actually inflated, never on the headers' claims.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

const META_SUFFIX: &str = ".meta";
/// Root metadata files of Nacos's own v1/v2 exports; their `GROUP/DATAID` entries still import.
const LEGACY_ROOT_META: [&str; 2] = [".meta.yml", ".metadata.yml"];
/// What Nacos assumes for a config whose type nobody recorded.
const DEFAULT_CONTENT_TYPE: &str = "text";

/// One config as exported / imported.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZipConfig {
    pub data_id: String,
    pub group: String,
    /// Informational on import: the caller chooses the target namespace.
    pub namespace_id: String,
    pub content: String,
    pub content_type: String,
    pub app_name: String,
    pub desc: String,
    pub config_tags: String,
    /// As recorded in the archive (empty without a `.meta`); the caller recomputes it on write.
    pub md5: String,
    pub create_time_ms: u64,
    pub modify_time_ms: u64,
}

/// Caps on an untrusted upload, checked against what is actually decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    pub max_entries: usize,
    pub max_entry_bytes: u64,
    pub max_total_bytes: u64,
}

/// Why a whole archive was refused (per-entry problems are reported, not raised).
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("not a ZIP archive: {0}")]
    NotZip(#[source] zip::result::ZipError),
    #[error("archive has {count} entries, more than the limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },
    #[error("entry {entry:?} decompresses to more than {limit} bytes")]
    EntryTooLarge { entry: String, limit: u64 },
    #[error("archive decompresses to more than {limit} bytes in total (limit reached at entry {entry:?})")]
    TotalTooLarge { entry: String, limit: u64 },
    /// Corrupt, encrypted or unsupported compression: importing the rest would silently drop it.
    #[error("cannot read entry {entry:?}: {reason}")]
    Unreadable { entry: String, reason: zip::result::ZipError },
    #[error("cannot export {group}/{data_id}: {reason}")]
    Unexportable { group: String, data_id: String, reason: String },
    #[error("cannot write the archive: {0}")]
    Write(#[source] zip::result::ZipError),
}

/// The `.meta` document. Every field is optional on read so hand-written or partial files
/// still import; on write every key is filled in.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    data_id: Option<String>,
    group: Option<String>,
    namespace_id: Option<String>,
    content_type: Option<String>,
    app_name: Option<String>,
    desc: Option<String>,
    config_tags: Option<String>,
    md5: Option<String>,
    create_time: Option<u64>,
    modify_time: Option<u64>,
}

impl From<&ZipConfig> for Meta {
    fn from(c: &ZipConfig) -> Self {
        Meta {
            data_id: Some(c.data_id.clone()),
            group: Some(c.group.clone()),
            namespace_id: Some(c.namespace_id.clone()),
            content_type: Some(c.content_type.clone()),
            app_name: Some(c.app_name.clone()),
            desc: Some(c.desc.clone()),
            config_tags: Some(c.config_tags.clone()),
            md5: Some(c.md5.clone()),
            create_time: Some(c.create_time_ms),
            modify_time: Some(c.modify_time_ms),
        }
    }
}

/// An entry that did not become a config: (entry path or dataId, reason).
pub type EntryFailure = (String, String);

/// Fails rather than writing an archive that would not import back to exactly `items`.
pub fn export(items: &[ZipConfig]) -> Result<Vec<u8>, ZipError> {
    let mut sorted: Vec<&ZipConfig> = items.iter().collect();
    sorted.sort_by(|a, b| (&a.group, &a.data_id).cmp(&(&b.group, &b.data_id)));
    let unexportable = |c: &ZipConfig, reason: &str| ZipError::Unexportable {
        group: c.group.clone(),
        data_id: c.data_id.clone(),
        reason: reason.to_string(),
    };
    if let Some(pair) = sorted.windows(2).find(|p| (&p[0].group, &p[0].data_id) == (&p[1].group, &p[1].data_id)) {
        return Err(unexportable(pair[0], "it appears twice"));
    }
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for item in sorted {
        // Refuse what import would read back differently, rather than write a lossy archive.
        let path = format!("{}/{}", item.group, item.data_id);
        split_path(&path).map_err(|reason| unexportable(item, &reason))?;
        if item.data_id.ends_with(META_SUFFIX) {
            return Err(unexportable(item, "a dataId ending in .meta would be read back as metadata"));
        }
        let meta = serde_yaml_ng::to_string(&Meta::from(item)).map_err(|e| unexportable(item, &e.to_string()))?;
        for (name, body) in [(path.clone(), &item.content), (format!("{path}{META_SUFFIX}"), &meta)] {
            writer.start_file(name, options).map_err(ZipError::Write)?;
            writer.write_all(body.as_bytes()).map_err(|e| ZipError::Write(e.into()))?;
        }
    }
    Ok(writer.finish().map_err(ZipError::Write)?.into_inner())
}

/// Entries that could not be turned into a config (bad path, missing content, invalid utf-8, bad meta) are
/// returned in the second vec as (entry path / dataId, reason) rather than failing the whole archive.
pub fn import(bytes: &[u8], limits: &ZipLimits) -> Result<(Vec<ZipConfig>, Vec<EntryFailure>), ZipError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(ZipError::NotZip)?;
    if archive.len() > limits.max_entries {
        return Err(ZipError::TooManyEntries { count: archive.len(), limit: limits.max_entries });
    }
    // Keyed by (group, dataId) so the output comes out in export order.
    type Entries = BTreeMap<(String, String), (String, Vec<u8>)>;
    let (mut contents, mut metas): (Entries, Entries) = Default::default();
    let mut failures = Vec::new();
    let mut total = 0u64;
    for index in 0..archive.len() {
        let entry =
            archive.name_for_index(index).and_then(Result::ok).map_or_else(|| format!("#{index}"), String::from);
        let mut file = archive.by_index(index).map_err(|reason| ZipError::Unreadable { entry, reason })?;
        let Ok(name) = file.name().map(|n| n.into_owned()) else {
            failures.push((String::from_utf8_lossy(file.name_raw()).into_owned(), "entry name is not text".into()));
            continue;
        };
        if file.is_dir() || LEGACY_ROOT_META.contains(&name.as_str()) {
            continue;
        }
        let parsed = split_path(&name).and_then(|(group, file_name)| match file_name.strip_suffix(META_SUFFIX) {
            _ if file.is_symlink() => Err("symbolic links are not configs".to_string()),
            Some("") => Err("metadata for an empty dataId".to_string()),
            Some(data_id) => Ok(((group, data_id.to_string()), true)),
            None => Ok(((group, file_name), false)),
        });
        let (key, target) = match parsed {
            Ok((key, is_meta)) => (key, if is_meta { &mut metas } else { &mut contents }),
            Err(reason) => {
                failures.push((name, reason));
                continue;
            }
        };
        if target.contains_key(&key) {
            failures.push((name, "duplicate entry".into()));
            continue;
        }
        let data = read_capped(&mut file, &name, limits, &mut total)?;
        target.insert(key, (name, data));
    }
    let mut configs = Vec::with_capacity(contents.len());
    for ((group, data_id), (path, raw)) in contents {
        let meta = metas.remove(&(group.clone(), data_id.clone()));
        match build(group, data_id, path, raw, meta) {
            Ok(config) => configs.push(config),
            Err(failure) => failures.push(failure),
        }
    }
    for ((group, data_id), (path, _)) in metas {
        failures.push((path, format!("metadata without its content entry {group}/{data_id}")));
    }
    Ok((configs, failures))
}

/// Reads one entry, stopping one byte past the cap so a lying header or a bomb costs at most the cap.
fn read_capped(file: &mut impl Read, entry: &str, limits: &ZipLimits, total: &mut u64) -> Result<Vec<u8>, ZipError> {
    let remaining = limits.max_total_bytes.saturating_sub(*total);
    let cap = limits.max_entry_bytes.min(remaining);
    let mut data = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| ZipError::Unreadable { entry: entry.to_string(), reason: e.into() })?;
    let len = data.len() as u64;
    if len > limits.max_entry_bytes {
        return Err(ZipError::EntryTooLarge { entry: entry.to_string(), limit: limits.max_entry_bytes });
    }
    if len > remaining {
        return Err(ZipError::TotalTooLarge { entry: entry.to_string(), limit: limits.max_total_bytes });
    }
    *total += len;
    Ok(data)
}

/// Accepts exactly `GROUP/NAME`; anything that could mean another place (zip-slip, absolute,
/// Windows separators) is refused even though we never extract, so callers can't be surprised later.
fn split_path(path: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = path.split('/').collect();
    let problem = [
        (path.contains('\\'), "backslash in entry path"),
        (path.starts_with('/'), "absolute entry path"),
        (path.contains('\0'), "NUL byte in entry path"),
        (parts.contains(&".."), "'..' in entry path"),
        (parts.len() != 2, "entry path is not exactly GROUP/DATAID"),
        (parts.iter().any(|p| p.is_empty() || *p == "."), "empty or '.' component in entry path"),
    ]
    .into_iter()
    .find_map(|(bad, why)| bad.then_some(why));
    match (problem, parts.as_slice()) {
        (None, [group, name]) => Ok((group.to_string(), name.to_string())),
        (problem, _) => Err(problem.unwrap_or("entry path is not exactly GROUP/DATAID").to_string()),
    }
}

fn build(
    group: String,
    data_id: String,
    path: String,
    raw: Vec<u8>,
    meta: Option<(String, Vec<u8>)>,
) -> Result<ZipConfig, (String, String)> {
    let content = String::from_utf8(raw).map_err(|_| (path, "content is not valid UTF-8".to_string()))?;
    let (meta_path, meta_raw) = meta.unwrap_or_default();
    let fail = |reason: String| (meta_path.clone(), reason);
    let text = std::str::from_utf8(&meta_raw).map_err(|_| fail("metadata is not valid UTF-8".into()))?;
    let meta: Meta = serde_yaml_ng::from_str(text).map_err(|e| fail(format!("invalid metadata: {e}")))?;
    for (key, recorded, actual) in [("dataId", &meta.data_id, &data_id), ("group", &meta.group, &group)] {
        if let Some(recorded) = recorded.as_ref().filter(|r| *r != actual) {
            return Err(fail(format!("metadata {key} {recorded:?} does not match the entry path's {actual:?}")));
        }
    }
    Ok(ZipConfig {
        data_id,
        group,
        namespace_id: meta.namespace_id.unwrap_or_default(),
        content,
        content_type: meta.content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.into()),
        app_name: meta.app_name.unwrap_or_default(),
        desc: meta.desc.unwrap_or_default(),
        config_tags: meta.config_tags.unwrap_or_default(),
        md5: meta.md5.unwrap_or_default(),
        create_time_ms: meta.create_time.unwrap_or_default(),
        modify_time_ms: meta.modify_time.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ZipLimits = ZipLimits { max_entries: 100, max_entry_bytes: 64 * 1024, max_total_bytes: 256 * 1024 };

    fn cfg(group: &str, data_id: &str, content: &str) -> ZipConfig {
        let (data_id, group, content) = (data_id.into(), group.into(), content.into());
        ZipConfig { data_id, group, content, content_type: DEFAULT_CONTENT_TYPE.into(), ..Default::default() }
    }

    /// An archive with arbitrary names and bodies, as a hostile uploader could craft it.
    fn raw_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, body) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(body).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn paths(failures: &[(String, String)]) -> Vec<&str> {
        failures.iter().map(|(path, _)| path.as_str()).collect()
    }

    #[test]
    fn round_trip_preserves_every_field() {
        let full = ZipConfig {
            data_id: "app.yaml".into(),
            group: "DEFAULT_GROUP".into(),
            namespace_id: "public".into(),
            content: "server:\n  port: 8080\nname: 应用 ✓\n".into(),
            content_type: "yaml".into(),
            app_name: "my-app".into(),
            desc: "应用配置: 'quoted' \"and\" #not-a-comment".into(),
            config_tags: "env:prod,team:backend".into(),
            md5: "0123456789".into(),
            create_time_ms: 1_704_067_200_000,
            modify_time_ms: u64::MAX,
        };
        let empty = ZipConfig { data_id: "empty".into(), group: "G".into(), ..Default::default() };
        let unicode_names = cfg("组", "配置.json", "{}");
        let items = vec![unicode_names, full, empty];
        let (imported, failures) = import(&export(&items).unwrap(), &LIMITS).unwrap();
        assert_eq!(failures, vec![]);
        let mut expected = items.clone();
        expected.sort_by(|a, b| (&a.group, &a.data_id).cmp(&(&b.group, &b.data_id)));
        assert_eq!(imported, expected);
        assert_eq!(import(&export(&[]).unwrap(), &LIMITS).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn export_is_sorted_deflated_and_writes_every_meta_key() {
        let bytes =
            export(&[cfg("MY_GROUP", "b", "1"), cfg("DEFAULT_GROUP", "z", "2"), cfg("MY_GROUP", "a", "3")]).unwrap();
        let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<String> = archive.file_names().map(|n| n.unwrap().into()).collect();
        assert_eq!(
            names.join(" "),
            "DEFAULT_GROUP/z DEFAULT_GROUP/z.meta MY_GROUP/a MY_GROUP/a.meta MY_GROUP/b MY_GROUP/b.meta"
        );
        let mut meta = String::new();
        let mut file = archive.by_name("MY_GROUP/a.meta").unwrap();
        assert_eq!(file.compression(), CompressionMethod::Deflated);
        file.read_to_string(&mut meta).unwrap();
        let doc: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(&meta).unwrap();
        let keys: Vec<&str> = doc.keys().filter_map(|k| k.as_str()).collect();
        assert_eq!(
            keys.join(","),
            "dataId,group,namespaceId,contentType,appName,desc,configTags,md5,createTime,modifyTime"
        );
        assert!(doc["createTime"].is_u64() && doc["modifyTime"].is_u64());
    }

    #[test]
    fn meta_is_optional_legacy_files_ignored_and_mismatch_fails_only_that_entry() {
        let bytes = raw_zip(&[
            (".meta.yml", b"G.plain.app=x"),
            (".metadata.yml", b"metadata: []"),
            ("G/", b""),
            ("G/plain", b"a=1"),
            ("G/blank", b"z"),
            ("G/blank.meta", b""),
            ("G/ok", b"x"),
            ("G/ok.meta", b"appName: svc\ndesc: ~\n"),
            ("G/wrong-id", b"y"),
            ("G/wrong-id.meta", b"dataId: other\n"),
            ("G/wrong-group", b"y"),
            ("G/wrong-group.meta", b"group: H\n"),
        ]);
        let (configs, failures) = import(&bytes, &LIMITS).unwrap();
        assert_eq!(
            configs,
            vec![
                cfg("G", "blank", "z"),
                ZipConfig { app_name: "svc".into(), ..cfg("G", "ok", "x") },
                cfg("G", "plain", "a=1")
            ]
        );
        assert_eq!(paths(&failures), ["G/wrong-group.meta", "G/wrong-id.meta"]);
        assert!(failures[1].1.contains("dataId \"other\""), "{failures:?}");
    }

    #[test]
    fn bad_entries_are_reported_not_fatal() {
        let bytes = raw_zip(&[
            ("G/bin", b"\xff\xfe"),
            ("G/bad-meta", b"ok"),
            ("G/bad-meta.meta", b"createTime: [not, a, number]"),
            ("G/orphan.meta", b"dataId: orphan"),
            ("G/.meta", b""),
            ("G/good", b"fine"),
        ]);
        let (configs, failures) = import(&bytes, &LIMITS).unwrap();
        assert_eq!(configs, vec![cfg("G", "good", "fine")]);
        assert_eq!(paths(&failures), ["G/.meta", "G/bad-meta.meta", "G/bin", "G/orphan.meta"]);
        assert!(failures[3].1.contains("without its content entry G/orphan"));
    }

    #[test]
    fn unsafe_paths_go_to_failures_only() {
        let hostile =
            ["../evil", "/etc/passwd", "G/../../x", "G\\x", "..\\..\\x", "a/b/c", "single", "./x", "G/.", "/G"];
        let entries: Vec<(&str, &[u8])> = hostile.iter().map(|n| (*n, b"pwned".as_slice())).collect();
        let (configs, failures) = import(&raw_zip(&entries), &LIMITS).unwrap();
        assert_eq!(configs, vec![]);
        assert_eq!(paths(&failures), entries.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        assert_eq!(split_path("../evil").unwrap_err(), "'..' in entry path");
        assert_eq!(split_path("/etc/passwd").unwrap_err(), "absolute entry path");
        assert_eq!(split_path("G\\x").unwrap_err(), "backslash in entry path");
    }

    #[test]
    fn entry_bomb_is_capped_on_actual_bytes_not_header() {
        let bomb = vec![0u8; 1024 * 1024];
        let mut bytes = raw_zip(&[("G/bomb", &bomb)]);
        let err = import(&bytes, &LIMITS).unwrap_err();
        assert!(matches!(&err, ZipError::EntryTooLarge { entry, .. } if entry == "G/bomb"), "{err}");
        assert!(err.to_string().contains("G/bomb"));
        // Claim 16 bytes in the local header (offset 22) and the central directory (offset 24).
        bytes[22..26].copy_from_slice(&16u32.to_le_bytes());
        let central = bytes.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
        bytes[central + 24..central + 28].copy_from_slice(&16u32.to_le_bytes());
        // zip itself notices the overrun; either way nothing past the cap is buffered.
        let err = import(&bytes, &LIMITS).unwrap_err();
        let named = |entry: &String| entry == "G/bomb";
        assert!(
            matches!(&err, ZipError::Unreadable { entry, .. } | ZipError::EntryTooLarge { entry, .. } if named(entry))
        );
        // Our own cap needs no header at all: an endless stream stops one byte past it.
        let mut total = 0;
        let err = read_capped(&mut std::io::repeat(0), "G/endless", &LIMITS, &mut total).unwrap_err();
        assert!(matches!(err, ZipError::EntryTooLarge { limit, .. } if limit == LIMITS.max_entry_bytes));
        assert_eq!(total, 0);
    }

    #[test]
    fn total_bomb_and_entry_count() {
        let chunk = vec![b'x'; 60 * 1024];
        let names: Vec<String> = (0..5).map(|i| format!("G/c{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), chunk.as_slice())).collect();
        let err = import(&raw_zip(&entries), &LIMITS).unwrap_err();
        assert!(matches!(&err, ZipError::TotalTooLarge { entry, .. } if entry == "G/c4"), "{err}");
        let tight = ZipLimits { max_entries: 4, ..LIMITS };
        let err = import(&raw_zip(&entries), &tight).unwrap_err();
        assert!(matches!(err, ZipError::TooManyEntries { count: 5, limit: 4 }), "{err}");
    }

    #[test]
    fn non_zip_input_is_a_clear_error() {
        for input in [&b""[..], b"dataId: app.yaml\n", b"PK\x03\x04garbage"] {
            let err = import(input, &LIMITS).unwrap_err();
            assert!(err.to_string().starts_with("not a ZIP archive"), "{err}");
        }
    }

    #[test]
    fn export_refuses_what_cannot_round_trip() {
        for (group, data_id) in [("G", "a/b"), ("G", "x.meta"), ("", "x"), ("G", ".."), ("G\\H", "x")] {
            let err = export(&[cfg(group, data_id, "")]).unwrap_err();
            assert!(matches!(err, ZipError::Unexportable { .. }), "{group}/{data_id}: {err}");
        }
        let err = export(&[cfg("G", "a", "1"), cfg("G", "a", "2")]).unwrap_err();
        assert_eq!(err.to_string(), "cannot export G/a: it appears twice");
    }
}
