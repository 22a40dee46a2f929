//! `cluster.conf` and `cluster.members`: the member list for `cluster.member.lookup.type: file`.

use std::net::Ipv6Addr;

use super::SettingsError;

pub(super) fn non_empty(members: Vec<Member>, file: &str) -> Result<Vec<Member>, SettingsError> {
    if members.is_empty() {
        return Err(SettingsError::ClusterConf {
            file: file.into(),
            line: None,
            message: "no cluster members listed (lookup type \"file\" needs at least one host:port)".into(),
        });
    }
    Ok(members)
}

/// One cluster node. `host` is stored without IPv6 brackets; the `*_addr` helpers add them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub host: String,
    pub port: u16,
    pub raft_port: u16,
}

impl Member {
    fn join(&self, port: u16) -> String {
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }
    pub fn raft_addr(&self) -> String {
        self.join(self.raft_port)
    }
    pub fn http_addr(&self) -> String {
        self.join(self.port)
    }
}

/// Parses `cluster.conf`. `default_main_port` is only used to suggest a fix for
/// port-less lines; a port is required so every node agrees on the member list.
pub fn parse_cluster_conf(text: &str, file: &str, default_main_port: u16) -> Result<Vec<Member>, SettingsError> {
    non_empty(conf_members(text, file, default_main_port)?, file)
}

/// Like [`parse_cluster_conf`] but an empty list is not an error.
pub(super) fn conf_members(text: &str, file: &str, default_port: u16) -> Result<Vec<Member>, SettingsError> {
    let lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    parse_entries(lines, default_port, "line").map_err(|(line, message)| SettingsError::ClusterConf {
        file: file.into(),
        line: Some(line),
        message,
    })
}

/// Parses numbered entries, rejecting duplicates; errors carry the entry number.
pub(super) fn parse_entries<'a>(
    entries: impl Iterator<Item = (usize, &'a str)>,
    default_port: u16,
    unit: &str,
) -> Result<Vec<Member>, (usize, String)> {
    let mut out: Vec<(usize, Member)> = Vec::new();
    for (n, raw) in entries {
        let entry = raw.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let m = parse_member(entry, default_port).map_err(|e| (n, e))?;
        if let Some((first, _)) =
            out.iter().find(|(_, o)| o.http_addr() == m.http_addr() || o.raft_addr() == m.raft_addr())
        {
            return Err((n, format!("duplicate member {} (already listed on {unit} {first})", m.http_addr())));
        }
        out.push((n, m));
    }
    Ok(out.into_iter().map(|(_, m)| m).collect())
}

pub(super) fn parse_list(items: &[String], default_port: u16) -> Result<Vec<Member>, String> {
    parse_entries(items.iter().enumerate().map(|(i, s)| (i + 1, s.as_str())), default_port, "entry")
        .map_err(|(n, e)| format!("entry {n}: {e}"))
}

pub(super) fn parse_member(entry: &str, default_port: u16) -> Result<Member, String> {
    let mut tokens = entry.split_whitespace();
    let addr = tokens.next().unwrap_or("");
    let not_host_port = || format!("{addr:?} is not host:port (e.g. {addr}:{default_port})");
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(not_host_port)?;
        h.parse::<Ipv6Addr>().map_err(|_| format!("{h:?} is not an IPv6 address"))?;
        (h, p)
    } else {
        let (h, p) = addr.rsplit_once(':').ok_or_else(not_host_port)?;
        if h.contains(':') {
            return Err(format!("{addr:?}: IPv6 hosts must be written in brackets, e.g. [::1]:{default_port}"));
        }
        if h.is_empty() || !h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
            return Err(format!("{h:?} is not a valid host name or address"));
        }
        (h, p)
    };
    let port = member_port(port).ok_or_else(|| format!("{port:?} is not a port number 1-65535"))?;
    let mut raft_port = None;
    for tok in tokens {
        let v = tok.strip_prefix("raft_port=").ok_or_else(|| format!("unexpected {tok:?} (expected raft_port=N)"))?;
        raft_port = Some(member_port(v).ok_or_else(|| format!("raft_port {v:?} is not a port number 1-65535"))?);
    }
    let raft_port = match raft_port {
        Some(p) => p,
        None => port.checked_add(1001).ok_or_else(|| {
            format!("default raft_port (port + 1001) overflows for port {port}; give raft_port=N explicitly")
        })?,
    };
    Ok(Member { host: host.to_string(), port, raft_port })
}

pub(super) fn member_port(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|p| *p != 0)
}
