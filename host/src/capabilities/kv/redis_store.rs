//! A [`KvBackend`] on a Redis server, so that several nodes share their stores.
//!
//! Keys are stored as they are, like Spin's Redis key-value store: every
//! label configured with the same URL shares one key space (give labels
//! their own database, `redis://host:port/N`, to keep them apart). Values are
//! Redis strings; counters are decimal text handled by `INCRBY`, so a `get` of
//! a counter returns e.g. `b"42"`, as with Spin's Redis store (the embedded
//! store keeps 8-byte little-endian integers instead).
//!
//! The client is synchronous: callers run it on the blocking thread pool
//! ([`KvBackend::reads_inline`] is `false`). Connections are pooled; one
//! that fails or times out is dropped together with the idle ones (they
//! usually share its fate, e.g. after a Redis restart) and new ones are
//! opened on demand. Every call has a connect and a response timeout, so a
//! dead or hung Redis fails the call with [`KvError::Backend`] instead of
//! hanging the request; after a failed connect, calls fail at once for
//! [`RETRY_AFTER`] before the next attempt.

use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{Client, Connection, ConnectionLike as _, ErrorKind, RedisError, RedisResult, Script};

use super::{KvBackend, KvError};

/// How long opening a connection (TCP and handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis may take to answer one command.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connect, calls fail at once for this long before the next
/// connect attempt, so an unreachable Redis does not make every request wait
/// for [`CONNECT_TIMEOUT`].
pub const RETRY_AFTER: Duration = Duration::from_millis(200);
/// A pooled connection idle for longer than this is checked with `PING`
/// before use: Redis may have restarted (or closed it) in the meantime.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;
/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// Sets `KEYS[1]` to `ARGV[3]` if its value is `ARGV[2]` (`ARGV[1] == "1"`)
/// or if it does not exist (`ARGV[1] == "0"`); returns 1 if it did.
const CAS_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
";

static CAS: LazyLock<Script> = LazyLock::new(|| Script::new(CAS_SCRIPT));

/// Whether a call may be sent again after its connection dropped: only
/// calls whose repetition cannot change the outcome.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Safe,
    Never,
}

/// A pooled connection and when it was last used.
struct Idle {
    connection: Connection,
    since: Instant,
}

/// Redis reachability, for failing fast while it is down.
struct Down {
    /// No connect is attempted before this.
    until: Instant,
    /// Why the last attempt failed.
    error: String,
}

/// A Redis server holding key-value stores.
pub struct RedisStore {
    client: Client,
    /// `host:port/db`, for messages (the URL may carry a password).
    name: String,
    idle: Mutex<Vec<Idle>>,
    down: Mutex<Option<Down>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the connection that produced `error` can still be used: only if
/// Redis answered (an error reply, or a reply of an unexpected shape).
fn connection_survives(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType
    )
}

impl RedisStore {
    /// Checks that `url` is a Redis URL this host can connect to; the error
    /// says what is wrong.
    pub fn check_url(url: &str) -> Result<(), String> {
        Client::open(url)
            .map(drop)
            .map_err(|e| format!("is not a usable Redis URL (`redis://host:port/db`): {e}"))
    }

    /// A store on the Redis at `url`. Connects lazily: Redis may come up later.
    pub fn open(url: &str) -> Result<Self, KvError> {
        let client = Client::open(url).map_err(|e| KvError::Backend(format!("{e}")))?;
        let info = client.get_connection_info();
        let name = format!("{}/{}", info.addr(), info.redis_settings().db());
        Ok(Self {
            client,
            name,
            idle: Mutex::new(Vec::new()),
            down: Mutex::new(None),
        })
    }

    /// `host:port/db` of the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connects now and checks that Redis answers `PING`.
    pub fn ping(&self) -> Result<(), KvError> {
        self.run(Retry::Safe, |con| redis::cmd("PING").exec(con))
    }

    fn unreachable(&self, error: &str) -> KvError {
        KvError::Backend(format!("Redis at {} is unreachable: {error}", self.name))
    }

    fn failed(&self, error: &RedisError) -> KvError {
        KvError::Backend(format!("Redis at {}: {error}", self.name))
    }

    /// Opens a connection, unless a recent attempt failed.
    fn connect(&self) -> Result<Connection, KvError> {
        if let Some(down) = lock(&self.down).as_mut() {
            let now = Instant::now();
            if now < down.until {
                return Err(self.unreachable(&down.error));
            }
            // This call probes; the others keep failing fast meanwhile.
            down.until = now + CONNECT_TIMEOUT + RETRY_AFTER;
        }
        let connected = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .and_then(|con| {
                con.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
                con.set_write_timeout(Some(RESPONSE_TIMEOUT))?;
                Ok(con)
            });
        match connected {
            Ok(con) => {
                if lock(&self.down).take().is_some() {
                    tracing::info!(redis = %self.name, "Redis is reachable again");
                }
                Ok(con)
            }
            Err(error) => {
                let error = error.to_string();
                let was_up = lock(&self.down)
                    .replace(Down {
                        until: Instant::now() + RETRY_AFTER,
                        error: error.clone(),
                    })
                    .is_none();
                if was_up {
                    tracing::warn!(redis = %self.name, "cannot connect to Redis: {error}");
                }
                Err(self.unreachable(&error))
            }
        }
    }

