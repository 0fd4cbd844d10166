//! Running a rollout's webhooks, the same on both lanes: the host's native
//! lane calls through its pooled client, the `gateway` component through
//! `wasi:http` (see [`Outbound`]).
//!
//! A lane runs [`run`] for a service when the splitter's selection says
//! the rollout's hooks have work (`hooks_due`), and again after a gate
//! held. One node at a time does the work, under a lease in the store
//! ([`keys::hooks_lease`]); the rest return at once. A run tells every
//! notification hook of each transition not yet told, in order, marking
//! the state's `hooked` revision as it goes, so that each is delivered
//! once; then asks the hooks of the gate the rollout waits at, and passes
//! it, holds, or rolls back as their answers and failure policies say.

use std::time::Duration;

use serde_json::{Value, json};
use upshift_model::keys;
use upshift_model::rollout::{Actor, Phase, RolloutState, Transition};
use upshift_model::rollout_log;
use upshift_model::store::{Store, StoreError};
use upshift_model::webhook::{
    DELIVERY_HEADER, FailurePolicy, HookKind, KIND_HEADER, SIGNATURE_HEADER, Webhook, signature,
};

/// Rounds of one run: each tells the new transitions or asks a gate.
const ROUNDS: usize = 8;

/// What a lane gives the runner: its HTTP client, clock and variables.
#[allow(async_fn_in_trait)]
pub trait Outbound {
    /// Posts `body` to `url` with `headers`, and waits up to `timeout` for
    /// the answer's status; the error says why there is none.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<u16, String>;
    /// Waits `duration`.
    async fn sleep(&self, duration: Duration);
    /// Unix milliseconds now.
    fn now_ms(&self) -> u64;
    /// The value of variable `name`, if set.
    async fn variable(&self, name: &str) -> Option<String>;
}

/// What a run left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Nothing left to do.
    Done,
    /// Another node holds the lease.
    Busy,
    /// A gate held, or a transition's entry was not written yet: run
    /// again after this long.
    Again(Duration),
}

/// How one call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    /// Attempts made.
    attempts: u32,
    /// The last attempt's status, or why it had none.
    answer: Result<u16, String>,
}

impl Call {
    fn passed(&self) -> bool {
        matches!(self.answer, Ok(status) if (200..300).contains(&status))
    }

    fn describe(&self) -> String {
        let tries = match self.attempts {
            1 => String::new(),
            n => format!(" after {n} attempts"),
        };
        match &self.answer {
            Ok(status) => format!("answered {status}{tries}"),
            Err(why) => format!("failed{tries}: {why}"),
        }
    }
}

/// Runs the webhooks of `service`'s rollout.
pub async fn run<S: Store + ?Sized, O: Outbound>(
    store: &S,
    out: &O,
    service: &str,
) -> Result<Ran, StoreError> {
    let Some((_, state)) = rollout_log::read(store, service)? else {
        return Ok(Ran::Done);
    };
    if !state.hooks_due() {
        return Ok(Ran::Done);
    }
    let budget = state
        .spec
        .webhooks
        .iter()
        .map(Webhook::budget)
        .fold(Duration::from_secs(1), Duration::saturating_add);
    let Some(lease) = Lease::take(store, service, out.now_ms(), budget)? else {
        return Ok(Ran::Busy);
    };
    let ran = rounds(store, out, service).await;
    let again = match &ran {
        Ok(Ran::Again(after)) => *after,
        _ => Duration::ZERO,
    };
    lease.release(store, out.now_ms(), again)?;
    ran
}

