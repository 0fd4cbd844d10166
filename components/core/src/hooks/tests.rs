use super::*;
use futures::executor::block_on;
use std::cell::RefCell;
use std::collections::VecDeque;
use upshift_model::Config;
use upshift_model::rollout::{Gate, RolloutSpec};
use upshift_model::store::MemoryStore;
use upshift_model::webhook::verify;

const T0: u64 = 1_800_000_000_000;

/// A post the script took: URL, headers and body.
type Post = (String, Vec<(String, String)>, Value);

/// A receiver answering from a script (then 200), and a clock that
/// stands still.
#[derive(Default)]
struct Script {
    answers: RefCell<VecDeque<Result<u16, String>>>,
    posts: RefCell<Vec<Post>>,
    slept: RefCell<Vec<Duration>>,
}

impl Script {
    fn answering(answers: &[Result<u16, &str>]) -> Script {
        let script = Script::default();
        script
            .answers
            .replace(answers.iter().map(|a| a.map_err(str::to_owned)).collect());
        script
    }

    /// `(hook, transition revision or gate)` of each post.
    fn calls(&self) -> Vec<String> {
        self.posts
            .borrow()
            .iter()
            .map(|(_, _, body)| {
                format!(
                    "{} {}",
                    body["hook"].as_str().unwrap(),
                    body["transition"]["to_phase"].as_str().unwrap_or("gate")
                )
            })
            .collect()
    }
}

impl Outbound for Script {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        _timeout: Duration,
    ) -> Result<u16, String> {
        self.posts.borrow_mut().push((
            url.to_owned(),
            headers.to_vec(),
            serde_json::from_slice(&body).unwrap(),
        ));
        self.answers.borrow_mut().pop_front().unwrap_or(Ok(200))
    }

    async fn sleep(&self, duration: Duration) {
        self.slept.borrow_mut().push(duration);
    }

    fn now_ms(&self) -> u64 {
        T0
    }

    async fn variable(&self, name: &str) -> Option<String> {
        (name == "hook_key").then(|| "s3cret".to_owned())
    }
}

fn start(store: &MemoryStore, steps: &str, hooks: &str) -> RolloutState {
    let config = Config::parse(
        "services: [{name: s, versions: [{name: v1, targets: [{url: 'http://127.0.0.1:1'}]}, \
         {name: v2, targets: [{url: 'http://127.0.0.1:2'}]}]}]\n\
         routes: [{name: r, service: s}]",
    )
    .unwrap();
    let spec = RolloutSpec::parse(
        &format!("{{service: s, canary: v2, steps: {steps}, webhooks: {hooks}}}"),
        &config,
    )
    .unwrap();
    let (state, started) = RolloutState::start(spec, "r1", T0);
    store
        .set(
            &keys::rollout_state("s"),
            &serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
    rollout_log::append(store, "s", &started).unwrap();
    state
}

fn state(store: &MemoryStore) -> RolloutState {
    rollout_log::read(store, "s").unwrap().unwrap().1
}

/// Moves the stored rollout as `change` says, as the splitter would.
fn moved(store: &MemoryStore, change: impl FnOnce(&mut RolloutState) -> Transition) {
    let (bytes, mut state) = rollout_log::read(store, "s").unwrap().unwrap();
    let transition = change(&mut state);
    assert!(rollout_log::commit(store, &bytes, &state, Some(&transition)).unwrap());
}

#[test]
fn notifications_are_signed_and_delivered_once_in_order() {
    let store = MemoryStore::default();
    start(
        &store,
        "[{weight: 10}]",
        "[{name: all, type: event, url: 'http://127.0.0.1:9/e', secret_variable: hook_key},
          {name: back, type: rollback, url: 'http://127.0.0.1:9/r'}]",
    );
    moved(&store, |s| s.abort(T0 + 1, "bad build").unwrap());
    let out = Script::default();
    assert_eq!(block_on(run(&store, &out, "s")).unwrap(), Ran::Done);
    assert_eq!(
        out.calls(),
        ["all progressing", "all aborted", "back aborted"]
    );
    assert_eq!(state(&store).hooked, 2);

    let posts = out.posts.borrow();
    let (url, headers, body) = &posts[1];
    assert_eq!(url, "http://127.0.0.1:9/e");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(DELIVERY_HEADER).as_deref(), Some("r1-2-all"));
    let signed = header(SIGNATURE_HEADER).unwrap();
    assert_eq!(
        verify(b"s3cret", &signed, body.to_string().as_bytes()),
        Some(T0 / 1000)
    );
    assert_eq!(body["transition"]["reason"], "bad build");
    assert!(
        posts[2].1.iter().all(|(n, _)| n != SIGNATURE_HEADER),
        "no secret, no signature"
    );
    drop(posts);

    // Nothing is told twice.
    let again = Script::default();
    assert_eq!(block_on(run(&store, &again, "s")).unwrap(), Ran::Done);
    assert!(again.calls().is_empty());
}

