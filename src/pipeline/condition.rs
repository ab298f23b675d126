//! Conditions compiled once from the AST: field references parsed, regexes built,
//! literals converted, so a worker evaluates them without re-parsing anything.

use crate::config::ast::{self, BoolOp, CompareOp, ConditionKind, RvalueKind};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::grok::compiler::Expanded;
use crate::grok::matcher::Matcher;
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A regex of a condition, read as Ruby reads it (Logstash evaluates `=~` with Ruby's
/// `Regexp`): `^` and `$` anchor at lines, a `{` that starts no `{n,m}` is a literal,
/// `\h` is a hex digit, `\A`, `\z`, `\Z`, named groups, atomic groups, possessive
/// quantifiers and look-around all work. It runs on grok's engines.
#[derive(Debug, Clone)]
pub struct Regex {
    text: String,
    matcher: Arc<Matcher>,
}

/// How long one `=~` may backtrack before it counts as no match. Ruby has no bound;
/// a condition that runs away should not hold a worker forever.
const REGEX_BUDGET: Duration = Duration::from_secs(10);

impl Regex {
    /// Compiles `pattern` as Ruby would.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let matcher = Matcher::new(&Expanded::ruby_regex(pattern), REGEX_BUDGET)
            .map_err(|e| e.to_string())?;
        Ok(Regex {
            text: pattern.to_string(),
            matcher: Arc::new(matcher),
        })
    }

    /// Whether the regex matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }

    /// The regex as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// An operand of a condition.
#[derive(Debug, Clone)]
pub enum Operand {
    Field(FieldRef),
    Const(Value),
    Regex(Regex),
}

impl Operand {
    fn value<'a>(&'a self, event: &'a Event) -> Option<&'a Value> {
        match self {
            Operand::Field(r) => event.get(r),
            Operand::Const(v) => Some(v),
            Operand::Regex(_) => None,
        }
    }
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Xor(Box<Condition>, Box<Condition>),
    Nand(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare(Operand, CompareOp, Operand),
    Match {
        left: Operand,
        regex: Regex,
        negate: bool,
    },
    In {
        left: Operand,
        right: Operand,
        negate: bool,
    },
    Truthy(Operand),
}

impl Condition {
    pub fn compile(c: &ast::Condition) -> Result<Condition, Error> {
        Ok(match &c.kind {
            ConditionKind::Boolean(a, op, b) => {
                let (a, b) = (Box::new(Self::compile(a)?), Box::new(Self::compile(b)?));
                match op {
                    BoolOp::And => Condition::And(a, b),
                    BoolOp::Or => Condition::Or(a, b),
                    BoolOp::Xor => Condition::Xor(a, b),
                    BoolOp::Nand => Condition::Nand(a, b),
                }
            }
            ConditionKind::Not(inner) => Condition::Not(Box::new(Self::compile(inner)?)),
            ConditionKind::Compare(l, op, r) => Condition::Compare(operand(l)?, *op, operand(r)?),
            ConditionKind::Match {
                left,
                pattern,
                negate,
            } => {
                let regex = match operand(pattern)? {
                    Operand::Regex(re) => re,
                    Operand::Const(Value::String(s)) => compile_regex(&s, &pattern.pos)?,
                    _ => {
                        return Err(Error::invalid(
                            &pattern.pos,
                            "the right side of =~ and !~ must be a regex or a string",
                        ))
                    }
                };
                Condition::Match {
                    left: operand(left)?,
                    regex,
                    negate: *negate,
                }
            }
            ConditionKind::In {
                left,
                right,
                negate,
            } => Condition::In {
                left: operand(left)?,
                right: operand(right)?,
                negate: *negate,
            },
            ConditionKind::Truthy(r) => Condition::Truthy(operand(r)?),
        })
    }

    /// Evaluates the condition against an event.
    pub fn eval(&self, e: &Event) -> bool {
        match self {
            Condition::And(a, b) => a.eval(e) && b.eval(e),
            Condition::Or(a, b) => a.eval(e) || b.eval(e),
            Condition::Xor(a, b) => a.eval(e) != b.eval(e),
            Condition::Nand(a, b) => !(a.eval(e) && b.eval(e)),
            Condition::Not(c) => !c.eval(e),
            Condition::Compare(l, op, r) => compare(l.value(e), *op, r.value(e)),
            Condition::Match {
                left,
                regex,
                negate,
            } => {
                let matched = match left.value(e) {
                    Some(Value::String(s)) => regex.is_match(s),
                    Some(v @ (Value::Int(_) | Value::Float(_) | Value::Bool(_))) => {
                        regex.is_match(&v.to_display_string())
                    }
                    _ => false,
                };
                matched != *negate
            }
            Condition::In {
                left,
                right,
                negate,
            } => contains(right.value(e), left.value(e)) != *negate,
            Condition::Truthy(op) => match op {
                Operand::Regex(_) => true,
                other => other.value(e).is_some_and(Value::is_truthy),
            },
        }
    }
}

fn compile_regex(pattern: &str, pos: &ast::Pos) -> Result<Regex, Error> {
    Regex::new(pattern).map_err(|e| Error::invalid(pos, format!("invalid regular expression: {e}")))
}

fn operand(r: &ast::Rvalue) -> Result<Operand, Error> {
    Ok(match &r.kind {
        RvalueKind::String(s) => Operand::Const(Value::String(s.clone())),
        RvalueKind::Number(n) => Operand::Const(number(n, &r.pos)?),
        RvalueKind::Selector(s) => {
            Operand::Field(FieldRef::parse(s).map_err(|e| Error::invalid(&r.pos, e.to_string()))?)
        }
        RvalueKind::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match operand(item)? {
                    Operand::Const(v) => values.push(v),
                    _ => {
                        return Err(Error::invalid(
                            &item.pos,
                            "array literals in conditions may hold only strings and numbers",
                        ))
                    }
                }
            }
            Operand::Const(Value::Array(values))
        }
        RvalueKind::Regex(re) => Operand::Regex(compile_regex(re, &r.pos)?),
        RvalueKind::MethodCall { name, .. } => {
            return Err(Error::invalid(
                &r.pos,
                format!("method calls like `{name}(...)` are not supported in conditions"),
            ))
        }
    })
}

