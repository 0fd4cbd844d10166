//! Tests of the Redis store.

use super::*;
use crate::capabilities::kv::testing::compare_and_swap_expects;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// A `redis-server` on a Unix socket in a temporary directory.
struct Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let mut server = Server {
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        server.restart();
        server
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Starts (again) on the same socket, empty.
    fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(self.socket())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        // The socket file appears at bind, before redis accepts on it.
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(self.socket());
        }
    }

    fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn store(server: &Server) -> RedisStore {
    let store = RedisStore::open(&server.url()).unwrap();
    store.ping().unwrap();
    store
}

#[test]
fn values_keys_and_counters() {
    let server = Server::start();
    let store = store(&server);
    assert_eq!(store.get("default", "k").unwrap(), None);
    store.set("default", "k", b"v\0\xff").unwrap();
    assert_eq!(store.get("default", "k").unwrap().unwrap(), b"v\0\xff");
    assert!(store.exists("default", "k").unwrap());
    store.delete("default", "k").unwrap();
    store.delete("default", "never").unwrap();
    assert!(!store.exists("default", "k").unwrap());

    assert_eq!(store.increment("default", "n", 40).unwrap(), 40);
    assert_eq!(store.increment("default", "n", 2).unwrap(), 42);
    assert_eq!(store.get("default", "n").unwrap().unwrap(), b"42");
    store.set("default", "text", b"abc").unwrap();
    assert!(matches!(
        store.increment("default", "text", 1),
        Err(KvError::NotAnInteger(_))
    ));
    store
        .set("default", "big", i64::MAX.to_string().as_bytes())
        .unwrap();
    assert!(matches!(
        store.increment("default", "big", 1),
        Err(KvError::Overflow(_))
    ));
    // The connection survives error replies.
    assert_eq!(store.increment("default", "n", -2).unwrap(), 40);

    let many: Vec<String> = (0..2500).map(|i| format!("many/{i:04}")).collect();
    let entries: Vec<(String, Vec<u8>)> = many
        .iter()
        .map(|k| (k.clone(), k.as_bytes().to_vec()))
        .collect();
    store.set_many("default", &entries).unwrap();
    let keys = store.keys("default").unwrap();
    assert_eq!(keys.len(), 2500 + 3, "{:?}", &keys[..5]);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        store
            .get_many("default", &["many/0001".into(), "none".into()])
            .unwrap(),
        [Some(b"many/0001".to_vec()), None]
    );
    assert_eq!(
        store.get_many("default", &[]).unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    store.delete_many("default", &many).unwrap();
    assert_eq!(store.keys("default").unwrap(), ["big", "n", "text"]);
}

#[test]
fn compare_and_swap_is_atomic() {
    let server = Server::start();
    let store = Arc::new(store(&server));
    compare_and_swap_expects(&*store, b"");
    // An empty value is a value, not an absent key.
    assert!(!store.compare_and_swap("default", "k", None, b"3").unwrap());
    assert!(
        store
            .compare_and_swap("default", "k", Some(b""), b"0")
            .unwrap()
    );

    // Concurrent read-modify-write loops lose no update.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    loop {
                        let current = store.get("default", "k").unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&current).unwrap().parse().unwrap();
                        let next = (n + 1).to_string();
                        if store
                            .compare_and_swap("default", "k", Some(&current), next.as_bytes())
                            .unwrap()
                        {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(store.get("default", "k").unwrap().unwrap(), b"200");
}

#[test]
fn a_dead_redis_fails_fast_and_a_restarted_one_is_used_again() {
    let mut server = Server::start();
    let store = store(&server);
    store.set("default", "k", b"v").unwrap();
    server.stop();

    let started = Instant::now();
    let error = store.get("default", "k").unwrap_err().to_string();
    assert!(error.contains("Redis at"), "{error}");
    // Within the retry pause, calls fail without trying.
    let error = store.increment("default", "n", 1).unwrap_err().to_string();
    assert!(error.contains("unreachable"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(1));

    // Back on the same socket: the store reconnects by itself.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.set("default", "k", b"again") {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(store.get("default", "k").unwrap().unwrap(), b"again");
    assert_eq!(store.increment("default", "n", 1).unwrap(), 1);
}

#[test]
fn pooled_connections_survive_a_restart() {
    let mut server = Server::start();
    let store = store(&server);
    assert_eq!(store.increment("default", "n", 1).unwrap(), 1);
    server.restart();
    // The pooled connection is dead; a read notices and retries on a new one.
    assert_eq!(store.get("default", "n").unwrap(), None);
    assert_eq!(store.increment("default", "n", 1).unwrap(), 1);
}

#[test]
fn urls_are_checked() {
    assert!(RedisStore::check_url("redis://127.0.0.1:6379/3").is_ok());
    assert!(RedisStore::check_url("http://127.0.0.1").is_err());
    let store = RedisStore::open("redis://:secret@127.0.0.1:6390/3").unwrap();
    assert_eq!(store.name(), "127.0.0.1:6390/3");
}
