//! `upshift rollout`: start a rollout, follow it, and steer it by hand
//! through the admin API.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use upshift_core::clock::now_ms;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Value, json};

use upshift_model::rollout::{Pause, RolloutState};

use crate::cli::AdminArgs;
use crate::cli::admin_client::{AdminClient, AdminResponse, config_content_type};
use crate::cli::local_time;

/// Options of `upshift rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: RolloutAction,
    /// `text`: summaries for people; `json`: the admin API's answers, for
    /// scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Rollout subcommands.
#[derive(Debug, Subcommand)]
pub enum RolloutAction {
    /// Start a rollout from a plan file, or from flags.
    Start(StartArgs),
    /// Show phase, step, weights, the step's analysis and the audit trail.
    Status(StatusArgs),
    /// Hold the rollout at its current step.
    Pause(ReasonArgs),
    /// Go on from a pause, a manual step or a webhook gate.
    Resume(ServiceArgs),
    /// Send all traffic to the canary now.
    Promote(ServiceArgs),
    /// Send all traffic back to the stable version.
    Abort(ReasonArgs),
    /// Forget a finished rollout, so the config's weights rule again.
    Clear(ServiceArgs),
}

/// Options of `upshift rollout start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The plan (`.yaml`, `.yml` or `.json`); flags are ignored when given.
    #[arg(short = 'f', long = "file", conflicts_with_all = ["service", "canary"])]
    pub file: Option<PathBuf>,
    /// The service to roll out.
    #[arg(required_unless_present = "file")]
    pub service: Option<String>,
    /// The version to move traffic to.
    #[arg(long, required_unless_present = "file")]
    pub canary: Option<String>,
    /// The version traffic comes from (default: the one with the most weight).
    #[arg(long)]
    pub stable: Option<String>,
    /// Canary weights of the steps, in percent, e.g. `10,50,100`.
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<u8>,
    /// How long each step lasts before it is analysed and left, e.g. `30s`,
    /// or `manual` to wait for `resume`.
    #[arg(long, default_value = "1m")]
    pub pause: String,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// A service and where its admin API is.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The service whose rollout this is.
    pub service: String,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// How a command prints what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A summary for people.
    Text,
    /// The admin API's JSON answer.
    Json,
}

/// Options of `upshift rollout status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The service, and where its admin API is.
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Redraw the summary as the rollout goes, until it ends (or Ctrl-C).
    #[arg(long)]
    pub watch: bool,
    /// How often `--watch` redraws, e.g. `1s`, `500ms`.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
}

