//! No secret is ever printed: `-t` output and stderr of the `sluice` binary over
//! configurations that hold each kind of secret (a literal `password`, `api_key`, a
//! password in a host URL), in syntax errors, option errors, and at run time with debug
//! logs. Also the configurations that would send credentials in clear text are refused.

mod common;

use common::run;

const SECRET: &str = "Hunter2Secret";

/// Runs `sluice -t -e config` and returns (success, stdout + stderr).
fn check(config: &str) -> (bool, String) {
    let out = run(&["-t", "-e", config], b"");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET), "a secret was printed:\n{text}");
}

#[test]
fn a_syntax_error_on_a_line_with_a_password_masks_it() {
    let config = format!(
        "input {{ stdin {{}} }}\noutput {{ elasticsearch {{ user => \"u\" password => \"{SECRET}\" hosts => [ }} }}"
    );
    let (ok, text) = check(&config);
    assert!(!ok, "a broken config passed: {text}");
    assert!(text.contains("syntax error"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert_no_secret(&text);
}

#[test]
fn a_syntax_error_at_the_secret_itself_does_not_quote_it() {
    // The unterminated string is the token the error is about.
    let config = format!("output {{ elasticsearch {{ api_key => \"{SECRET} }} }}");
    let (ok, text) = check(&config);
    assert!(!ok, "a broken config passed: {text}");
    assert_no_secret(&text);
    let config = format!("output {{ elasticsearch {{ token => {SECRET} => }} }}");
    let (ok, text) = check(&config);
    assert!(!ok, "a broken config passed: {text}");
    assert_no_secret(&text);
}

#[test]
fn an_option_error_next_to_a_password_does_not_print_it() {
    let config = format!(
        "input {{ stdin {{}} }} output {{ elasticsearch {{ hosts => [\"https://es:9200\"] user => \"u\" password => \"{SECRET}\" no_such_option => 1 }} }}"
    );
    let (ok, text) = check(&config);
    assert!(!ok, "an unknown option passed: {text}");
    assert_no_secret(&text);
}

#[test]
fn an_invalid_host_with_credentials_is_redacted() {
    let config = format!(
        "input {{ stdin {{}} }} output {{ elasticsearch {{ hosts => [\"https://elastic:{SECRET}@bad host:9200\"] }} }}"
    );
    let (ok, text) = check(&config);
    assert!(!ok, "an invalid host passed: {text}");
    assert!(text.contains("invalid host"), "{text}");
    assert_no_secret(&text);
}

#[test]
fn https_with_ssl_disabled_is_a_configuration_error() {
    let config = format!(
        "input {{ stdin {{}} }} output {{ elasticsearch {{ hosts => [\"https://es:9200\"] ssl_enabled => false user => \"u\" password => \"{SECRET}\" }} }}"
    );
    let (ok, text) = check(&config);
    assert!(!ok, "https:// with ssl_enabled => false passed: {text}");
    assert_no_secret(&text);
}

#[test]
fn credentials_over_plain_http_need_allow_insecure_auth() {
    for auth in [
        format!("user => \"u\" password => \"{SECRET}\""),
        format!("api_key => \"{SECRET}\""),
    ] {
        let config = format!(
            "input {{ stdin {{}} }} output {{ elasticsearch {{ hosts => [\"http://es:9200\"] {auth} }} }}"
        );
        let (ok, text) = check(&config);
        assert!(!ok, "credentials over http passed: {text}");
        assert_no_secret(&text);
        let config = format!(
            "input {{ stdin {{}} }} output {{ elasticsearch {{ hosts => [\"http://es:9200\"] {auth} allow_insecure_auth => true }} }}"
        );
        let (ok, text) = check(&config);
        assert!(ok, "allow_insecure_auth => true was refused: {text}");
        assert_no_secret(&text);
    }
}

/// Runs `sluice -e config` with debug logs for a few seconds, against a port nobody
/// listens on, and returns what it printed.
fn run_for_a_while(config: &str) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(["--log.level", "debug", "-e", config]);
    let mut child = common::spawn(cmd);
    // Long enough for a few connection attempts and their retries to be logged.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut text = String::new();
    if let Some(mut err) = child.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
    }
    if let Some(mut out) = child.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut text);
    }
    text
}

#[test]
fn run_time_logs_do_not_print_credentials() {
    // A host nobody listens on: every bulk request fails to connect, and the failure,
    // the host and its retries are logged.
    let port = common::free_port();
    for auth in [
        format!("hosts => [\"https://elastic:{SECRET}@127.0.0.1:{port}\"]"),
        format!("hosts => [\"https://127.0.0.1:{port}\"] api_key => \"{SECRET}\""),
        format!(
            "hosts => [\"https://127.0.0.1:{port}\"] user => \"elastic\" password => \"{SECRET}\""
        ),
    ] {
        let config = format!(
            "input {{ generator {{ count => 1 }} }} output {{ elasticsearch {{ {auth} manage_template => false }} }}"
        );
        let text = run_for_a_while(&config);
        // The run got as far as sending: the failed connection was logged, with its host.
        assert!(
            text.contains(&format!("127.0.0.1:{port}")) && text.contains("connect"),
            "no connection failure was logged for {auth}:\n{text}"
        );
        assert_no_secret(&text);
    }
}

#[test]
fn credentials_in_a_host_url_and_in_options_are_refused() {
    let config = format!(
        "input {{ stdin {{}} }} output {{ elasticsearch {{ hosts => [\"https://elastic:{SECRET}@es:9200\"] user => \"u\" password => \"{SECRET}\" }} }}"
    );
    let (ok, text) = check(&config);
    assert!(!ok, "two sets of credentials passed: {text}");
    assert!(text.contains("credentials"), "{text}");
    assert_no_secret(&text);
}
