//! The key-by-key loader: flattens the YAML tree to dotted keys, applies environment
//! overrides and converts values, remembering where each came from so errors can name it.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use serde_yaml_ng::Value;

use super::at;
use super::SettingsError;

/// Where a key's effective value came from, so errors point at the right place.
pub(super) enum Origin {
    File,
    Env(String),
}

pub(super) struct Loader<'a> {
    pub(super) file: &'a str,
    pub(super) env: &'a HashMap<String, String>,
    /// dotted key path -> 1-based line, from [`key_lines`].
    pub(super) lines: HashMap<String, usize>,
    /// normalised dotted key -> leaf value (scalars and sequences).
    pub(super) values: BTreeMap<String, Value>,
    pub(super) used: HashSet<String>,
    pub(super) origins: HashMap<String, Origin>,
    pub(super) warnings: Vec<String>,
}

impl Loader<'_> {
    pub(super) fn flatten(&mut self, prefix: &str, v: &Value) {
        match v {
            Value::Mapping(m) => {
                for (k, child) in m {
                    let k = match k {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            self.warnings.push(format!(
                                "{}{}: non-scalar key under `{prefix}` ignored",
                                self.file,
                                at(&self.line_of(prefix))
                            ));
                            continue;
                        }
                    };
                    let path = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                    self.flatten(&path, child);
                }
            }
            Value::Tagged(t) => self.flatten(prefix, &t.value),
            Value::Null => {}
            leaf => {
                if self.values.insert(prefix.to_string(), leaf.clone()).is_some() {
                    self.warnings.push(format!(
                        "{}{}: key `{prefix}` given more than once; the later value wins",
                        self.file,
                        at(&self.line_of(prefix))
                    ));
                }
            }
        }
    }

    /// Line of `key`, else of its longest known prefix (covers flow-style mappings).
    pub(super) fn line_of(&self, key: &str) -> Option<usize> {
        let mut k = key;
        loop {
            if let Some(l) = self.lines.get(k) {
                return Some(*l);
            }
            k = &k[..k.rfind('.')?];
        }
    }

    /// Overwrites `field` from, in order of preference, the named env alias, the generic
    /// `BATATA_*` env var or the file; leaves the default when none is set. Empty env
    /// values count as unset so `BATATA_X=` in a compose file is harmless.
    pub(super) fn set<T>(
        &mut self,
        field: &mut T,
        key: &str,
        alias: &str,
        conv: fn(&Value) -> Result<T, String>,
    ) -> Result<(), SettingsError> {
        self.used.insert(key.to_string());
        let from_env = [alias.to_string(), generic_env(key)].into_iter().find_map(|var| {
            let v = self.env.get(&var).filter(|v| !v.trim().is_empty())?;
            Some((Value::String(v.clone()), Origin::Env(var)))
        });
        let found = from_env.or_else(|| Some((self.values.get(key)?.clone(), Origin::File)));
        let Some((value, origin)) = found else {
            return Ok(());
        };
        self.origins.insert(key.to_string(), origin);
        *field = conv(&value).map_err(|m| self.err(key, m))?;
        Ok(())
    }

    pub(super) fn err(&self, key: &str, message: String) -> SettingsError {
        match self.origins.get(key) {
            Some(Origin::Env(var)) => SettingsError::Env { var: var.clone(), key: key.into(), message },
            Some(Origin::File) => {
                let line = self.line_of(key);
                SettingsError::Invalid { file: self.file.into(), line, key: key.into(), message }
            }
            // Not set anywhere (a default broke a cross-field rule): no line to point at.
            None => SettingsError::Invalid { file: self.file.into(), line: None, key: key.into(), message },
        }
    }
}

/// `nacos.server.main-port` -> `BATATA_NACOS_SERVER_MAIN_PORT`.
pub(super) fn generic_env(key: &str) -> String {
    format!("BATATA_{}", key.to_ascii_uppercase().replace(['.', '-'], "_"))
}

