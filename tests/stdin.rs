//! The stdin input decodes blocks of lines on several threads: what comes out must be
//! what one thread would have made, in the same order.

mod common;

use common::run;

/// With one worker (`pipeline.ordered` then holds), events leave in the order of their
/// lines although the blocks they came in were decoded in parallel; bad lines among
/// them are tagged in place, and nothing is lost.
#[test]
fn lines_decoded_in_parallel_keep_their_order_with_one_worker() {
    const LINES: usize = 60_000;
    let mut input = String::new();
    for n in 0..LINES {
        if n % 997 == 0 {
            input.push_str(&format!("not json {n}\n"));
        } else {
            input.push_str(&format!(
                "{{\"n\":{n},\"pad\":\"{}\",\"nested\":{{\"a\":[1,2.5,null]}}}}\n",
                "x".repeat(n % 40)
            ));
        }
    }
    let out = run(
        &[
            "-w",
            "1",
            "-e",
            r#"input { stdin { codec => json_lines } } output { stdout { codec => json_lines } }"#,
        ],
        input.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut count = 0;
    for (i, line) in stdout.lines().enumerate() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if i % 997 == 0 {
            assert_eq!(
                event["message"],
                format!("not json {i}"),
                "line {i}: {line}"
            );
            assert_eq!(event["tags"][0], "_jsonparsefailure", "line {i}: {line}");
        } else {
            assert_eq!(event["n"], i, "line {i} out of order: {line}");
            assert_eq!(event["nested"]["a"][1], 2.5, "line {i}: {line}");
        }
        count += 1;
    }
    assert_eq!(count, LINES);
}