fn number(text: &str, pos: &ast::Pos) -> Result<Value, Error> {
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    text.parse::<f64>()
        .map(Value::Float)
        .map_err(|_| Error::invalid(pos, format!("invalid number `{text}`")))
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Timestamp(t), Value::String(s)) | (Value::String(s), Value::Timestamp(t)) => {
            t.to_iso8601() == *s
        }
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn compare(l: Option<&Value>, op: CompareOp, r: Option<&Value>) -> bool {
    match op {
        CompareOp::Eq => match (l, r) {
            (Some(a), Some(b)) => equal(a, b),
            (None, None) => true,
            _ => false,
        },
        CompareOp::Ne => !compare(l, CompareOp::Eq, r),
        _ => {
            let (Some(a), Some(b)) = (l, r) else {
                return false;
            };
            let Some(ord) = order(a, b) else {
                return false;
            };
            match op {
                CompareOp::Lt => ord == Ordering::Less,
                CompareOp::Gt => ord == Ordering::Greater,
                CompareOp::Le => ord != Ordering::Greater,
                CompareOp::Ge => ord != Ordering::Less,
                CompareOp::Eq | CompareOp::Ne => false,
            }
        }
    }
}

/// Logstash's `in`: membership in an array, a substring of a string, a key of a map.
fn contains(haystack: Option<&Value>, needle: Option<&Value>) -> bool {
    let (Some(h), Some(n)) = (haystack, needle) else {
        return false;
    };
    match h {
        Value::Array(items) => items.iter().any(|i| equal(i, n)),
        Value::String(s) => match n {
            Value::String(sub) => s.contains(sub.as_str()),
            other => s.contains(&other.to_display_string()),
        },
        Value::Map(m) => n.as_str().is_some_and(|k| m.contains_key(k)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::Regex;

    fn matches(re: &str, text: &str) -> bool {
        Regex::new(re)
            .unwrap_or_else(|e| panic!("{re}: {e}"))
            .is_match(text)
    }

    #[test]
    fn ruby_regex_syntax_in_conditions() {
        // A `{` that starts no quantifier is a literal.
        assert!(matches(r"^{.*}$", r#"{"a":1}"#));
        assert!(!matches(r"^{.*}$", "plain"));
        assert!(matches(r"a{2}", "xaay"));
        assert!(matches(r"x{,2}y", "xxy"));
        // `^` and `$` anchor at lines.
        assert!(matches(r"^b$", "a\nb\nc"));
        // ... but `\A`, `\z` and `\Z` at the text.
        assert!(!matches(r"\Ab", "a\nb"));
        assert!(matches(r"a\z", "ba"));
        assert!(!matches(r"a\z", "a\n"));
        assert!(matches(r"a\Z", "a\n"));
        // `.` stops at a newline in a condition (Ruby without /m).
        assert!(!matches(r"a.b", "a\nb"));
        // `\h` is a hex digit, in and out of a class.
        assert!(matches(r"^\h+$", "09afAF"));
        assert!(!matches(r"^\h+$", "0x"));
        assert!(matches(r"^[\h-]+$", "ab-12"));
        // Named, atomic and possessive groups; look-around.
        assert!(matches(r"(?<word>\w+) \k<word>", "hey hey"));
        assert!(!matches(r"(?>a+)a", "aaa"));
        assert!(!matches(r"a++a", "aaa"));
        assert!(matches(r"foo(?=bar)", "foobar"));
        assert!(matches(r"(?<!x)y", "ay"));
        assert!(matches(r"(?i)ERROR", "error"));
    }
}