/// Scans block-style YAML and maps each key's full dotted path to its 1-based line,
/// because serde_yaml_ng's `Value` keeps no positions.
pub(super) fn key_lines(text: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut block_scalar_of: Option<usize> = None;
    for (idx, raw) in text.lines().enumerate() {
        let body = raw.trim_start_matches(' ');
        let indent = raw.len() - body.len();
        let body = body.trim_end();
        if let Some(owner) = block_scalar_of {
            if body.is_empty() || indent > owner {
                continue;
            }
            block_scalar_of = None;
        }
        if body.is_empty() || body.starts_with(['#', '-', '{', '[', '?']) || body.starts_with("...") {
            continue;
        }
        let Some((key, rest)) = split_key(body) else {
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path = stack.iter().map(|(_, k)| k.as_str()).chain([key.as_str()]).collect::<Vec<_>>().join(".");
        out.insert(path, idx + 1);
        if rest.starts_with(['|', '>']) {
            block_scalar_of = Some(indent);
        }
        stack.push((indent, key));
    }
    out
}

/// Splits `key: rest` (key possibly quoted); None if the line holds no mapping key.
pub(super) fn split_key(line: &str) -> Option<(String, &str)> {
    let (key, after) = match line.chars().next()? {
        q @ ('"' | '\'') => {
            let end = line[1..].find(q)? + 1;
            (line[1..end].to_string(), line[end + 1..].trim_start())
        }
        _ => {
            let pos = line
                .match_indices(':')
                .map(|(i, _)| i)
                .find(|&i| line[i + 1..].is_empty() || line[i + 1..].starts_with([' ', '\t']))?;
            if line[..pos].contains(" #") {
                return None;
            }
            (line[..pos].trim_end().to_string(), &line[pos..])
        }
    };
    let rest = after.strip_prefix(':')?.trim_start();
    Some((key, if rest.starts_with('#') { "" } else { rest }))
}

pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Sequence(_) => "a list".into(),
        _ => "a mapping".into(),
    }
}

pub(super) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn to_u64(v: &Value) -> Result<u64, String> {
    scalar_text(v)
        .filter(|_| !matches!(v, Value::Bool(_)))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("expected a non-negative integer, got {}", describe(v)))
}

pub(super) fn to_u32(v: &Value) -> Result<u32, String> {
    u32::try_from(to_u64(v)?).map_err(|_| format!("{} is too large", describe(v)))
}

pub(super) fn to_usize(v: &Value) -> Result<usize, String> {
    usize::try_from(to_u64(v)?).map_err(|_| format!("{} is too large", describe(v)))
}

pub(super) fn to_port(v: &Value) -> Result<u16, String> {
    port_in(v, 1)
}

pub(super) fn to_port_or_zero(v: &Value) -> Result<u16, String> {
    port_in(v, 0)
}

pub(super) fn port_in(v: &Value, lo: u16) -> Result<u16, String> {
    to_u64(v)
        .ok()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|p| *p >= lo)
        .ok_or_else(|| format!("expected a port number {lo}-65535, got {}", describe(v)))
}

pub(super) fn to_f64(v: &Value) -> Result<f64, String> {
    scalar_text(v)
        .filter(|_| !matches!(v, Value::Bool(_)))
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|f| f.is_finite())
        .ok_or_else(|| format!("expected a number, got {}", describe(v)))
}

pub(super) fn to_bool(v: &Value) -> Result<bool, String> {
    match scalar_text(v).map(|t| t.to_ascii_lowercase()).as_deref() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(format!("expected true or false, got {}", describe(v))),
    }
}

pub(super) fn to_string(v: &Value) -> Result<String, String> {
    scalar_text(v).ok_or_else(|| format!("expected a string, got {}", describe(v)))
}

/// Empty string means "not set", so a file can blank out an optional value.
pub(super) fn to_opt_string(v: &Value) -> Result<Option<String>, String> {
    to_string(v).map(|s| Some(s).filter(|s| !s.is_empty()))
}

pub(super) fn to_path(v: &Value) -> Result<PathBuf, String> {
    to_string(v).map(PathBuf::from)
}

pub(super) fn to_ip(v: &Value) -> Result<IpAddr, String> {
    to_string(v)?.parse().map_err(|_| format!("expected an IP address, got {}", describe(v)))
}

pub(super) fn to_parsed<T: std::str::FromStr<Err = String>>(v: &Value) -> Result<T, String> {
    to_string(v)?.parse()
}

/// A YAML list of scalars, or one comma-separated string (the env var form).
pub(super) fn to_list(v: &Value) -> Result<Vec<String>, String> {
    let items = match v {
        Value::Sequence(seq) => seq
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| format!("list items must be strings, got {}", describe(i))))
            .collect::<Result<Vec<_>, _>>()?,
        _ => to_string(v)?.split(',').map(str::to_string).collect(),
    };
    Ok(items.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}