/// A service, a reason for the audit trail, and where its admin API is.
#[derive(Debug, Args)]
pub struct ReasonArgs {
    /// The service whose rollout this is.
    pub service: String,
    /// Why, for the audit trail.
    #[arg(long)]
    pub reason: Option<String>,
    /// Admin API location and credentials.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `upshift rollout …`.
pub async fn run(args: RolloutArgs) -> anyhow::Result<ExitCode> {
    let output = args.output;
    match args.action {
        RolloutAction::Start(start) => {
            let body = match &start.file {
                Some(file) => (
                    config_content_type(file),
                    Bytes::from(
                        std::fs::read(file)
                            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?,
                    ),
                ),
                None => (
                    "application/json",
                    Bytes::from(plan_from_flags(&start).to_string()),
                ),
            };
            let client = AdminClient::new(&start.admin.admin, &start.admin.token);
            let response = client
                .send(Method::POST, "/admin/rollouts", Some(body))
                .await?;
            report(&response, output, "started")
        }
        RolloutAction::Status(args) => status(args, output).await,
        RolloutAction::Pause(r) => {
            act(&r.admin, &r.service, ("pause", "paused"), r.reason, output).await
        }
        RolloutAction::Abort(r) => {
            act(&r.admin, &r.service, ("abort", "aborted"), r.reason, output).await
        }
        RolloutAction::Resume(t) => {
            act(&t.admin, &t.service, ("resume", "resumed"), None, output).await
        }
        RolloutAction::Promote(t) => {
            act(&t.admin, &t.service, ("promote", "promoted"), None, output).await
        }
        RolloutAction::Clear(t) => {
            let client = AdminClient::new(&t.admin.admin, &t.admin.token);
            let path = format!("/admin/rollouts/{}", t.service);
            let response = client.send(Method::DELETE, &path, None).await?;
            report(&response, output, "cleared")
        }
    }
}

/// `upshift rollout status`: the summary once, or redrawn until the
/// rollout ends with `--watch`.
async fn status(args: StatusArgs, output: Output) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    let client = AdminClient::new(&target.admin.admin, &target.admin.token);
    let path = format!("/admin/rollouts/{}", target.service);
    loop {
        let response = client.send(Method::GET, &path, None).await?;
        if !response.status.is_success() || output == Output::Json {
            return report(&response, Output::Json, "");
        }
        let status: Value = serde_json::from_slice(&response.body)?;
        let summary = describe(&status, now_ms());
        if !args.watch {
            print!("{summary}");
            return Ok(ExitCode::SUCCESS);
        }
        // Clear the screen and draw from its top.
        print!("\x1b[2J\x1b[H{summary}");
        let ended = serde_json::from_value::<RolloutState>(status["rollout"].clone())
            .is_ok_and(|state| !state.is_active());
        if ended {
            return Ok(ExitCode::SUCCESS);
        }
        use std::io::Write as _;
        std::io::stdout().flush()?;
        tokio::select! {
            () = tokio::time::sleep(args.interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    match Pause::try_from(text.to_owned())? {
        Pause::For(interval) if !interval.is_zero() => Ok(interval),
        _ => Err(format!("`{text}` is not an interval like `1s` or `500ms`")),
    }
}

/// Asks for `action` on `service`'s rollout; `done` says what happened,
/// in the summary.
async fn act(
    admin: &AdminArgs,
    service: &str,
    (action, done): (&str, &str),
    reason: Option<String>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(&admin.admin, &admin.token);
    let body = reason.map(|r| {
        (
            "application/json",
            Bytes::from(json!({ "reason": r }).to_string()),
        )
    });
    let path = format!("/admin/rollouts/{service}/{action}");
    let response = client.send(Method::POST, &path, body).await?;
    report(&response, output, done)
}

/// Prints the admin API's answer: for people, what `done` to the rollout
/// and where it stands; for scripts, the JSON. A refusal goes to stderr.
fn report(response: &AdminResponse, output: Output, done: &str) -> anyhow::Result<ExitCode> {
    if !response.status.is_success() {
        eprintln!("{}", response.pretty_body());
        return Ok(ExitCode::FAILURE);
    }
    let body: Value = serde_json::from_slice(&response.body).unwrap_or_default();
    let state = serde_json::from_value::<RolloutState>(body["rollout"].clone());
    match (output, state) {
        (Output::Text, Ok(state)) => {
            let (stable, canary) = state.weights();
            println!(
                "rollout {} of {} {done}: {}, step {} of {}, {} {stable}% / {} {canary}%",
                state.id,
                state.spec.service,
                state.phase,
                state.step + 1,
                state.spec.steps.len(),
                state.spec.stable,
                state.spec.canary,
            );
        }
        (Output::Text, Err(_)) if body["cleared"].is_string() => println!(
            "rollout {} of {} {done}",
            text(&body["cleared"]),
            text(&body["service"])
        ),
        _ => println!("{}", response.pretty_body()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The plan `upshift rollout start SERVICE --canary V …` describes.
fn plan_from_flags(start: &StartArgs) -> Value {
    let mut plan = json!({ "service": start.service, "canary": start.canary });
    if let Some(stable) = &start.stable {
        plan["stable"] = json!(stable);
    }
    if !start.steps.is_empty() {
        plan["steps"] = start
            .steps
            .iter()
            .map(|weight| json!({ "weight": weight, "pause": start.pause }))
            .collect();
    }
    plan
}

/// A summary of `GET /admin/rollouts/{service}` for people, at `now_ms`.
fn describe(status: &Value, now_ms: u64) -> String {
    let rollout = &status["rollout"];
    let spec = &rollout["spec"];
    let (stable, canary) = (text(&spec["stable"]), text(&spec["canary"]));
    let steps = spec["steps"].as_array().map_or(0, Vec::len);
    let step = rollout["step"].as_u64().unwrap_or(0) + 1;
    let mut out = format!(
        "rollout {} of {}: {stable} -> {canary}\n\
         phase:   {} {} step {step} of {steps}\n\
         weights: {stable} {}% / {canary} {}%\n\
         reason:  {}\n",
        text(&rollout["id"]),
        text(&spec["service"]),
        text(&rollout["phase"]),
        progress_bar(step, steps as u64),
        status["weights"]["stable"],
        status["weights"]["canary"],
        text(&rollout["reason"]),
    );
    if let Ok(state) = serde_json::from_value::<RolloutState>(rollout.clone()) {
        out.push_str(&format!(
            "updated: {}\n",
            local_time::when(state.updated_ms, now_ms)
        ));
        match state.spec.steps.get(state.step).map(|s| &s.pause) {
            _ if !state.is_active() => {}
            Some(Pause::For(pause)) => {
                let ends = state.step_started_ms + pause.as_millis() as u64;
                let left = ends.saturating_sub(now_ms);
                out.push_str(&format!("pause:   {} left\n", local_time::span(left)));
            }
            Some(Pause::Manual) => out.push_str("pause:   until `rollout resume`\n"),
            None => {}
        }
    }
    for (side, version) in [("canary", &canary), ("stable", &stable)] {
        let s = &status["step"][side];
        out.push_str(&format!(
            "this step, {version}: {} requests, {} errors ({}), p99 {}\n",
            s["requests"],
            s["errors"],
            s["error_rate"]
                .as_f64()
                .map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0)),
            s["p99_ms"]
                .as_u64()
                .map_or("-".to_owned(), |ms| format!("<= {ms} ms")),
        ));
        let ai = &s["ai"];
        if ai.is_object() {
            out.push_str(&format!(
                "  AI answers: {}, first token {} ms on average, {} tokens/s, {:.1}% refused\n",
                ai["answers"],
                ai["mean_ttft_ms"].as_f64().map_or(0.0, f64::round),
                ai["tokens_per_second"]
                    .as_f64()
                    .map_or("-".to_owned(), |t| format!("{t:.1}")),
                ai["refusal_rate"].as_f64().unwrap_or(0.0) * 100.0,
            ));
        }
    }
    let analysis = &status["step"]["analysis"];
    out.push_str(&format!(
        "analysis: {}: {}\n",
        text(&analysis["verdict"]),
        text(&analysis["detail"])
    ));
    let diffs = &status["step"]["diffs"];
    if let Some(fields) = diffs["fields"].as_object() {
        let list = |map: Option<&serde_json::Map<String, Value>>| {
            let entries: Vec<String> = map
                .into_iter()
                .flatten()
                .map(|(path, n)| format!("{path} ({n})"))
                .collect();
            if entries.is_empty() {
                "none".to_owned()
            } else {
                entries.join(", ")
            }
        };
        out.push_str(&format!(
            "answer diffs: {}\nnoise: {}\n",
            list(Some(fields)),
            list(diffs["noise"].as_object())
        ));
        for sample in diffs["samples"].as_array().into_iter().flatten().take(3) {
            out.push_str(&format!(
                "  {} {}:",
                text(&sample["method"]),
                text(&sample["path"])
            ));
            for field in sample["fields"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    " {} {} -> {}",
                    text(&field["path"]),
                    text(&field["primary"]),
                    text(&field["canary"])
                ));
            }
            out.push('\n');
        }
    }
    if let Some(gate) = rollout["awaiting"].as_str() {
        out.push_str(&format!("waiting: at the {gate} gate for its webhooks\n"));
    }
    for call in status["hooks"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "webhook {} ({}): {}\n",
            text(&call["hook"]),
            text(&call["type"]),
            text(&call["outcome"])
        ));
    }
    out.push_str("history:\n");
    for t in status["history"].as_array().into_iter().flatten() {
        let at = t["at_ms"].as_u64().unwrap_or_default();
        out.push_str(&format!(
            "  {}  {:<7}  {} -> {} (step {} -> {})  {}\n",
            local_time::when(at, now_ms),
            text(&t["actor"]),
            text(&t["from_phase"]),
            text(&t["to_phase"]),
            t["from_step"],
            t["to_step"],
            text(&t["reason"]),
        ));
    }
    out
}

/// `[####------]`: `step` of `steps` done.
fn progress_bar(step: u64, steps: u64) -> String {
    const WIDTH: u64 = 20;
    let done = (step * WIDTH).checked_div(steps).unwrap_or(0).min(WIDTH);
    format!(
        "[{}{}]",
        "#".repeat(done as usize),
        "-".repeat((WIDTH - done) as usize)
    )
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}
