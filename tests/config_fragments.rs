//! `conf.d` fragments: Logstash concatenates the files of a directory, so a file with
//! only a `filter {}` or only an `output {}` section is valid, and so is a pipeline
//! without inputs or without outputs.

mod common;

use common::{run, sluice};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn fragments() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("10-input.conf", "input { stdin {} }\n"),
        (
            "20-filter.conf",
            "filter {\n  grok { match => { \"message\" => \"%{WORD:verb} %{IPV4:ip:string}\" } }\n}\n",
        ),
        ("30-output.conf", "output { null {} }\n"),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_directory_of_fragments_passes_the_config_test() {
    let dir = fragments();
    let path = dir.path().to_str().unwrap();
    let out = run(&["-t", "-f", path], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("no inputs"), "{stderr}");
    // Each fragment alone is a valid configuration too, with a warning where a
    // section is missing.
    for (file, warning) in [
        ("20-filter.conf", "no inputs"),
        ("30-output.conf", "no inputs"),
        ("10-input.conf", "no outputs"),
    ] {
        let f = dir.path().join(file);
        let out = run(&["-t", "-f", f.to_str().unwrap()], b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{file}: {stderr}");
        assert!(stderr.contains(warning), "{file}: {stderr}");
    }
    // An empty configuration is still an error.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("00.conf"), "# nothing\n").unwrap();
    let out = run(&["-t", "-f", empty.to_str().unwrap()], b"");
    assert!(!out.status.success());
}

#[test]
fn a_pipeline_without_outputs_runs_to_the_end_of_its_input() {
    let dir = fragments();
    std::fs::remove_file(dir.path().join("30-output.conf")).unwrap();
    let mut child = sluice()
        .args(["-f", dir.path().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"GET 10.0.0.1\nPUT 10.0.0.2\n").unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a pipeline without outputs did not stop at the end of stdin within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
