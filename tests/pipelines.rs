//! Several pipelines in one process (pipelines.yml) and pipeline-to-pipeline
//! communication, run through the sluice binary: `pipeline.ordered`, the settings
//! directory, the distributor pattern, and acks that cross the pipeline boundary (a
//! Beats client is acked only once every downstream pipeline made its events safe).

mod common;

use common::{free_port, run, sluice, spawn, venv_bin, wait_for_port, KillOnDrop};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long any single wait in these tests may take before it fails the test.
const DEADLINE: Duration = Duration::from_secs(90);

/// Polls `done` every 50 ms; fails the test naming `what` if it is not true in time.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The `message` of each line of a json_lines file.
fn messages(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The json_lines records of a file.
fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// 100k lines through stdin → file with -w 1 leave in the order they came, although a
/// conditional sends neighbours down different branches; with `pipeline.ordered` false
/// the same run groups them by branch (so the check above can fail).
#[test]
fn one_worker_keeps_the_order_of_100k_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
    let run_with = |ordered: &str| {
        let out_file = dir.path().join(format!("out-{ordered}.json"));
        let config = format!(
            r#"input {{ stdin {{}} }}
               filter {{ if [message] =~ /[05]$/ {{ mutate {{ add_tag => ["fives"] }} }} }}
               output {{ file {{ path => "{}" codec => json_lines }} }}"#,
            out_file.display()
        );
        let out = run(
            &[
                "-w",
                "1",
                "--pipeline.ordered",
                ordered,
                "--api.enabled",
                "false",
                "--path.data",
                &dir.path().join(ordered).display().to_string(),
                "-e",
                &config,
            ],
            input.as_bytes(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        messages(&out_file)
    };
    let expected: Vec<String> = (0..100_000).map(|i| format!("line {i}")).collect();
    let ordered = run_with("auto");
    assert_eq!(ordered.len(), expected.len());
    if let Some(at) = ordered.iter().zip(&expected).position(|(a, b)| a != b) {
        panic!(
            "out of order at line {at}: {:?} where {:?} was expected",
            ordered[at], expected[at]
        );
    }
    let unordered = run_with("false");
    assert_eq!(unordered.len(), expected.len());
    assert_ne!(
        unordered, expected,
        "without ordering, a batch leaves grouped by branch"
    );
}

#[test]
fn ordered_true_refuses_several_workers_and_bad_values() {
    let out = run(
        &[
            "-t",
            "-w",
            "2",
            "--pipeline.ordered",
            "true",
            "-e",
            "input { stdin {} }",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("single worker"), "{}", stderr(&out));
    let out = run(
        &[
            "-t",
            "--pipeline.ordered",
            "maybe",
            "-e",
            "input { stdin {} }",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("auto, true or false"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &[
            "-t",
            "-w",
            "1",
            "--pipeline.ordered",
            "true",
            "-e",
            "input { stdin {} }",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `-t` checks every pipeline of pipelines.yml (globbed conf.d fragments included), and
/// names the file and the pipeline when one is wrong.
#[test]
fn test_and_exit_checks_every_pipeline_of_pipelines_yml() {
    let dir = tempfile::tempdir().unwrap();
    let confd = dir.path().join("conf.d");
    std::fs::create_dir(&confd).unwrap();
    write(
        &confd,
        "10-input.conf",
        "input { pipeline { address => parsed } }\n",
    );
    write(
        &confd,
        "20-filter.conf",
        "filter { mutate { add_tag => [\"seen\"] } }\n",
    );
    write(&confd, "30-output.conf", "output { null {} }\n");
    let settings = dir.path().join("settings");
    std::fs::create_dir(&settings).unwrap();
    write(
        &settings,
        "logstash.yml",
        "pipeline.batch.size: 250\nconfig.reload.automatic: true\n",
    );
    let yml = format!(
        "- pipeline.id: intake\n  config.string: 'input {{ generator {{ count => 1 }} }} output {{ pipeline {{ send_to => [parsed] }} }}'\n- pipeline.id: parse\n  path.config: \"{}/*.conf\"\n  pipeline.workers: 1\n",
        confd.display()
    );
    write(&settings, "pipelines.yml", &yml);
    let settings_arg = settings.display().to_string();
    let out = run(&["-t", "--path.settings", &settings_arg], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Configuration OK"));

    // A mistake in the second pipeline's fragments fails the check and names it.
    write(
        &confd,
        "20-filter.conf",
        "filter { mutate { add_tagz => [\"seen\"] } }\n",
    );
    let out = run(&["-t", "--path.settings", &settings_arg], b"");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("pipeline parse")
            && err.contains("20-filter.conf")
            && err.contains("add_tagz"),
        "{err}"
    );

    // Two inputs on one address, across pipelines.
    write(&confd, "20-filter.conf", "filter {}\n");
    write(
        &settings,
        "pipelines.yml",
        &format!(
            "{yml}- pipeline.id: twin\n  config.string: 'input {{ pipeline {{ address => parsed }} }}'\n"
        ),
    );
    let out = run(&["-t", "--path.settings", &settings_arg], b"");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already listens on address `parsed`"),
        "{}",
        stderr(&out)
    );

    // Duplicate ids and a pipeline without configuration: errors that name the file.
    write(
        &settings,
        "pipelines.yml",
        "- pipeline.id: a\n  config.string: 'input { stdin {} }'\n- pipeline.id: a\n  config.string: 'input { stdin {} }'\n",
    );
    let out = run(&["-t", "--path.settings", &settings_arg], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("pipelines.yml")
            && stderr(&out).contains("`a` is used by an earlier pipeline"),
        "{}",
        stderr(&out)
    );
    write(
        &settings,
        "pipelines.yml",
        "- pipeline.id: empty\n  pipeline.workers: 2\n",
    );
    let out = run(&["-t", "--path.settings", &settings_arg], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("pipelines.yml")
            && stderr(&out).contains("give path.config or config.string"),
        "{}",
        stderr(&out)
    );

    // -e wins over pipelines.yml, with a warning, as in Logstash.
    let out = run(
        &[
            "-t",
            "--path.settings",
            &settings_arg,
            "-e",
            "input { stdin {} }",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ignoring pipelines.yml"),
        "{}",
        stderr(&out)
    );
}

/// The distributor pattern: one pipeline reads stdin and sends every event to two
/// pipelines, each with its own filters and file. Each gets every event once, and what
/// one changes does not show in the other's copy.
#[test]
fn a_distributor_sends_each_pipeline_its_own_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let yml = format!(
        r#"- pipeline.id: distributor
  config.string: 'input {{ stdin {{}} }} output {{ pipeline {{ send_to => ["left", "right"] }} }}'
- pipeline.id: left
  pipeline.workers: 2
  config.string: 'input {{ pipeline {{ address => "left" }} }} filter {{ mutate {{ replace => {{ "message" => "changed" }} add_tag => ["left"] }} }} output {{ file {{ path => "{}" codec => json_lines }} }}'
- pipeline.id: right
  queue.type: persisted
  config.string: 'input {{ pipeline {{ address => "right" }} }} output {{ file {{ path => "{}" codec => json_lines }} }}'
"#,
        a.display(),
        b.display()
    );
    write(dir.path(), "pipelines.yml", &yml);
    let input: String = (0..5000).map(|i| format!("event {i}\n")).collect();
    let out = run(
        &[
            "--path.settings",
            &dir.path().display().to_string(),
            "--path.data",
            &dir.path().join("data").display().to_string(),
            "--api.enabled",
            "false",
        ],
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let left = records(&a);
    assert_eq!(left.len(), 5000);
    assert!(left.iter().all(|r| r["message"] == "changed"));
    let mut right = messages(&b);
    assert_eq!(right.len(), 5000);
    right.sort();
    right.dedup();
    assert_eq!(right.len(), 5000, "every event once");
    assert!(
        right.iter().all(|m| m.starts_with("event ")),
        "left's change leaked"
    );
    let tagged = records(&b)
        .iter()
        .filter(|r| r.get("tags").is_some())
        .count();
    assert_eq!(tagged, 0, "left's tag leaked into right's copy");
    // The persisted queue of `right` lives in <path.queue>/<pipeline.id>.
    assert!(dir.path().join("data/queue/right").is_dir());
}

/// With `ensure_delivery => false`, an address nobody listens on drops its copies
/// (logged); the run still ends and the other address gets everything.
#[test]
fn without_ensure_delivery_an_unlistened_address_drops() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let yml = format!(
        r#"- pipeline.id: up
  config.string: 'input {{ stdin {{}} }} output {{ pipeline {{ send_to => ["there", "nowhere"] ensure_delivery => false }} }}'
- pipeline.id: there
  config.string: 'input {{ pipeline {{ address => "there" }} }} output {{ file {{ path => "{}" codec => json_lines }} }}'
"#,
        a.display()
    );
    write(dir.path(), "pipelines.yml", &yml);
    let out = run(
        &[
            "--path.settings",
            &dir.path().display().to_string(),
            "--api.enabled",
            "false",
            "--path.data",
            &dir.path().join("data").display().to_string(),
        ],
        b"one\ntwo\nthree\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(messages(&a).len(), 3);
    assert!(
        stderr(&out).contains("dropping its events"),
        "{}",
        stderr(&out)
    );
}

/// The output isolator: with a persisted queue in each downstream pipeline, a
/// destination that is down holds only its own pipeline; the other one gets every event
/// (its copy is safe once written to the slow pipeline's queue).
#[test]
fn a_persisted_downstream_queue_isolates_a_destination_that_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let fast = dir.path().join("fast.json");
    let down = free_port();
    let yml = format!(
        r#"- pipeline.id: up
  config.string: 'input {{ stdin {{}} }} output {{ pipeline {{ send_to => ["fast", "slow"] }} }}'
- pipeline.id: fast
  config.string: 'input {{ pipeline {{ address => "fast" }} }} output {{ file {{ path => "{}" codec => json_lines }} }}'
- pipeline.id: slow
  queue.type: persisted
  config.string: 'input {{ pipeline {{ address => "slow" }} }} output {{ elasticsearch {{ hosts => ["http://127.0.0.1:{down}"] }} }}'
"#,
        fast.display()
    );
    write(dir.path(), "pipelines.yml", &yml);
    let mut cmd = sluice();
    cmd.args([
        "--path.settings",
        &dir.path().display().to_string(),
        "--path.data",
        &dir.path().join("data").display().to_string(),
        "--api.enabled",
        "false",
        "-w",
        "2",
        "--shutdown.timeout",
        "1",
    ]);
    let mut sluice = spawn(cmd);
    let input: String = (0..3000).map(|i| format!("event {i}\n")).collect();
    let mut stdin = sluice.0.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    wait_until("every event in the fast pipeline's file", || {
        records(&fast).len() >= 3000
    });
    assert_eq!(records(&fast).len(), 3000);
    assert!(
        sluice.0.try_wait().unwrap().is_none(),
        "sluice stopped although the slow pipeline could not deliver"
    );
    let pid = sluice.0.id();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    wait_until("sluice to stop after SIGTERM", || {
        sluice.0.try_wait().unwrap().is_some()
    });
    // The slow pipeline's events wait in its queue on disk for the next run.
    assert!(dir.path().join("data/queue/slow/checkpoint").exists());
}

/// A GET on 127.0.0.1:`port`: the status and the body.
fn get(port: u16, path: &str) -> Option<(u16, serde_json::Value)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // A chunked body starts with its length line; the JSON starts at the first brace.
    let json = body.find('{').map_or("", |i| &body[i..]);
    let json = json.rfind('}').map_or("", |i| &json[..=i]);
    Some((status, serde_json::from_str(json).unwrap_or_default()))
}

/// Documents in `index` of the server on `port`.
fn count(port: u16, index: &str) -> u64 {
    match get(port, &format!("/{index}/_count")) {
        Some((200, v)) => v["count"].as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// The issue's case: Beats → a distributor → an archive pipeline (file) and a search
/// pipeline (Elasticsearch, down at first). The archive has the first window at once,
/// but the Beats client is not acked (so it sends nothing more) until the search
/// pipeline delivered it too; once the server is up, everything arrives in both, once.
#[test]
fn beats_is_acked_only_when_both_downstream_pipelines_made_events_safe() {
    let dir = tempfile::tempdir().unwrap();
    let (beats_port, es_port, api_port) = (free_port(), free_port(), free_port());
    let archive = dir.path().join("archive.json");
    let yml = format!(
        r#"- pipeline.id: intake
  config.string: 'input {{ beats {{ host => "127.0.0.1" port => {beats_port} }} }} output {{ pipeline {{ send_to => ["archive", "search"] }} }}'
- pipeline.id: archive
  config.string: 'input {{ pipeline {{ address => "archive" }} }} output {{ file {{ path => "{archive}" codec => json_lines }} }}'
- pipeline.id: search
  config.string: 'input {{ pipeline {{ address => "search" }} }} output {{ elasticsearch {{ hosts => ["http://127.0.0.1:{es_port}"] index => "beats" retry_max_interval => 2 }} }}'
"#,
        archive = archive.display()
    );
    write(dir.path(), "pipelines.yml", &yml);
    let mut cmd = sluice();
    cmd.args([
        "--path.settings",
        &dir.path().display().to_string(),
        "--path.data",
        &dir.path().join("data").display().to_string(),
        "--api.http.port",
        &api_port.to_string(),
    ]);
    let mut sluice = spawn(cmd);
    assert!(
        wait_for_port(beats_port, Duration::from_secs(30)),
        "the beats input did not listen on {beats_port}"
    );
    // Two windows of 100: pylogbeat sends the second only once the first is acked.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/pylogbeat_send.py"
    );
    let mut client = KillOnDrop(
        Command::new(venv_bin("python"))
            .args([script, &beats_port.to_string(), "0", "200", "100"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start pylogbeat"),
    );
    wait_until("the archive pipeline to write the first window", || {
        records(&archive).len() >= 100
    });
    // The search pipeline cannot deliver: the window stays unacked.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        client.0.try_wait().unwrap().is_none(),
        "the client finished although the search pipeline had not delivered"
    );
    assert_eq!(
        records(&archive).len(),
        100,
        "a second window was sent: the first was acked before the search pipeline made it safe"
    );

    let _server = common::start_osmem(es_port);
    wait_until("the client to be acked for every window", || {
        client.0.try_wait().unwrap().is_some()
    });
    let status = client.0.wait().unwrap();
    let mut err = String::new();
    if let Some(e) = client.0.stderr.as_mut() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "pylogbeat failed: {err}");
    wait_until("200 documents in the search index", || {
        let _ = get(es_port, "/beats/_refresh");
        count(es_port, "beats") >= 200
    });
    let mut ids: Vec<u64> = records(&archive)
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..200).collect::<Vec<u64>>(),
        "the archive lost or doubled events"
    );
    assert_eq!(count(es_port, "beats"), 200);

    // Node stats show each pipeline with its own figures.
    let (status, stats) = get(api_port, "/_node/stats/pipelines").expect("the api answers");
    assert_eq!(status, 200);
    for id in ["intake", "archive", "search"] {
        let events = &stats["pipelines"][id]["events"];
        assert_eq!(events["out"], 200, "{id}: {stats}");
    }
    assert_eq!(
        stats["pipelines"]["intake"]["plugins"]["inputs"][0]["name"],
        "beats"
    );
    assert_eq!(
        stats["pipelines"]["search"]["plugins"]["outputs"][0]["name"],
        "elasticsearch"
    );

    // A signal stops every pipeline, the downstream ones after the upstream drained.
    let pid = sluice.0.id();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_until("sluice to stop after SIGTERM", || {
        sluice.0.try_wait().unwrap().is_some()
    });
    assert!(sluice.0.wait().unwrap().success());
}