async fn rounds<S: Store + ?Sized, O: Outbound>(
    store: &S,
    out: &O,
    service: &str,
) -> Result<Ran, StoreError> {
    for _ in 0..ROUNDS {
        let Some((bytes, state)) = rollout_log::read(store, service)? else {
            return Ok(Ran::Done);
        };
        if state.spec.webhooks.is_empty() {
            return Ok(Ran::Done);
        }
        if state.hooked < state.revision {
            let told = rollout_log::since(store, &state, state.hooked)?;
            if told.is_empty() {
                return Ok(Ran::Again(Duration::from_millis(100)));
            }
            for transition in &told {
                notify(store, out, &state, transition).await?;
                mark_told(store, service, &state.id, transition.revision)?;
            }
            continue;
        }
        let Some(kind) = state.gate_kind().filter(|_| state.is_active()) else {
            return Ok(Ran::Done);
        };
        match ask(store, out, &state, kind).await? {
            Some((next, transition)) => {
                rollout_log::commit(store, &bytes, &next, Some(&transition))?;
            }
            None => return Ok(Ran::Again(state.spec.analysis.interval)),
        }
    }
    Ok(Ran::Again(Duration::ZERO))
}

/// Tells every notification hook due for `transition`.
async fn notify<S: Store + ?Sized, O: Outbound>(
    store: &S,
    out: &O,
    state: &RolloutState,
    transition: &Transition,
) -> Result<(), StoreError> {
    for hook in &state.spec.webhooks {
        if hook.kind.is_gate() || !hook.kind.notifies(transition.to_phase) {
            continue;
        }
        let body = body(state, hook, Some(transition));
        let delivery = format!("{}-{}-{}", state.id, transition.revision, hook.name);
        let call = call(out, hook, &delivery, body).await;
        record(store, out, state, hook, &delivery, &call)?;
    }
    Ok(())
}

/// Raises the state's `hooked` to `revision`, whatever else moved it
/// since.
fn mark_told<S: Store + ?Sized>(
    store: &S,
    service: &str,
    id: &str,
    revision: u64,
) -> Result<(), StoreError> {
    loop {
        let Some((bytes, mut state)) = rollout_log::read(store, service)? else {
            return Ok(());
        };
        if state.id != id || state.hooked >= revision {
            return Ok(());
        }
        state.hooked = revision;
        if rollout_log::commit(store, &bytes, &state, None)? {
            return Ok(());
        }
    }
}

/// Asks the hooks of the gate `state` waits at; returns the move their
/// answers lead to, or `None` when the gate holds.
async fn ask<S: Store + ?Sized, O: Outbound>(
    store: &S,
    out: &O,
    state: &RolloutState,
    kind: HookKind,
) -> Result<Option<(RolloutState, Transition)>, StoreError> {
    let mut passed = Vec::new();
    let mut held = Vec::new();
    let mut failed = None;
    for hook in state.hooks(kind) {
        let delivery = format!("{}-{}-{}", state.id, state.revision, hook.name);
        let call = call(out, hook, &delivery, body(state, hook, None)).await;
        record(store, out, state, hook, &delivery, &call)?;
        let said = format!("{} {}", hook.name, call.describe());
        match (call.passed(), hook.policy()) {
            (true, _) => passed.push(said),
            (false, FailurePolicy::Ignore) => passed.push(format!("{said}, ignored")),
            (false, FailurePolicy::Hold) => held.push(said),
            (false, FailurePolicy::Rollback) => {
                failed.get_or_insert(said);
            }
        }
    }
    let now_ms = out.now_ms();
    let mut next = state.clone();
    if let Some(why) = failed {
        let transition = next.transition(
            Phase::RolledBack,
            state.step,
            now_ms,
            format!("the {} hook {why}", kind.name()),
            Actor::Webhook,
        );
        return Ok(Some((next, transition)));
    }
    if !held.is_empty() {
        return Ok(None);
    }
    let why = format!("{} hooks: {}", kind.name(), passed.join("; "));
    Ok(next
        .pass_gate(now_ms, &why, Actor::Webhook)
        .map(|transition| (next, transition)))
}

