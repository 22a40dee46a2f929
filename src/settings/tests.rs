//! Unit tests of settings loading and cluster.conf parsing.
use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Base64 of 32 bytes: auth is on by default and needs a key.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn parse(text: &str) -> Result<Settings, SettingsError> {
    parse_text(text, "app.yml", &env(&[("BATATA_AUTH_SECRET_KEY", KEY)]))
}

#[test]
fn defaults_without_file_are_standalone() {
    // parse_text, not load: a developer's conf/application.yml must not change the result.
    let s = parse_text("", NO_FILE, &env(&[("BATATA_AUTH_SECRET_KEY", KEY)])).unwrap();
    assert!(s.auth_enabled, "auth is on by default");
    assert_eq!((s.server_port, s.sdk_port, s.cluster_port, s.consul_port), (8848, 9848, 9849, 8500));
    assert_eq!(s.context_path, "/nacos");
    assert_eq!(s.lookup_type, LookupType::Standalone);
    assert_eq!(s.raft.election_timeout_max_ms, 1000);
    assert_eq!(s.max_body_bytes, 10_485_760);
    assert!(s.members().unwrap().is_empty());
    assert!(s.warnings.is_empty());
}

#[test]
fn missing_explicit_file_is_an_error_naming_it() {
    let p = std::env::temp_dir().join(format!("batata-missing-{}.yml", std::process::id()));
    let e = load_with_env(Some(&p), &HashMap::new()).unwrap_err().to_string();
    assert!(e.contains(&p.display().to_string()), "{e}");
}

#[test]
fn nested_flat_and_mixed_keys() {
    let s = parse(
        "nacos:\n  server:\n    main:\n      port: 1111\n  server.context-path: /api\n\
                   nacos.sdk.port: \"2222\"\ndatacenter: {role: learner, locality-weight: 0.5}\n\
                   cluster:\n  members:\n    - 10.0.0.1:8848\n    - 10.0.0.2:8848\n",
    )
    .unwrap();
    assert_eq!((s.server_port, s.sdk_port, s.cluster_port), (1111, 2222, 2112), "cluster port follows the main port");
    assert_eq!(s.context_path, "/api");
    assert_eq!(s.datacenter.role, NodeRole::Learner);
    assert_eq!(s.datacenter.locality_weight, 0.5);
    assert_eq!(s.cluster_members, vec!["10.0.0.1:8848", "10.0.0.2:8848"]);
}

#[test]
fn env_alias_beats_generic_beats_file() {
    let text = "nacos.server.main.port: 1000\nraft.heartbeat-interval-ms: 50\n";
    let e = env(&[
        ("BATATA_NACOS_SERVER_MAIN_PORT", "2000"),
        ("BATATA_RAFT_HEARTBEAT_INTERVAL_MS", "60"),
        ("BATATA_CLUSTER_MEMBERS", "a:1, b:2"),
        ("BATATA_AUTH_ENABLED", "TRUE"),
        ("BATATA_RAFT_API_BATCH_LINGER_MS", "2"),
        ("BATATA_AUTH_SECRET_KEY", KEY),
    ]);
    let s = parse_text(text, "f", &e).unwrap();
    assert_eq!((s.server_port, s.raft.heartbeat_interval_ms, s.raft.api_batch_linger_ms), (2000, 60, 2));
    assert_eq!(s.cluster_members, vec!["a:1", "b:2"]);
    assert!(s.auth_enabled);
    let mut e2 = e.clone();
    e2.insert("BATATA_SERVER_PORT".into(), "3000".into());
    assert_eq!(parse_text(text, "f", &e2).unwrap().server_port, 3000);
}

