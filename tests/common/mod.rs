//! Helpers shared by the integration tests: the sluice binary, free ports, tools from
//! the test venv that scripts/test.sh installs.
#![allow(dead_code)]

#[cfg(feature = "kafka")]
pub mod kafka;
pub mod pki;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The sluice binary cargo built for this test run.
pub fn sluice() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("--log.level").arg("warn");
    cmd
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// The test venv (created by scripts/test.sh).
pub fn venv() -> PathBuf {
    std::env::var_os("SLUICE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"))
}

/// An executable installed in the test venv; fails the test with the fix if absent.
pub fn venv_bin(name: &str) -> PathBuf {
    let path = venv().join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test.sh, which installs the test tools into .venv",
        path.display()
    );
    path
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A child process killed when the test ends, pass or fail.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` with piped stdio, killed on drop.
pub fn spawn(mut cmd: Command) -> KillOnDrop {
    KillOnDrop(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start child process"),
    )
}

/// A gzip file of the repository (test data), decompressed.
pub fn gunzip(path: &str) -> Vec<u8> {
    let file = std::fs::File::open(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Runs sluice with `args`, feeding `input` on stdin, and waits for it to exit.
pub fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = sluice()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Every dead letter queue entry of the pipeline `main` under `data` (a `--path.data`),
/// as JSON, in the order written.
pub fn dead_letters(data: &std::path::Path) -> Vec<serde_json::Value> {
    let dir = data.join("dead_letter_queue/main");
    if !dir.exists() {
        return Vec::new();
    }
    sluice::queue::dlq::read_entries(&dir)
        .expect("cannot read the dead letter queue")
        .iter()
        .map(|r| serde_json::from_slice(r).expect("a dead letter is not JSON"))
        .collect()
}

/// The osmem-server binary (OpenSearch-compatible): on the venv's PATH, or bundled in
/// its Python package.
pub fn osmem_bin() -> PathBuf {
    let direct = venv().join("bin").join("osmem-server");
    if direct.exists() {
        return direct;
    }
    let out = Command::new(venv_bin("python"))
        .args([
            "-c",
            "import osmem_server; print(osmem_server.resolve_binary())",
        ])
        .output()
        .expect("cannot run the venv's python");
    assert!(
        out.status.success(),
        "osmem-server is not installed in the venv: run scripts/test.sh ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Starts osmem-server on 127.0.0.1:`port` and waits until it accepts connections.
pub fn start_osmem(port: u16) -> KillOnDrop {
    let mut cmd = Command::new(osmem_bin());
    cmd.args(["-addr", &format!("127.0.0.1:{port}"), "-no-stdin-watch"]);
    let child = spawn(cmd);
    assert!(
        wait_for_port(port, Duration::from_secs(20)),
        "osmem-server did not start on port {port}"
    );
    child
}
