//! `/admin/rollouts`: start a rollout, steer it by hand, and show where it
//! stands with its step's analysis and its audit trail.
//!
//! The state document lives at [`keys::rollout_state`]; every change is a
//! compare-and-swap against the bytes read, so an operator's command and a
//! gateway node advancing the rollout at the same moment never both win.
//! Every transition is appended to the audit trail.

use crate::api::{AdminResponse, rejected};
use crate::store::{ConfigStore, StoreError};
use serde_json::{Map, Value, json};
use upshift_model::analysis::judge;
use upshift_model::metrics::VersionStats;
use upshift_model::rollout::{RolloutSpec, RolloutState};
use upshift_model::store::counter;
use upshift_model::{Config, keys, rollout_log};

/// `POST /admin/rollouts`: starts the rollout `body` describes (YAML or
/// JSON), unless one is already running for its service.
pub fn start(
    store: &impl ConfigStore,
    config: &Config,
    body: &[u8],
    now_ms: u64,
) -> Result<AdminResponse, AdminResponse> {
    let text = std::str::from_utf8(body)
        .map_err(|_| AdminResponse::error(400, "malformed_rollout", "the plan is not UTF-8"))?;
    let spec = RolloutSpec::parse(text, config).map_err(|e| rejected(&e))?;
    let key = keys::rollout_state(&spec.service);
    let existing = store.get(&key)?;
    if let Some(state) = existing.as_deref().map(decode).transpose()?
        && state.is_active()
    {
        return Err(AdminResponse::error(
            409,
            "rollout_in_progress",
            format!(
                "rollout {} of {} is {}; promote or abort it first",
                state.id, state.spec.service, state.phase
            ),
        ));
    }
    let id = format!("{now_ms:x}");
    let (state, transition) = RolloutState::start(spec, id, now_ms);
    if !store.compare_and_swap(&key, existing.as_deref(), &encode(&state))? {
        return Err(AdminResponse::error(
            409,
            "rollout_changed",
            "the rollout changed while starting; try again",
        ));
    }
    rollout_log::append(store, &state.spec.service, &transition)?;
    Ok(AdminResponse::ok(201, json!({ "rollout": state })))
}