#[test]
fn bad_values_name_file_line_and_key() {
    let e = parse("# comment\nnacos:\n  server:\n    main:\n      port: abc\n").unwrap_err().to_string();
    assert_eq!(e, "app.yml:5: nacos.server.main.port: expected a port number 1-65535, got \"abc\"");
    let e = parse("nacos:\n  sdk.port: 70000\n").unwrap_err().to_string();
    assert!(e.starts_with("app.yml:2: nacos.sdk.port:"), "{e}");
    let e = parse("raft:\n  election-timeout-min-ms: 50\n").unwrap_err().to_string();
    assert!(e.starts_with("app.yml:2: raft.election-timeout-min-ms:"), "{e}");
    let e = parse("\nraft:\n  heartbeat-interval-ms: 600\n").unwrap_err().to_string();
    assert!(e.starts_with("app.yml:3: raft.heartbeat-interval-ms:"), "{e}");
    let e = parse_text("", "f", &env(&[("BATATA_SERVER_PORT", "0"), ("BATATA_AUTH_SECRET_KEY", KEY)]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("BATATA_SERVER_PORT") && e.contains("nacos.server.main.port"), "{e}");
    assert_eq!(parse("consul.port: 0\n").unwrap().consul_bind_addr(), None);
    assert!(parse("nacos.cluster.secret: short\n").is_err());
    assert!(parse("db.url: postgres://x\n").is_err());
    assert!(parse("otel.sampling-ratio: 1.5\n").is_err());
    assert!(parse("nacos.server.context-path: /nacos/\n").is_err());
    assert!(parse("nacos.sdk.port: 8848\n").unwrap_err().to_string().contains("already used"));
}

#[test]
fn enums_and_unknown_keys() {
    let e = parse("deployment:\n  type: everything\n").unwrap_err().to_string();
    assert!(e.starts_with("app.yml:2: deployment.type: expected one of \"all\""), "{e}");
    let e = parse("cluster.member.lookup.type: address-server\n").unwrap_err().to_string();
    assert!(e.contains("not supported"), "{e}");
    let s = parse("nacos:\n  server:\n    mian.port: 1\n").unwrap();
    assert_eq!(s.warnings, vec!["app.yml:3: unknown key `nacos.server.mian.port` ignored"]);
}

#[test]
fn yaml_syntax_error_names_line() {
    let e = parse("nacos:\n  server: [1, 2\nother: 1\n").unwrap_err();
    assert!(matches!(e, SettingsError::Syntax { line: Some(_), .. }), "{e}");
    assert!(e.to_string().starts_with("app.yml:"), "{e}");
}

#[test]
fn cluster_conf_parsing() {
    let text = "# members\n10.0.0.1:8848\n\n10.0.0.2:8850 raft_port=7000  # trailing\n[::1]:8848\nnode-3.local:1\n";
    let m = parse_cluster_conf(text, "cluster.conf", 8848).unwrap();
    assert_eq!(m[0], Member { host: "10.0.0.1".into(), port: 8848, raft_port: 9849 });
    assert_eq!(m[1].raft_addr(), "10.0.0.2:7000");
    assert_eq!((m[2].http_addr(), m[2].raft_addr()), ("[::1]:8848".into(), "[::1]:9849".into()));
    assert_eq!(m[3].host, "node-3.local");
    let e = parse_cluster_conf("a:1\n\n10.0.0.1\n", "c.conf", 8848).unwrap_err().to_string();
    assert!(e.starts_with("c.conf:3: \"10.0.0.1\" is not host:port"), "{e}");
    let e = parse_cluster_conf("a:1\nb:2\na:1\n", "c.conf", 8848).unwrap_err().to_string();
    assert!(e.starts_with("c.conf:3: duplicate member a:1 (already listed on line 1)"), "{e}");
    assert!(parse_cluster_conf("# none\n", "c.conf", 8848).is_err());
    assert!(parse_cluster_conf("::1:8848\n", "c.conf", 8848).is_err());
    assert!(parse_cluster_conf("a:65000\n", "c.conf", 8848).is_err());
    assert!(parse_cluster_conf("a:1 raft=2\n", "c.conf", 8848).is_err());
}

#[test]
fn members_from_file_or_list() {
    let path = std::env::temp_dir().join(format!("batata-cluster-{}.conf", std::process::id()));
    let mut s = parse("cluster.member.lookup.type: file\ncluster.members: [\"h:1\"]\n").unwrap();
    s.cluster_conf_path = path.clone();
    assert_eq!(s.members().unwrap()[0].http_addr(), "h:1");
    std::fs::write(&path, "x:5\ny:6\n").unwrap();
    let m = s.members();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(m.unwrap().len(), 2);
    s.cluster_members.clear();
    assert!(s.members().is_err());
    let e = parse("cluster:\n  members:\n    - nope\n").unwrap_err().to_string();
    assert!(e.starts_with("app.yml:2: cluster.members: entry 1:"), "{e}");
}

#[test]
fn auth_on_needs_an_own_secret_key() {
    let e = parse_text("", "f", &HashMap::new()).unwrap_err().to_string();
    assert!(e.contains("nacos.core.auth.plugin.nacos.token.secret.key") && e.contains("required"), "{e}");
    for published in KNOWN_NACOS_KEYS {
        let e = parse_text("", "f", &env(&[("BATATA_AUTH_SECRET_KEY", published)])).unwrap_err().to_string();
        assert!(e.contains("published by Nacos"), "{e}");
    }
    let e = parse_text("", "f", &env(&[("BATATA_AUTH_SECRET_KEY", "c2hvcnQ=")])).unwrap_err().to_string();
    assert!(e.contains("at least 32 bytes"), "{e}");
    let off = parse_text("nacos.core.auth.enabled: false\n", "f", &HashMap::new()).unwrap();
    assert!(!off.auth_enabled && off.auth_secret_key.is_none());
    assert_eq!(parse("consul.acl.default-policy: allow\n").unwrap().consul_acl_default_policy, AclDefault::Allow);
}
