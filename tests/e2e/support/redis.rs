//! A real `redis-server` on 127.0.0.1 for the tests of hosts sharing their
//! key-value stores.
//!
//! Data lives in a temporary directory with an fsync-always append-only
//! file, so a Redis that is killed and started again keeps what it had.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`, killed on drop.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts `redis-server` on a free port.
    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Redis {
            child: None,
            port,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Writes a runtime config file into `dir` that puts the `default`
    /// key-value store on this Redis; returns its path.
    pub fn runtime_config_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("runtime-config.toml");
        std::fs::write(
            &path,
            format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
                self.url()
            ),
        )
        .expect("runtime config is written");
        path
    }

    /// Starts the server (again, on the same port and data) and waits until
    /// it answers.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.ping().is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server; its data stays for [`Redis::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`SIGSTOP`) the server: it accepts connections but answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    fn ping(&self) -> std::io::Result<()> {
        if self.command(&["PING"])? == "PONG" {
            Ok(())
        } else {
            Err(std::io::Error::other("not ready"))
        }
    }

    /// Runs one command; returns a simple, integer or bulk string reply as
    /// text, `(nil)` for a missing value, or an error for an error reply.
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            reply.extend_from_slice(&buf[..n]);
            if let Some(text) = parse_reply(&reply)? {
                return Ok(text);
            }
        }
    }

    /// The value at `key`, `None` if missing (panics if Redis does not answer).
    pub fn get(&self, key: &str) -> Option<String> {
        let value = self.command(&["GET", key]).expect("redis answers");
        (value != "(nil)").then_some(value)
    }
}

/// A complete simple/integer/bulk reply, `None` while more bytes are needed.
fn parse_reply(reply: &[u8]) -> std::io::Result<Option<String>> {
    let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(&reply[1..end]).into_owned();
    match reply[0] {
        b'+' | b':' => Ok(Some(line)),
        b'-' => Err(std::io::Error::other(line)),
        b'$' if line == "-1" => Ok(Some("(nil)".to_owned())),
        b'$' => {
            let len: usize = line.parse().map_err(std::io::Error::other)?;
            let body = &reply[end + 2..];
            if body.len() < len + 2 {
                return Ok(None);
            }
            Ok(Some(String::from_utf8_lossy(&body[..len]).into_owned()))
        }
        other => Err(std::io::Error::other(format!(
            "unexpected reply type {:?}",
            other as char
        ))),
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
