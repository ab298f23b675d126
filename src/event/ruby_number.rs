//! Ruby's lenient number reading (`String#to_i`, `String#to_f`), which Logstash's
//! plugins inherit: a grok `:int` capture, a syslog priority or a mutate conversion of
//! `"12abc"` reads the leading number and ignores the rest instead of failing.

/// Ruby's `String#to_i`: leading whitespace, an optional sign, digits; 0 otherwise.
pub fn ruby_to_i(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit() && b != b'_')
        .unwrap_or(digits.len());
    let mut n: i64 = 0;
    for b in digits[..end].bytes().filter(|b| *b != b'_') {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

/// Ruby's `String#to_f`: the longest leading float; 0.0 otherwise.
pub fn ruby_to_f(s: &str) -> f64 {
    let t = s.trim_start();
    if let Ok(f) = t.parse::<f64>() {
        if f.is_finite() {
            return f;
        }
    }
    let b = t.as_bytes();
    let mut end = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    let mut seen_dot = false;
    let mut seen_exp = false;
    while end < b.len() {
        match b[end] {
            b'0'..=b'9' => {}
            b'.' if !seen_dot && !seen_exp => seen_dot = true,
            b'e' | b'E' if !seen_exp && end > 0 => {
                seen_exp = true;
                if matches!(b.get(end + 1), Some(b'+' | b'-')) {
                    end += 1;
                }
            }
            _ => break,
        }
        end += 1;
    }
    while end > 0 {
        if let Ok(f) = t[..end].parse::<f64>() {
            return f;
        }
        end -= 1;
    }
    0.0
}
