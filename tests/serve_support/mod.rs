//! Helpers for the `aiec serve` tests: start the real binary on an ephemeral port of
//! 127.0.0.1, speak raw HTTP/1.1 to it (so bad clients can be exactly as bad as wanted), and
//! run `aiec run` for the reference text.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn aiec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aiec"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn jfk() -> PathBuf {
    repo().join("examples/audio/jfk.wav")
}

/// A dev-set clip (`/work/shared/speech/audio/...`, see its README).
pub fn dev_clip(rel: &str) -> PathBuf {
    let dir = std::env::var_os("AIEC_SPEECH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/speech"));
    dir.join("audio").join(rel)
}

/// A running `aiec serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `aiec serve --port 0 ARGS...` and waits until `/health` says ready.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    /// [`Server::start`] with extra environment variables (`AIEC_HOME`, ...).
    pub fn start_with_env(args: &[&str], envs: &[(&str, &Path)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let mut child = aiec()
            .envs(envs.iter().copied())
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting aiec serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        let server = Server {
            child,
            addr,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = server.try_get("/health") {
                if r.status == 200 {
                    break;
                }
                assert_eq!(r.status, 503, "health while loading: {}", r.text());
            }
            assert!(
                Instant::now() < deadline,
                "server not ready: {}",
                server.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn try_get(&self, path: &str) -> std::io::Result<Response> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        exchange(self.addr, request.as_bytes())
    }

    pub fn get(&self, path: &str) -> Response {
        self.try_get(path).expect("GET")
    }

    /// A well-formed multipart POST.
    pub fn post(&self, path: &str, form: &Multipart) -> Response {
        exchange(self.addr, &form.request(path, self.addr)).expect("POST")
    }

    /// Peak resident memory (VmHWM) of the server process, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kb / 1024.0
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Checks the OpenAI error shape and the status; returns `error.code`.
    pub fn assert_openai_error(&self, status: u16, param: Option<&str>) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.json();
        let error = body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("no error object: {body}"));
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
        assert!(
            !error["message"].as_str().unwrap().is_empty(),
            "empty message"
        );
        assert!(error["type"].is_string());
        assert_eq!(error["param"].as_str(), param, "{body}");
        error["code"].as_str().unwrap().to_string()
    }
}

/// Parses a whole `Connection: close` response (content-length or read-to-end body).
pub fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = raw[split + 4..].to_vec();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Writes `request`, reads the response to the connection's end.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    s.write_all(request)?;
    read_response(&mut s)
}

pub fn read_response(s: &mut TcpStream) -> std::io::Result<Response> {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// A multipart/form-data body built by hand.
pub struct Multipart {
    pub boundary: String,
    parts: Vec<u8>,
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

impl Multipart {
    pub fn new() -> Self {
        Self {
            boundary: "aiec-test-boundary-7d1f0c".into(),
            parts: Vec::new(),
        }
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        let _ = write!(
            self.parts,
            "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
            self.boundary
        );
        self
    }

    pub fn file(mut self, filename: &str, bytes: &[u8]) -> Self {
        let _ = write!(
            self.parts,
            "--{}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            self.boundary
        );
        self.parts.extend_from_slice(bytes);
        self.parts.extend_from_slice(b"\r\n");
        self
    }

    pub fn file_path(self, path: &Path) -> Self {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        self.file(&name, &std::fs::read(path).unwrap())
    }

    pub fn body(&self) -> Vec<u8> {
        let mut b = self.parts.clone();
        let _ = write!(b, "--{}--\r\n", self.boundary);
        b
    }

    /// Headers for a body of `content_length` bytes.
    pub fn head(&self, path: &str, addr: SocketAddr, content_length: usize) -> Vec<u8> {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={}\r\nContent-Length: {content_length}\r\n\r\n",
            self.boundary
        )
        .into_bytes()
    }

    pub fn request(&self, path: &str, addr: SocketAddr) -> Vec<u8> {
        let body = self.body();
        let mut r = self.head(path, addr, body.len());
        r.extend_from_slice(&body);
        r
    }
}

/// The `text` of each JSON document `aiec run MODEL FILES -f json ARGS` prints, in order.
pub fn run_texts(model: &str, files: &[&Path], extra: &[&str]) -> Vec<String> {
    let out = aiec()
        .arg("run")
        .arg(model)
        .args(files)
        .args(["-f", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aiec run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::Deserializer::from_str(&stdout)
        .into_iter::<serde_json::Value>()
        .map(|v| v.unwrap()["text"].as_str().unwrap().to_string())
        .collect()
}
