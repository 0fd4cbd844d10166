//! `/admin/consumers`: consumers added to the config in force, and
//! `/admin/consumers/{name}/keys`: API keys issued to the config's
//! consumers, revoked and listed while the gateway serves. The caller sends
//! only a key's digest (`upshift key issue` makes the key and shows it
//! once), so no key ever reaches the gateway's store, logs or audit trail.
//! Every node reads the store on each request, so a revocation or an
//! expiry holds on all of them at once.

use serde::Deserialize;
use serde_json::json;
use upshift_model::token::{IssuedKey, is_digest};
use upshift_model::{Config, Consumer, keys};

use crate::api::{AdminResponse, current, load, rejected, replace_current, store_version};
use crate::store::ConfigStore;

/// What `POST /admin/consumers` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConsumer {
    name: String,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// `POST /admin/consumers`: adds the consumer `body` describes to the
/// config in force, as a new config version. Its keys are then issued
/// through `/admin/consumers/{name}/keys`.
pub fn create(store: &impl ConfigStore, body: &[u8]) -> Result<AdminResponse, AdminResponse> {
    let new: NewConsumer = serde_json::from_slice(body).map_err(|e| {
        AdminResponse::error(
            400,
            "malformed_consumer",
            format!("send {{\"name\": …, \"tenant\": …, \"tags\": […]}}: {e}"),
        )
    })?;
    let base = current(store)?;
    let mut config = load(store, base)?;
    if config.consumers.iter().any(|c| c.name == new.name) {
        return Err(AdminResponse::error(
            409,
            "consumer_exists",
            format!("the config in force has a consumer {:?} already", new.name),
        ));
    }
    config.consumers.push(Consumer {
        name: new.name.clone(),
        tenant: new.tenant,
        tags: new.tags,
        api_keys: Vec::new(),
        jwt: Vec::new(),
        rate_limit: None,
    });
    // Checked as a whole document, as an apply would be.
    let config = Config::parse(&config.to_canonical_json()).map_err(|e| rejected(&e))?;
    let version = store_version(store, &config)?;
    replace_current(store, base, version)?;
    let consumer = config.consumers.last().expect("just added");
    Ok(AdminResponse::ok(
        201,
        json!({ "version": version, "consumer": consumer }),
    ))
}

/// What `POST /admin/consumers/{name}/keys` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Issue {
    /// The key's digest: `sha256:` and 64 hex digits.
    digest: String,
    /// When the key stops working, in Unix milliseconds.
    #[serde(default)]
    expires_at_ms: Option<u64>,
}