    /// A pooled connection (checked if it idled for a while) or a new one;
    /// and whether it was pooled.
    fn connection(&self) -> Result<(Connection, bool), KvError> {
        loop {
            let Some(Idle {
                mut connection,
                since,
            }) = lock(&self.idle).pop()
            else {
                return Ok((self.connect()?, false));
            };
            if since.elapsed() < CHECK_IDLE_AFTER || connection.check_connection() {
                return Ok((connection, true));
            }
            // Dead (Redis restarted?): so are the other idle ones, most likely.
            lock(&self.idle).clear();
        }
    }

    fn release(&self, connection: Connection) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// Runs `op` on a connection. A connection that failed is dropped with
    /// the idle ones; with [`Retry::Safe`], a pooled connection found dropped
    /// is replaced and `op` tried once more.
    fn run<R>(
        &self,
        retry: Retry,
        op: impl Fn(&mut Connection) -> RedisResult<R>,
    ) -> Result<R, KvError> {
        let (mut connection, mut pooled) = self.connection()?;
        loop {
            match op(&mut connection) {
                Ok(value) => {
                    self.release(connection);
                    return Ok(value);
                }
                Err(error) if connection_survives(&error) => {
                    self.release(connection);
                    return Err(self.failed(&error));
                }
                Err(error) => {
                    drop(connection);
                    lock(&self.idle).clear();
                    if !(pooled && retry == Retry::Safe && error.is_connection_dropped()) {
                        tracing::warn!(redis = %self.name, "Redis call failed: {error}");
                        return Err(self.failed(&error));
                    }
                    connection = self.connect()?;
                    pooled = false;
                }
            }
        }
    }
}

impl KvBackend for RedisStore {
    fn get(&self, _store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.run(Retry::Safe, |con| redis::cmd("GET").arg(key).query(con))
    }

    fn set(&self, _store: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.run(Retry::Safe, |con| {
            redis::cmd("SET").arg(key).arg(value).exec(con)
        })
    }

    fn delete(&self, _store: &str, key: &str) -> Result<(), KvError> {
        self.run(Retry::Safe, |con| redis::cmd("DEL").arg(key).exec(con))
    }

    fn exists(&self, _store: &str, key: &str) -> Result<bool, KvError> {
        self.run(Retry::Safe, |con| redis::cmd("EXISTS").arg(key).query(con))
    }

    /// Every key of the database (`SCAN`), sorted; keys that are not UTF-8
    /// (not written through this host) are left out.
    fn keys(&self, _store: &str) -> Result<Vec<String>, KvError> {
        let mut keys = self.run(Retry::Safe, |con| {
            let mut keys = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(con)?;
                keys.extend(batch.into_iter().filter_map(|k| String::from_utf8(k).ok()));
                if next == 0 {
                    return Ok(keys);
                }
                cursor = next;
            }
        })?;
        // SCAN may return a key more than once.
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    fn increment(&self, _store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        self.run(Retry::Never, |con| {
            match redis::cmd("INCRBY").arg(key).arg(delta).query::<i64>(con) {
                Ok(next) => Ok(Ok(next)),
                Err(error) if connection_survives(&error) => {
                    let detail = error.detail().unwrap_or_default();
                    if detail.contains("overflow") {
                        Ok(Err(KvError::Overflow(key.to_owned())))
                    } else if detail.contains("not an integer") {
                        Ok(Err(KvError::NotAnInteger(key.to_owned())))
                    } else {
                        Err(error)
                    }
                }
                Err(error) => Err(error),
            }
        })?
    }

    fn compare_and_swap(
        &self,
        _store: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, KvError> {
        let swapped: i64 = self.run(Retry::Never, |con| {
            CAS.key(key)
                .arg(if expected.is_some() { "1" } else { "0" })
                .arg(expected.unwrap_or_default())
                .arg(value)
                .invoke(con)
        })?;
        Ok(swapped == 1)
    }

    fn get_many(&self, _store: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.run(Retry::Safe, |con| redis::cmd("MGET").arg(keys).query(con))
    }

    /// One `MSET`: atomic.
    fn set_many(&self, _store: &str, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.run(Retry::Safe, |con| {
            let mut cmd = redis::cmd("MSET");
            for (key, value) in entries {
                cmd.arg(key).arg(value);
            }
            cmd.exec(con)
        })
    }

    /// One `DEL` of every key: atomic.
    fn delete_many(&self, _store: &str, keys: &[String]) -> Result<(), KvError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.run(Retry::Safe, |con| redis::cmd("DEL").arg(keys).exec(con))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(store.compare_and_swap("default", "k", None, b"1").unwrap());
        assert!(!store.compare_and_swap("default", "k", None, b"2").unwrap());
        assert!(
            !store
                .compare_and_swap("default", "k", Some(b"0"), b"2")
                .unwrap()
        );
        assert!(
            store
                .compare_and_swap("default", "k", Some(b"1"), b"")
                .unwrap()
        );
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
}