/// `POST /admin/rollouts/{service}/{pause|resume|promote|abort}`, with an
/// optional JSON body `{"reason": "…"}`.
pub fn act(
    store: &impl ConfigStore,
    service: &str,
    action: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<AdminResponse, AdminResponse> {
    if !matches!(action, "pause" | "resume" | "promote" | "abort") {
        return Err(AdminResponse::error(
            404,
            "not_found",
            format!("no rollout action {action:?}: use pause, resume, promote or abort"),
        ));
    }
    let reason = reason(body)?;
    let key = keys::rollout_state(service);
    loop {
        let bytes = store.get(&key)?.ok_or_else(|| no_rollout(service))?;
        let mut state = decode(&bytes)?;
        let changed = match action {
            "pause" => state.pause(now_ms, reason.clone()),
            "resume" => state.resume(now_ms),
            "promote" => state.promote(now_ms),
            _ => state.abort(now_ms, reason.clone()),
        };
        let transition =
            changed.map_err(|e| AdminResponse::error(409, "rollout_conflict", e.to_string()))?;
        if store.compare_and_swap(&key, Some(&bytes), &encode(&state))? {
            rollout_log::append(store, service, &transition)?;
            return Ok(AdminResponse::ok(200, json!({ "rollout": state })));
        }
    }
}

/// `GET /admin/rollouts/{service}`: the state, its weights, the current
/// step's counters per side, the last call of each webhook and the audit
/// trail.
pub fn status(store: &impl ConfigStore, service: &str) -> Result<AdminResponse, AdminResponse> {
    let bytes = store
        .get(&keys::rollout_state(service))?
        .ok_or_else(|| no_rollout(service))?;
    let state = decode(&bytes)?;
    let (stable, canary) = state.weights();
    let stable_stats = step_stats(store, &state, &state.spec.stable)?;
    let canary_stats = step_stats(store, &state, &state.spec.canary)?;
    let verdict = judge(&state, &stable_stats, &canary_stats);
    let mut step = json!({
        "stable": summary(&stable_stats),
        "canary": summary(&canary_stats),
        "analysis": { "verdict": verdict.kind(), "detail": verdict.detail() },
    });
    if state.spec.analysis.max_shadow_diff_rate.is_some() {
        step["diffs"] = diffs(store, &state)?;
    }
    let hooks: Vec<Value> = store
        .get_many(&store.keys(&keys::hook_calls_prefix(service, &state.id))?)?
        .into_iter()
        .flatten()
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    let history: Vec<Value> = store
        .get_many(&store.keys(&keys::rollout_audit_prefix(service))?)?
        .into_iter()
        .flatten()
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    Ok(AdminResponse::ok(
        200,
        json!({
            "rollout": state,
            "weights": { "stable": stable, "canary": canary },
            "step": step,
            "hooks": hooks,
            "history": history,
        }),
    ))
}

/// The current step's answer diffs: per field, the copies whose answer
/// differed there (blamed on the canary) and the times two stable answers
/// did (noise), and the sample diffs, newest first (their values were
/// redacted where secret when recorded).
fn diffs(store: &impl ConfigStore, state: &RolloutState) -> Result<Value, StoreError> {
    let prefix = keys::diff_prefix(&state.spec.service, &state.id, state.step);
    let names = store.keys(&prefix)?;
    let values = store.get_many(&names)?;
    let (mut fields, mut noise, mut samples) = (Map::new(), Map::new(), Vec::new());
    for (name, value) in names.iter().zip(values) {
        let rest = &name[prefix.len()..];
        if let Some(path) = rest.strip_prefix("fields/") {
            fields.insert(path.to_owned(), json!(counter(value.as_deref())));
        } else if let Some(path) = rest.strip_prefix("noise/") {
            noise.insert(path.to_owned(), json!(counter(value.as_deref())));
        } else if let Some(sample) = value.and_then(|v| serde_json::from_slice::<Value>(&v).ok()) {
            samples.push(sample);
        }
    }
    samples.sort_by_key(|s| std::cmp::Reverse(s["at_ms"].as_u64()));
    Ok(json!({ "fields": fields, "noise": noise, "samples": samples }))
}

/// `DELETE /admin/rollouts/{service}`: forgets a finished rollout, so the
/// config's weights rule the service again (the audit trail stays). A
/// finished rollout keeps its outcome in force until then: apply a config
/// whose weights match the outcome first.
pub fn clear(store: &impl ConfigStore, service: &str) -> Result<AdminResponse, AdminResponse> {
    let key = keys::rollout_state(service);
    let bytes = store.get(&key)?.ok_or_else(|| no_rollout(service))?;
    let state = decode(&bytes)?;
    if state.is_active() {
        return Err(AdminResponse::error(
            409,
            "rollout_in_progress",
            format!(
                "rollout {} is {}; promote or abort it first",
                state.id, state.phase
            ),
        ));
    }
    store.delete(&key)?;
    Ok(AdminResponse::ok(
        200,
        json!({ "cleared": state.id, "service": service }),
    ))
}

/// `GET /admin/rollouts`: the state of every service's latest rollout.
pub fn list(store: &impl ConfigStore) -> Result<AdminResponse, AdminResponse> {
    let keys: Vec<String> = store
        .keys("rollouts/")?
        .into_iter()
        .filter(|k| k.ends_with("/state") && k.split('/').count() == 3)
        .collect();
    let rollouts: Vec<RolloutState> = store
        .get_many(&keys)?
        .into_iter()
        .flatten()
        .map(|b| decode(&b))
        .collect::<Result<_, _>>()?;
    Ok(AdminResponse::ok(200, json!({ "rollouts": rollouts })))
}

/// Counters of `version` in the rollout's current step.
fn step_stats(
    store: &impl ConfigStore,
    state: &RolloutState,
    version: &str,
) -> Result<VersionStats, StoreError> {
    let service = &state.spec.service;
    let prefix = keys::step_metric(service, &state.id, state.step, version, "");
    let keys = store.keys(&prefix)?;
    let values = store.get_many(&keys)?;
    Ok(VersionStats::from_fields(
        keys.iter().zip(values).filter_map(|(key, value)| {
            Some((key.strip_prefix(&prefix)?, counter(value.as_deref())))
        }),
    ))
}

/// What an operator wants to see of one side of a step.
pub fn summary(stats: &VersionStats) -> Value {
    let mut summary = json!({
        "requests": stats.requests,
        "errors": stats.errors(),
        "error_rate": stats.error_rate(),
        "p50_ms": stats.quantile_ms(0.5),
        "p99_ms": stats.quantile_ms(0.99),
        "shadow_requests": stats.shadow_requests,
        "shadow_mismatches": stats.shadow_mismatches,
        "shadow_compared": stats.shadow_compared,
        "shadow_diffs": stats.shadow_diffs,
    });
    let ai = &stats.ai;
    if ai.answers > 0 {
        summary["ai"] = json!({
            "answers": ai.answers,
            "mean_ttft_ms": ai.mean_ttft_ms(),
            "tokens_per_second": ai.tokens_per_second(),
            "refusal_rate": ai.refusal_rate(),
        });
    }
    summary
}

fn reason(body: &[u8]) -> Result<String, AdminResponse> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("requested by an operator".to_owned());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        AdminResponse::error(400, "malformed_request", format!("expected JSON: {e}"))
    })?;
    Ok(value["reason"]
        .as_str()
        .unwrap_or("requested by an operator")
        .to_owned())
}

fn encode(state: &RolloutState) -> Vec<u8> {
    serde_json::to_vec(state).expect("rollout state serializes")
}

fn decode(bytes: &[u8]) -> Result<RolloutState, AdminResponse> {
    serde_json::from_slice(bytes).map_err(|e| {
        AdminResponse::error(
            500,
            "stored_rollout_unreadable",
            format!("stored rollout state: {e}"),
        )
    })
}

fn no_rollout(service: &str) -> AdminResponse {
    AdminResponse::error(
        404,
        "rollout_not_found",
        format!("no rollout was started for service {service:?}"),
    )
}

#[cfg(test)]
mod tests;
