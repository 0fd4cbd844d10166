//! The web dashboard at `/admin/ui`: served without a token and with
//! nothing from outside the gateway, and driven in a headless Chromium
//! (`tests/browser/dashboard.mjs`) against a host under traffic while a
//! canary rollout moves: the browser sees the rollout advance, pauses it,
//! and shows the diff between two config versions. Its screenshots go to
//! `target/screenshots/`.

use crate::support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::traffic::{admin_get, admin_post};
use support::upstream::Upstream;
use support::{ADMIN_TOKEN, Host, client, repo};

/// The service under rollout.
const SERVICE: &str = "orders";

/// Service `orders`: `v1` on `stable` with all the weight, `v2` on
/// `canary`; with `more`, a second route and a timeout, so that the two
/// versions of the document differ.
fn config(stable: &Upstream, canary: &Upstream, more: bool) -> String {
    let extra = if more {
        "\x20   timeout_ms: 5000\n\
         \x20 - { name: orders-v1, paths: [/v1/orders], methods: [GET], service: orders, version: v1 }\n"
    } else {
        ""
    };
    format!(
        "services:\n\
         \x20 - name: {SERVICE}\n\
         \x20   versions:\n\
         \x20     - {{ name: v1, weight: 100, targets: [{{ url: '{}' }}] }}\n\
         \x20     - {{ name: v2, weight: 0, targets: [{{ url: '{}' }}] }}\n\
         routes:\n\
         \x20 - name: orders\n\
         \x20   paths: [/orders]\n\
         \x20   service: {SERVICE}\n\
         {extra}",
        stable.url(),
        canary.url()
    )
}

/// A rollout whose short steps move on by themselves under traffic, and
/// whose last step waits for an operator.
const PLAN: &str = "service: orders\ncanary: v2\n\
    steps: [{ weight: 5, pause: 6s }, { weight: 10, pause: 6s }, { weight: 15, pause: 6s },\n\
    \x20 { weight: 20, pause: 6s }, { weight: 30, pause: 6s }, { weight: 40, pause: 6s },\n\
    \x20 { weight: 50, pause: 6s }, { weight: 60, pause: 6s }, { weight: 70, pause: 6s },\n\
    \x20 { weight: 80, pause: 6s }, { weight: 100, pause: manual }]\n\
    analysis: { min_requests: 10, max_error_rate: 0.05, max_p99_ms: 1000, interval: 250ms }\n";

/// Requests to `/orders/…` through `host` until `stop` is set: about 50
/// a second.
fn traffic(host: &Host, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    let url = format!("{}/orders/42", host.url);
    tokio::spawn(async move {
        let client = client();
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..5 {
                if let Ok(response) = client.get(&url).send().await {
                    let _ = response.bytes().await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// `GET {admin}{path}` without a token: status, content type and text.
async fn unauthenticated(host: &Host, path: &str) -> (u16, String, String) {
    let response = client()
        .get(format!("{}{path}", host.admin))
        .send()
        .await
        .expect("admin answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        response.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_dashboard_is_served_without_a_token_and_needs_nothing_from_outside() {
    let up = Upstream::start("one").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;

    let (status, content_type, page) = unauthenticated(&host, "/admin/ui").await;
    assert_eq!(status, 200, "{page}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.contains("data-testid=\"login-token\""), "{page}");
    let (status, _, same) = unauthenticated(&host, "/admin/ui/").await;
    assert_eq!((status, &same), (200, &page));
    for (asset, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let path = format!("/admin/ui/{asset}");
        assert!(
            page.contains(&format!("\"{path}\"")),
            "{path} is not linked"
        );
        let (status, content_type, text) = unauthenticated(&host, &path).await;
        assert_eq!(status, 200, "{path}: {text}");
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert!(text.len() > 1000, "{path} is nearly empty");
        for text in [&page, &text] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{path} or the page refers to another origin"
            );
        }
    }
    // Every link of the page stays on this origin.
    for attribute in ["src=\"", "href=\""] {
        for link in page.split(attribute).skip(1) {
            let link = link.split('"').next().unwrap_or_default();
            assert!(
                (link.starts_with('/') && !link.starts_with("//"))
                    || link.starts_with('#')
                    || link.starts_with("data:"),
                "the page links to {link}"
            );
        }
    }
    // The page needs no token; the API behind it still does.
    let (status, _, _) = unauthenticated(&host, "/admin/stats").await;
    assert_eq!(status, 401);
}

/// The browser test's directory, with its dependencies installed.
fn browser_test() -> PathBuf {
    let dir = repo().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "the browser test's dependencies are missing: run `npm ci --prefix tests/browser`"
    );
    dir
}

/// The Chromium the browser test drives: `UPSHIFT_CHROMIUM`, or Debian's.
fn chromium() -> String {
    let path = std::env::var("UPSHIFT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "no Chromium at {path}: install it (apt-get install chromium) or set UPSHIFT_CHROMIUM"
    );
    path
}

#[tokio::test]
async fn the_dashboard_follows_and_pauses_a_rollout_in_a_browser() {
    let dir = browser_test();
    let browser = chromium();
    let screenshots = repo().join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    for entry in std::fs::read_dir(&screenshots).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }

    let stable = Upstream::start("stable").await;
    let canary = Upstream::start("canary").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    let first = host.apply(&config(&stable, &canary, false)).await;
    let second = host.apply(&config(&stable, &canary, true)).await;
    assert!(second > first);

    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(&host, stop.clone());
    let (status, body) = admin_post(&host, "/admin/rollouts", PLAN).await;
    assert_eq!(status, 201, "{body}");

    let mut command = Command::new("node");
    command
        .arg("dashboard.mjs")
        .current_dir(&dir)
        .env("UPSHIFT_ADMIN_URL", &host.admin)
        .env("UPSHIFT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("UPSHIFT_ROLLOUT_SERVICE", SERVICE)
        .env("UPSHIFT_SCREENSHOTS", &screenshots)
        .env("UPSHIFT_CHROMIUM", &browser);
    let run = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node runs (install Node.js 20 or later)");
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    eprintln!("{stdout}");
    assert!(
        run.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        run.status
    );

    // The Pause pressed in the browser is the rollout's state.
    let (status, body) = admin_get(&host, &format!("/admin/rollouts/{SERVICE}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rollout"]["phase"], "paused", "{body}");
    let history = body["history"].as_array().unwrap();
    let paused = history.last().unwrap();
    assert!(
        paused["actor"] == "admin" && paused["to_phase"] == "paused",
        "{history:?}"
    );
    let shots = std::fs::read_dir(&screenshots).unwrap().count();
    assert!(
        shots >= 6,
        "{shots} screenshots in {}",
        screenshots.display()
    );
}