#[test]
fn a_confirm_gate_holds_until_its_hook_answers_2xx() {
    let store = MemoryStore::default();
    start(
        &store,
        "[{weight: 10}, {weight: 50}]",
        "[{name: ok, type: confirm_step, url: 'http://127.0.0.1:9/c'}]",
    );
    moved(&store, |s| {
        let t = s.transition(Phase::Progressing, 0, T0, "passed", Actor::Auto);
        s.awaiting = Some(Gate::Confirm);
        t
    });
    let out = Script::answering(&[Err("refused"), Err("refused"), Err("refused"), Ok(403)]);
    let ran = block_on(run(&store, &out, "s")).unwrap();
    assert_eq!(ran, Ran::Again(Duration::from_secs(1)));
    assert_eq!(out.calls(), ["ok gate", "ok gate", "ok gate"]);
    assert_eq!(
        *out.slept.borrow(),
        [Duration::from_millis(200), Duration::from_millis(400)]
    );
    let held = state(&store);
    assert_eq!((held.step, held.awaiting), (0, Some(Gate::Confirm)));
    let call: Value = serde_json::from_slice(
        &store
            .get(&keys::hook_call("s", "r1", "ok"))
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(call["outcome"], "failed after 3 attempts: refused");

    // The lease keeps every node from asking again before the interval.
    assert_eq!(block_on(run(&store, &out, "s")).unwrap(), Ran::Busy);
    store.delete(&keys::hooks_lease("s")).unwrap();
    // A 4xx is an answer: no retry.
    assert_eq!(
        block_on(run(&store, &out, "s")).unwrap(),
        Ran::Again(Duration::from_secs(1))
    );
    assert_eq!(out.calls().len(), 4);
    store.delete(&keys::hooks_lease("s")).unwrap();
    assert_eq!(block_on(run(&store, &out, "s")).unwrap(), Ran::Done);
    let passed = state(&store);
    assert_eq!((passed.step, passed.awaiting), (1, None));
    assert!(
        passed
            .reason
            .starts_with("step 1 of 2 confirmed (confirm_step hooks: ok answered 200)"),
        "{}",
        passed.reason
    );
}

#[test]
fn a_failed_pre_rollout_hook_rolls_back_and_ignore_passes() {
    let store = MemoryStore::default();
    start(
        &store,
        "[{weight: 10}]",
        "[{name: smoke, type: pre_rollout, url: 'http://127.0.0.1:9/p', retries: 0},
          {name: lax, type: pre_rollout, url: 'http://127.0.0.1:9/l', failure_policy: ignore}]",
    );
    let out = Script::answering(&[Ok(500), Ok(404)]);
    assert_eq!(block_on(run(&store, &out, "s")).unwrap(), Ran::Done);
    let rolled_back = state(&store);
    assert_eq!(rolled_back.phase, Phase::RolledBack);
    assert_eq!(
        rolled_back.reason,
        "the pre_rollout hook smoke answered 500"
    );

    let store = MemoryStore::default();
    start(
        &store,
        "[{weight: 10}]",
        "[{name: lax, type: pre_rollout, url: 'http://127.0.0.1:9/l', failure_policy: ignore}]",
    );
    let out = Script::answering(&[Ok(404)]);
    assert_eq!(block_on(run(&store, &out, "s")).unwrap(), Ran::Done);
    let started = state(&store);
    assert_eq!(
        (started.phase, started.awaiting),
        (Phase::Progressing, None)
    );
    assert_eq!(started.weights(), (90, 10));
}
