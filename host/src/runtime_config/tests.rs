//! Tests of the runtime config file.

use super::*;

fn parse(text: &str) -> Result<RuntimeConfig, (String, String)> {
    RuntimeConfig::parse(text, Path::new("/etc/upshift"))
}

#[test]
fn reads_redis_and_embedded_stores() {
    let config = parse(
        r#"
            [key_value_store.default]
            type = "redis"
            url = "redis://127.0.0.1:6379/2"

            [key_value_store.cache]
            type = "spin"
            path = "cache.redb"

            [key_value_store.local]
            type = "spin"
            "#,
    )
    .unwrap();
    assert_eq!(
        config.key_value_stores["default"],
        StoreConfig::Redis {
            url: "redis://127.0.0.1:6379/2".into()
        }
    );
    assert_eq!(
        config.key_value_stores["cache"],
        StoreConfig::Embedded {
            path: Some("/etc/upshift/cache.redb".into())
        }
    );
    assert_eq!(
        config.key_value_stores["local"],
        StoreConfig::Embedded { path: None }
    );
    assert_eq!(parse("").unwrap(), RuntimeConfig::default());
}

#[test]
fn absolute_paths_stay_as_they_are() {
    let config =
        parse("[key_value_store.a]\ntype = \"spin\"\npath = \"/var/lib/a.redb\"\n").unwrap();
    assert_eq!(
        config.key_value_stores["a"],
        StoreConfig::Embedded {
            path: Some("/var/lib/a.redb".into())
        }
    );
}

#[test]
fn unknown_store_types_are_named() {
    let (field, message) =
        parse("[key_value_store.default]\ntype = \"azure_cosmos\"\n").unwrap_err();
    assert_eq!(field, "key_value_store.default.type");
    assert!(
        message.contains("unknown store type `azure_cosmos`"),
        "{message}"
    );
    assert!(message.contains("`redis` or `spin`"), "{message}");
}

#[test]
fn a_redis_store_needs_a_valid_url() {
    let (field, message) = parse("[key_value_store.default]\ntype = \"redis\"\n").unwrap_err();
    assert_eq!(field, "key_value_store.default.url");
    assert!(message.contains("missing"), "{message}");

    let (field, message) =
        parse("[key_value_store.default]\ntype = \"redis\"\nurl = \"http://x\"\n").unwrap_err();
    assert_eq!(field, "key_value_store.default.url");
    assert!(message.contains("redis://"), "{message}");

    let (field, message) =
        parse("[key_value_store.default]\ntype = \"redis\"\nurl = 6379\n").unwrap_err();
    assert_eq!(field, "key_value_store.default.url");
    assert!(message.contains("must be a string"), "{message}");
}

#[test]
fn unknown_fields_and_sections_are_named() {
    let (field, message) = parse(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://h\"\npassword = \"x\"\n",
    )
    .unwrap_err();
    assert_eq!(field, "key_value_store.default.password");
    assert!(message.contains("expected `type`, `url`"), "{message}");

    let (field, message) = parse("[key_value_store.default]\npath = \"a\"\n").unwrap_err();
    assert_eq!(field, "key_value_store.default.type");
    assert!(message.contains("missing"), "{message}");

    let (field, message) = parse("[sqlite_database.default]\ntype = \"spin\"\n").unwrap_err();
    assert_eq!(field, "sqlite_database");
    assert!(message.contains("not supported"), "{message}");

    let (field, message) = parse("key_value_store = 1\n").unwrap_err();
    assert_eq!(field, "key_value_store");
    assert!(message.contains("table"), "{message}");

    let (field, message) = parse("[key_value_store\n").unwrap_err();
    assert_eq!(field, "");
    assert!(message.contains("TOML"), "{message}");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("runtime-config.toml");
    std::fs::write(&file, "[key_value_store.default]\ntype = \"mongo\"\n").unwrap();
    let error = RuntimeConfig::load(&file).unwrap_err().to_string();
    assert!(error.contains(&file.display().to_string()), "{error}");
    assert!(error.contains("`key_value_store.default.type`"), "{error}");

    let missing = dir.path().join("missing.toml");
    let error = RuntimeConfig::load(&missing).unwrap_err().to_string();
    assert!(
        error.contains("missing.toml") && error.contains("cannot be read"),
        "{error}"
    );

    std::fs::write(
        &file,
        "[key_value_store.c]\ntype = \"spin\"\npath = \"c.redb\"\n",
    )
    .unwrap();
    assert_eq!(
        RuntimeConfig::load(&file).unwrap().key_value_stores["c"],
        StoreConfig::Embedded {
            path: Some(dir.path().join("c.redb"))
        }
    );
}

#[test]
fn reads_client_tls_tables() {
    let config = parse(
        r#"
            [[client_tls]]
            component_ids = ["gateway"]
            hosts = ["payments.internal:8443", "ledger"]
            ca_roots_file = "certs/ca.pem"
            ca_use_webpki_roots = false

            [[client_tls]]
            component_ids = ["gateway", "admin"]
            hosts = ["api.example.com"]
            client_cert_file = "certs/gateway.pem"
            client_private_key_file = "/keys/gateway.key"
            "#,
    )
    .unwrap();
    assert_eq!(
        config.client_tls,
        [
            ClientTls {
                component_ids: vec!["gateway".into()],
                hosts: vec!["payments.internal:8443".into(), "ledger".into()],
                use_webpki_roots: false,
                ca_roots_file: Some("/etc/upshift/certs/ca.pem".into()),
                client_identity: None,
            },
            ClientTls {
                component_ids: vec!["gateway".into(), "admin".into()],
                hosts: vec!["api.example.com".into()],
                use_webpki_roots: true,
                ca_roots_file: None,
                client_identity: Some(ClientIdentity {
                    cert_file: "/etc/upshift/certs/gateway.pem".into(),
                    private_key_file: "/keys/gateway.key".into(),
                }),
            },
        ]
    );
}

#[test]
fn client_tls_problems_are_named() {
    let case = |text: &str| parse(text).unwrap_err();
    let (field, message) = case(
        "[[client_tls]]\ncomponent_ids = [\"gateway\"]\nhosts = [\"a\"]\nclient_cert_file = \"c.pem\"\n",
    );
    assert_eq!(field, "client_tls[0].client_private_key_file");
    assert!(message.contains("needs its key"), "{message}");
    let (field, message) = case("[[client_tls]]\nhosts = [\"a\"]\n");
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("client_tls[0].component_ids", "is missing")
    );
    let (field, _) = case("[[client_tls]]\ncomponent_ids = [\"g\"]\nhosts = []\n");
    assert_eq!(field, "client_tls[0].hosts");
    let (field, _) = case(
        "[[client_tls]]\ncomponent_ids = [\"g\"]\nhosts = [\"a\"]\nca_use_webpki_roots = \"no\"\n",
    );
    assert_eq!(field, "client_tls[0].ca_use_webpki_roots");
    let (field, _) = case("[client_tls]\ncomponent_ids = [\"g\"]\n");
    assert_eq!(field, "client_tls");
}
