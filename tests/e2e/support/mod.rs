//! The end-to-end test harness: the real `upshift` host serving the real
//! components from the repository's spin.toml, real upstream servers on
//! 127.0.0.1 and a real HTTP client.

pub mod collector;
pub mod peers;
pub mod providers;
pub mod redis;
pub mod traffic;
pub mod upstream;

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The admin token of the test apps.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Seconds a host may take to announce its addresses (or, for
/// [`Host::refused`], to exit): every test host compiles the components
/// afresh, on a machine loaded by the other tests.
const START_LIMIT_S: u64 = 180;

/// Hosts start one at a time: each compiles the components on its first
/// start, and several compiling at once on a busy machine can miss
/// [`START_LIMIT_S`]. Held from the spawn until the host announces its
/// addresses or exits; the tests then run side by side.
static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes the start-up turn, whether or not an earlier start panicked.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    STARTING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

/// The `upshift` binary under test.
pub fn upshift_bin() -> &'static str {
    env!("CARGO_BIN_EXE_upshift")
}

/// The built component `name` (e.g. `router`), failing with a hint when the
/// components were not built.
pub fn component(name: &str) -> PathBuf {
    let path = repo().join(format!("target/wasm32-wasip2/release/upshift_{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the components first (tests/run.sh does, or `upshift build`)",
        path.display()
    );
    path
}

/// The lane the host under test serves the gateway on: `native` (the
/// default) or `component`, from `UPSHIFT_TEST_LANE`.
pub fn lane() -> String {
    std::env::var("UPSHIFT_TEST_LANE").unwrap_or_else(|_| "native".into())
}

/// A running `upshift up`, killed on drop.
pub struct Host {
    child: Child,
    /// `http://127.0.0.1:PORT`: the public listener.
    pub url: String,
    /// `http://127.0.0.1:PORT`: the admin API's listener.
    pub admin: String,
    /// Lines the host logged, collected in the background.
    pub log: mpsc::Receiver<String>,
}

impl Host {
    /// Starts the host on the repository's spin.toml with a fresh state dir.
    pub fn start(state: &Path) -> Host {
        Host::start_with(&repo().join("spin.toml"), state, &[])
    }

    /// Starts the host on `manifest` with `state` and extra `upshift up`
    /// arguments; the admin token is [`ADMIN_TOKEN`], from the environment.
    pub fn start_with(manifest: &Path, state: &Path, extra_args: &[&str]) -> Host {
        Host::launch(manifest, state, extra_args, Some(ADMIN_TOKEN))
    }

    /// Like [`Host::start_with`], with no admin token in the environment.
    pub fn start_without_token(manifest: &Path, state: &Path, extra_args: &[&str]) -> Host {
        Host::launch(manifest, state, extra_args, None)
    }

    /// Runs `upshift up` on `manifest` with `state` and `extra_args`,
    /// expecting it to refuse to start: what it printed on stderr.
    pub fn refused(manifest: &Path, state: &Path, extra_args: &[&str]) -> String {
        let _turn = one_at_a_time();
        let mut child = up_command(manifest, state, extra_args, Some(ADMIN_TOKEN))
            .spawn()
            .expect("upshift starts");
        let deadline = std::time::Instant::now() + Duration::from_secs(START_LIMIT_S);
        let status = loop {
            if let Some(status) = child.try_wait().expect("the host can be waited for") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("upshift started with {extra_args:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        let mut stderr = child.stderr.take().expect("stderr is piped");
        std::io::Read::read_to_string(&mut stderr, &mut err).expect("stderr is UTF-8");
        assert!(!status.success(), "{err}");
        err
    }

    fn launch(manifest: &Path, state: &Path, extra_args: &[&str], token: Option<&str>) -> Host {
        let _turn = one_at_a_time();
        let mut child = up_command(manifest, state, extra_args, token)
            .spawn()
            .expect("upshift starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        let (log_tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let announced = [
                    ("listening on http://", false),
                    ("listening on https://", false),
                    ("admin API on http://", true),
                ];
                for (announcement, admin) in announced {
                    if let Some(rest) = line.split(announcement).nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        let _ = ready_tx.send((admin, addr.to_owned()));
                    }
                }
                let _ = log_tx.send(line);
            }
        });
        let (mut addr, mut admin) = (None, None);
        while addr.is_none() || admin.is_none() {
            match ready_rx.recv_timeout(Duration::from_secs(START_LIMIT_S)) {
                Ok((true, announced)) => admin = Some(announced),
                Ok((false, announced)) => addr = Some(announced),
                Err(_) => {
                    let _ = child.kill();
                    let lines: Vec<String> = log.try_iter().collect();
                    panic!(
                        "upshift did not report its addresses; log:\n{}",
                        lines.join("\n")
                    );
                }
            }
        }
        Host {
            child,
            url: format!("http://{}", addr.unwrap_or_default()),
            admin: format!("http://{}", admin.unwrap_or_default()),
            log,
        }
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the host.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) with a pid this test started and still holds.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill failed: {}", std::io::Error::last_os_error());
    }

    /// Waits (up to `limit`) for the host to exit.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the host can be waited for") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "the host did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Process id, for reading its memory use.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every line logged so far.
    pub fn drain_log(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    /// Applies a config document through the admin API, expecting success;
    /// returns the new version.
    pub async fn apply(&self, document: &str) -> u64 {
        let (status, body) = self.put_config(document).await;
        assert_eq!(status, 201, "config was rejected: {body}");
        body["version"].as_u64().expect("a version number")
    }

    /// `GET {url}{path}` with `headers`, as a client of the public
    /// listener: what came back.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = client().get(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `PUT /admin/config` with `document`: status and JSON body.
    pub async fn put_config(&self, document: &str) -> (u16, Value) {
        let response = client()
            .put(format!("{}/admin/config", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/yaml")
            .body(document.to_owned())
            .send()
            .await
            .expect("admin answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("admin answers JSON"))
    }
}

/// `upshift up` on `manifest` with `state`, on the lane under test unless
/// `extra_args` names one, logging at info level to a piped stderr.
fn up_command(manifest: &Path, state: &Path, extra_args: &[&str], token: Option<&str>) -> Command {
    let mut command = Command::new(upshift_bin());
    command
        .args(["up", "--listen", "127.0.0.1:0", "--manifest"])
        .arg(manifest)
        .arg("--state-dir")
        .arg(state)
        .env_remove("SPIN_VARIABLE_ADMIN_TOKEN")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !extra_args.contains(&"--lane") {
        command.args(["--lane", &lane()]);
    }
    command.args(extra_args);
    if let Some(token) = token {
        command.env("SPIN_VARIABLE_ADMIN_TOKEN", token);
    }
    command
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a client saw of one response.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The JSON body (`null` when it is not JSON).
    pub body: Value,
}

impl Answer {
    /// The value of header `name`, if it has one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The version part of `x-upshift-upstream` (`service@version`).
    pub fn version(&self) -> &str {
        self.header("x-upshift-upstream")
            .and_then(|u| u.split('@').nth(1))
            .unwrap_or_default()
    }

    /// The code of a gateway error body (`error.code`).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// On the component lane, a protocol only the native lane speaks (HTTP/2
/// to upstreams) is refused with a clear 501: checks that `GET /x` is.
pub async fn assert_refused_on_the_component_lane(host: &Host) {
    let answer = host.get("/x", &[]).await;
    assert_eq!(
        (answer.status, answer.code()),
        (501, "protocol_not_supported"),
        "{:?}",
        answer.body
    );
}

/// The first value of header `name` among `headers` (lower-case names).
pub fn header_of<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// An HTTP client that does not follow redirects or use proxies.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// Runs the `upshift` CLI with `args`: exit success, stdout, stderr.
pub fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(upshift_bin())
        .args(args)
        .env("UPSHIFT_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("upshift runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `wasm-tools` with `args`, expecting success: what it printed.
pub fn wasm_tools(args: &[&str]) -> String {
    let out = Command::new("wasm-tools")
        .args(args)
        .output()
        .expect("wasm-tools is installed (cargo install wasm-tools --locked)");
    assert!(
        out.status.success(),
        "wasm-tools {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("wasm-tools prints UTF-8")
}

/// What `wasm-tools component wit` prints for the component at `wasm`.
pub fn component_wit(wasm: &Path) -> String {
    wasm_tools(&["component", "wit", wasm.to_str().expect("a UTF-8 path")])
}

/// The imports and exports of the component at `wasm`, as the world
/// `wasm-tools component wit` prints for it.
pub fn component_surface(wasm: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let text = component_wit(wasm);
    let world = text
        .split("world root {")
        .nth(1)
        .and_then(|w| w.split("\n}").next())
        .unwrap_or_else(|| panic!("no root world in:\n{text}"));
    let (mut imports, mut exports) = (BTreeSet::new(), BTreeSet::new());
    for line in world.lines().map(str::trim) {
        let item = |rest: &str| rest.trim_end_matches(';').trim().to_owned();
        if let Some(rest) = line.strip_prefix("import ") {
            imports.insert(item(rest));
        } else if let Some(rest) = line.strip_prefix("export ") {
            exports.insert(item(rest));
        }
    }
    (imports, exports)
}

/// Builds a dummy component of `world` from the WIT folder `wit` (its
/// functions trap): `{dir}/{world}.wasm`.
pub fn dummy_component(wit: &Path, world: &str, dir: &Path) -> PathBuf {
    let core = dir.join(format!("{world}.core.wasm"));
    let component = dir.join(format!("{world}.wasm"));
    let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_owned();
    let (wit, core_path, component_path) = (path(wit), path(&core), path(&component));
    wasm_tools(&[
        "component",
        "embed",
        "--dummy",
        "--world",
        world,
        &wit,
        "-o",
        &core_path,
    ]);
    wasm_tools(&["component", "new", &core_path, "-o", &component_path]);
    component
}

/// Resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// The most resident memory a process had while sampled every 5 ms. The
/// kernel's own peak (`VmHWM`) is not kept up to date when an allocator
/// gives pages back with `madvise`, as mimalloc does.
pub struct RssPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<u64>,
}

impl RssPeak {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = rss_kib(pid);
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(rss_kib(pid))
        });
        RssPeak { stop, sampler }
    }

    /// Stops sampling: the peak, in KiB.
    pub fn kib(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.sampler.join().expect("the RSS sampler")
    }
}

/// The lines of the access log at `path`, parsed, once there are `n` (its
/// writer follows the answers) or after 10 s.
pub async fn access_log_lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect();
        if lines.len() >= n || std::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
