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
mod tests;