/// `POST /admin/consumers/{name}/keys`: issues the key whose digest `body`
/// names to consumer `name` of the config in force.
pub fn issue(
    store: &impl ConfigStore,
    name: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<AdminResponse, AdminResponse> {
    let issue: Issue = serde_json::from_slice(body).map_err(|e| {
        AdminResponse::error(
            400,
            "malformed_key",
            format!("send {{\"digest\": \"sha256:<hex>\", \"expires_at_ms\": …}}: {e}"),
        )
    })?;
    if !is_digest(&issue.digest) {
        return Err(AdminResponse::error(
            400,
            "malformed_key",
            "`digest` must be `sha256:` and 64 lower-case hex digits: send the key's digest, never the key",
        ));
    }
    if issue.expires_at_ms.is_some_and(|at| at <= now_ms) {
        return Err(AdminResponse::error(
            400,
            "malformed_key",
            "`expires_at_ms` is in the past",
        ));
    }
    known_consumer(store, name)?;
    let record_key = keys::issued_key(&issue.digest);
    if store.get(&record_key)?.is_some() {
        return Err(AdminResponse::error(
            409,
            "key_exists",
            "this key is issued already",
        ));
    }
    let record = IssuedKey {
        id: IssuedKey::id_of(&issue.digest),
        consumer: name.to_owned(),
        created_at_ms: now_ms,
        expires_at_ms: issue.expires_at_ms,
    };
    let bytes = serde_json::to_vec(&record).expect("records serialize");
    // The index first: a key that works can always be found and revoked.
    store.set(
        &keys::consumer_key(name, &record.id),
        issue.digest.as_bytes(),
    )?;
    store.set(&record_key, &bytes)?;
    Ok(AdminResponse::ok(201, json!(record)))
}

/// `GET /admin/consumers/{name}/keys`: the keys issued to `name`.
pub fn list(store: &impl ConfigStore, name: &str) -> Result<AdminResponse, AdminResponse> {
    let mut issued = Vec::new();
    for index in store.keys(&keys::consumer_keys_prefix(name))? {
        if let Some(record) = record_at(store, &index)? {
            issued.push(record);
        }
    }
    Ok(AdminResponse::ok(
        200,
        json!({ "consumer": name, "keys": issued }),
    ))
}

/// `DELETE /admin/consumers/{name}/keys/{id}`: revokes a key of `name`.
pub fn revoke(
    store: &impl ConfigStore,
    name: &str,
    id: &str,
) -> Result<AdminResponse, AdminResponse> {
    let index = keys::consumer_key(name, id);
    let Some(digest) = store.get(&index)? else {
        return Err(AdminResponse::error(
            404,
            "key_not_found",
            format!("consumer {name:?} has no key {id:?}"),
        ));
    };
    let digest = String::from_utf8_lossy(&digest).into_owned();
    // The record first: from here on the key works nowhere.
    store.delete(&keys::issued_key(&digest))?;
    store.delete(&index)?;
    Ok(AdminResponse::ok(
        200,
        json!({ "consumer": name, "id": id, "revoked": true }),
    ))
}

/// Fails unless the config in force has a consumer `name`.
fn known_consumer(store: &impl ConfigStore, name: &str) -> Result<(), AdminResponse> {
    let config = load(store, current(store)?)?;
    if config.consumers.iter().any(|c| c.name == name) {
        Ok(())
    } else {
        Err(AdminResponse::error(
            404,
            "consumer_not_found",
            format!("the config in force has no consumer {name:?}"),
        ))
    }
}

/// The issued key whose digest `index` holds, if it is still issued.
fn record_at(store: &impl ConfigStore, index: &str) -> Result<Option<IssuedKey>, AdminResponse> {
    let Some(digest) = store.get(index)? else {
        return Ok(None);
    };
    let digest = String::from_utf8_lossy(&digest).into_owned();
    let Some(bytes) = store.get(&keys::issued_key(&digest))? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AdminResponse::error(500, "store_unreadable", format!("{index}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AdminRequest, handle};
    use upshift_model::store::{MemoryStore, Store as _};
    use upshift_model::token::{Access, digest};

    fn request<'a>(method: &'a str, path: &'a str, body: &'a [u8]) -> AdminRequest<'a> {
        AdminRequest {
            method,
            path,
            body,
            access: Access::Full,
            now_ms: 1_000,
        }
    }

    #[test]
    fn keys_are_issued_listed_and_revoked_by_their_digest() {
        let store = MemoryStore::default();
        let config = "services: [{ name: s, versions: [{ name: v, targets: [{ url: 'http://a' }] }] }]\n\
                      routes: [{ name: r, service: s }]\n\
                      consumers: [{ name: bob }]";
        assert_eq!(
            handle(&request("PUT", "/admin/config", config.as_bytes()), &store).status,
            201
        );
        let key_digest = digest("upk_secret");
        let body = json!({ "digest": key_digest, "expires_at_ms": 5_000 }).to_string();
        let issued = handle(
            &request("POST", "/admin/consumers/bob/keys", body.as_bytes()),
            &store,
        );
        assert_eq!(issued.status, 201, "{}", issued.body);
        let id = issued.body["id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 16);
        let stored: IssuedKey =
            serde_json::from_slice(&store.get(&keys::issued_key(&key_digest)).unwrap().unwrap())
                .unwrap();
        assert!(stored.is_live(4_999) && !stored.is_live(5_000));
        let again = handle(
            &request("POST", "/admin/consumers/bob/keys", body.as_bytes()),
            &store,
        );
        assert_eq!(again.status, 409);

        let listed = handle(&request("GET", "/admin/consumers/bob/keys", b""), &store);
        assert_eq!(listed.body["keys"][0]["id"], id.as_str());
        let path = format!("/admin/consumers/bob/keys/{id}");
        assert_eq!(handle(&request("DELETE", &path, b""), &store).status, 200);
        assert!(store.get(&keys::issued_key(&key_digest)).unwrap().is_none());
        assert_eq!(handle(&request("DELETE", &path, b""), &store).status, 404);

        // Only digests, only consumers of the config.
        for (path, body, status) in [
            (
                "/admin/consumers/bob/keys",
                json!({ "digest": "upk_secret" }),
                400,
            ),
            (
                "/admin/consumers/eve/keys",
                json!({ "digest": digest("k2") }),
                404,
            ),
            (
                "/admin/consumers/bob/keys",
                json!({ "digest": digest("k3"), "expires_at_ms": 10 }),
                400,
            ),
        ] {
            let body = body.to_string();
            let refused = handle(&request("POST", path, body.as_bytes()), &store);
            assert_eq!(refused.status, status, "{}", refused.body);
        }
    }

    #[test]
    fn consumers_are_added_as_a_new_config_version() {
        let store = MemoryStore::default();
        let create = |body: serde_json::Value| {
            let body = body.to_string();
            handle(
                &request("POST", "/admin/consumers", body.as_bytes()),
                &store,
            )
        };
        assert_eq!(
            create(json!({ "name": "carol" })).status,
            404,
            "no config yet"
        );
        let config = "services: [{ name: s, versions: [{ name: v, targets: [{ url: 'http://a' }] }] }]\n\
                      routes: [{ name: r, service: s, auth: { api_key: {} }, access: { allow: { consumers: [bob] } } }]\n\
                      consumers: [{ name: bob }]";
        let applied = handle(&request("PUT", "/admin/config", config.as_bytes()), &store);
        assert_eq!(applied.status, 201, "{}", applied.body);
        let created = create(json!({ "name": "carol", "tenant": "acme", "tags": ["beta"] }));
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body["version"], 2);
        assert_eq!(created.body["consumer"]["tenant"], "acme");
        let shown = handle(&request("GET", "/admin/config", b""), &store);
        assert_eq!(shown.body["version"], 2);
        assert_eq!(shown.body["config"]["consumers"][1]["name"], "carol");
        assert_eq!(
            shown.body["config"]["routes"][0]["access"]["allow"]["consumers"][0], "bob",
            "the rest of the config stays as it was"
        );
        let again = create(json!({ "name": "carol" }));
        assert_eq!(
            (again.status, again.body["error"]["code"].as_str()),
            (409, Some("consumer_exists"))
        );
        let invalid = create(json!({ "name": "" }));
        assert_eq!(invalid.status, 422, "{}", invalid.body);
        assert_eq!(create(json!({ "nom": "dave" })).status, 400);
    }
}