/// Posts `body` to `hook`, retrying as it says.
async fn call<O: Outbound>(out: &O, hook: &Webhook, delivery: &str, body: Vec<u8>) -> Call {
    let secret = match &hook.secret_variable {
        None => None,
        Some(name) => match out.variable(name).await.filter(|v| !v.is_empty()) {
            Some(secret) => Some(secret),
            None => {
                return Call {
                    attempts: 0,
                    answer: Err(format!("its secret variable {name:?} is not set")),
                };
            }
        },
    };
    let mut attempts = 0;
    loop {
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (KIND_HEADER.to_owned(), hook.kind.name().to_owned()),
            (DELIVERY_HEADER.to_owned(), delivery.to_owned()),
        ];
        if let Some(secret) = &secret {
            let unix_s = out.now_ms() / 1000;
            headers.push((
                SIGNATURE_HEADER.to_owned(),
                signature(secret.as_bytes(), unix_s, &body),
            ));
        }
        let answer = out
            .post(&hook.url, &headers, body.clone(), hook.timeout)
            .await;
        attempts += 1;
        let retry = match &answer {
            Ok(status) => *status == 429 || *status >= 500,
            Err(_) => true,
        };
        if !retry || attempts > hook.retries {
            return Call { attempts, answer };
        }
        out.sleep(hook.backoff_before(attempts - 1)).await;
    }
}

/// Keeps the last call of `hook`, for the rollout's status.
fn record<S: Store + ?Sized, O: Outbound>(
    store: &S,
    out: &O,
    state: &RolloutState,
    hook: &Webhook,
    delivery: &str,
    call: &Call,
) -> Result<(), StoreError> {
    let entry = json!({
        "hook": hook.name,
        "type": hook.kind.name(),
        "delivery": delivery,
        "at_ms": out.now_ms(),
        "attempts": call.attempts,
        "status": call.answer.as_ref().ok(),
        "passed": call.passed(),
        "outcome": call.describe(),
    });
    store.set(
        &keys::hook_call(&state.spec.service, &state.id, &hook.name),
        entry.to_string().as_bytes(),
    )
}

/// What a hook is sent: the rollout as it stands and, for a
/// notification, the transition it tells of.
fn body(state: &RolloutState, hook: &Webhook, transition: Option<&Transition>) -> Vec<u8> {
    let (stable_weight, canary_weight) = state.weights();
    let mut body = json!({
        "type": hook.kind.name(),
        "hook": hook.name,
        "service": state.spec.service,
        "rollout": state.id,
        "revision": state.revision,
        "canary": state.spec.canary,
        "stable": state.spec.stable,
        "phase": state.phase,
        "step": state.step,
        "steps": state.spec.steps.len(),
        "weights": { "stable": stable_weight, "canary": canary_weight },
        "reason": state.reason,
        "metadata": hook.metadata,
    });
    if let Some(transition) = transition {
        body["transition"] = serde_json::to_value(transition).unwrap_or(Value::Null);
    }
    body.to_string().into_bytes()
}

/// The lease on running one service's hooks.
struct Lease {
    key: String,
    held: Vec<u8>,
}

impl Lease {
    /// Takes the lease for `budget` unless another node holds it.
    fn take<S: Store + ?Sized>(
        store: &S,
        service: &str,
        now_ms: u64,
        budget: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let key = keys::hooks_lease(service);
        let current = store.get(&key)?;
        let until = current
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .and_then(|v| v["until_ms"].as_u64())
            .unwrap_or(0);
        if until > now_ms {
            return Ok(None);
        }
        let until_ms = now_ms.saturating_add(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX));
        let held = json!({ "until_ms": until_ms }).to_string().into_bytes();
        Ok(store
            .compare_and_swap(&key, current.as_deref(), &held)?
            .then_some(Lease { key, held }))
    }

    /// Lets the next run start after `again` (at once when zero).
    fn release<S: Store + ?Sized>(
        self,
        store: &S,
        now_ms: u64,
        again: Duration,
    ) -> Result<(), StoreError> {
        let until_ms = now_ms.saturating_add(u64::try_from(again.as_millis()).unwrap_or(u64::MAX));
        let next = json!({ "until_ms": until_ms }).to_string().into_bytes();
        store.compare_and_swap(&self.key, Some(&self.held), &next)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
