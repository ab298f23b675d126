//! The grok compiler: expands `%{SYNTAX:SEMANTIC:TYPE}` references into one regex,
//! records which regex group feeds which field, and rewrites the regex for the
//! fastest engine that can run it.
//!
//! Logstash's patterns are written for Oniguruma and use look-around and atomic
//! groups. The compiler parses the expanded regex into a small tree and, where it can
//! prove a look-around always holds (a `(?![0-9])` that is always followed by a space,
//! say), drops it, so the whole pattern runs on the `regex` crate: finite automata, no
//! backtracking, no runaway. Atomic groups become plain groups there; in the library's
//! patterns they only guard against backtracking and never change what matches (the
//! tests compare both engines on the corpus). A pattern that still needs look-around or
//! back-references runs on `fancy-regex`, a backtracking engine with a budget.

use super::library::PatternLibrary;
use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind};

/// Why a grok pattern cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("pattern %{{{0}}} is not defined")]
    UnknownPattern(String),
    #[error("pattern %{{{0}}} refers to itself")]
    Recursive(String),
    #[error("invalid field name `{0}`")]
    BadField(String),
    #[error("invalid regex: {0}")]
    Regex(String),
}

/// A type conversion written as `%{NUMBER:bytes:int}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    None,
    Int,
    Float,
}

/// One named capture of the expanded regex.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureSpec {
    /// The regex group name (`_g0`, `_g1`, ...).
    pub group: String,
    /// The field as written (`bytes`, `[http][status]`).
    pub field: String,
    pub conversion: Conversion,
}

/// A pattern expanded into one regex.
#[derive(Debug, Clone)]
pub struct Expanded {
    /// The regex in Oniguruma syntax with Sluice's group names.
    pub regex: String,
    pub captures: Vec<CaptureSpec>,
    /// `.` matches a newline too. Logstash's grok compiles every pattern with Ruby's
    /// `Regexp::MULTILINE`, which is that; a `=~` condition's regex has it off.
    pub dot_matches_newline: bool,
}

impl Expanded {
    /// A Ruby regex as written (no `%{...}` to expand, no captures), as a condition's
    /// `=~` uses it.
    pub fn ruby_regex(regex: &str) -> Expanded {
        Expanded {
            regex: regex.to_string(),
            captures: Vec::new(),
            dot_matches_newline: false,
        }
    }
}

const MAX_DEPTH: usize = 64;

/// Expands every `%{...}` of `pattern` against `lib`. With `named_captures_only`,
/// `%{SYNTAX}` without a field captures nothing; without it, it captures into a field
/// named after the pattern, as Logstash does.
pub fn expand(
    pattern: &str,
    lib: &PatternLibrary,
    named_captures_only: bool,
) -> Result<Expanded, CompileError> {
    let mut ex = Expander {
        lib,
        named_captures_only,
        captures: Vec::new(),
        stack: Vec::new(),
    };
    let regex = ex.expand(pattern)?;
    Ok(Expanded {
        regex,
        captures: ex.captures,
        dot_matches_newline: true,
    })
}

struct Expander<'a> {
    lib: &'a PatternLibrary,
    named_captures_only: bool,
    captures: Vec<CaptureSpec>,
    stack: Vec<String>,
}

impl Expander<'_> {
    fn new_group(&mut self, field: &str, conversion: Conversion) -> Result<String, CompileError> {
        crate::event::field_ref::FieldRef::parse(field)
            .map_err(|_| CompileError::BadField(field.to_string()))?;
        let group = format!("_g{}", self.captures.len());
        self.captures.push(CaptureSpec {
            group: group.clone(),
            field: field.to_string(),
            conversion,
        });
        Ok(group)
    }

    fn expand(&mut self, text: &str) -> Result<String, CompileError> {
        if self.stack.len() > MAX_DEPTH {
            return Err(CompileError::Recursive(
                self.stack.last().cloned().unwrap_or_default(),
            ));
        }
        let mut out = String::with_capacity(text.len() * 2);
        let mut rest = text;
        while let Some(i) = rest.find(['%', '(', '\\', '[']) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix('\\') {
                // Keep an escape and the character it escapes together.
                let n = after.chars().next().map_or(0, char::len_utf8);
                out.push_str(&tail[..1 + n]);
                rest = &after[n..];
            } else if tail.starts_with('[') {
                let n = class_len(tail);
                out.push_str(&tail[..n]);
                rest = &tail[n..];
            } else if let Some(reference) = Reference::parse(tail) {
                out.push_str(&self.reference(&reference)?);
                rest = &tail[reference.len..];
            } else if let Some((name, len)) = user_group_name(tail) {
                let group = self.new_group(name, Conversion::None)?;
                out.push_str("(?<");
                out.push_str(&group);
                out.push('>');
                rest = &tail[len..];
            } else {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Expands one `%{SYNTAX}`, `%{SYNTAX:field}` or `%{SYNTAX:field:type}`.
    fn reference(&mut self, r: &Reference<'_>) -> Result<String, CompileError> {
        let name = r.name;
        let definition = self
            .lib
            .get(name)
            .ok_or_else(|| CompileError::UnknownPattern(name.to_string()))?;
        if self.stack.iter().any(|n| n == name) {
            return Err(CompileError::Recursive(name.to_string()));
        }
        let group = match r.field {
            Some(f) => Some(self.new_group(f, r.conversion)?),
            None if !self.named_captures_only => Some(self.new_group(name, r.conversion)?),
            None => None,
        };
        self.stack.push(name.to_string());
        let inner = self.expand(definition)?;
        self.stack.pop();
        Ok(match group {
            Some(g) => format!("(?<{g}>{inner})"),
            None => format!("(?:{inner})"),
        })
    }
}

/// A `%{...}` reference as Logstash's grok reads it: `%{`, a name of
/// `[A-Za-z0-9_]`, optionally `:` and a semantic of `[@\[\]A-Za-z0-9_:.-]`, then
/// anything but `}` (ignored) and `}`. Text that does not read so (`%{ NAME}`, a `%{`
/// never closed) is not a reference and stays literal text of the regex.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference<'a> {
    name: &'a str,
    /// The field, when the semantic names one.
    field: Option<&'a str>,
    conversion: Conversion,
    /// Bytes of the whole reference, `%{` to `}`.
    len: usize,
}

impl<'a> Reference<'a> {
    fn parse(s: &'a str) -> Option<Reference<'a>> {
        let body = s.strip_prefix("%{")?;
        let name_len = body
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))
            .unwrap_or(body.len());
        if name_len == 0 {
            return None;
        }
        let name = &body[..name_len];
        let after = &body[name_len..];
        let semantic = after.strip_prefix(':').map(|sem| {
            let n = sem
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b"@[]_:.-".contains(&b)))
                .unwrap_or(sem.len());
            &sem[..n]
        });
        let close = body.find('}')?;
        // `pattern:field:type`; Logstash converts `int` and `float` and leaves every
        // other type (`string`, a typo) a string.
        let mut parts = semantic.unwrap_or("").split(':');
        let field = parts.next().filter(|f| !f.is_empty());
        let conversion = match parts.next() {
            Some("int") | Some("integer") => Conversion::Int,
            Some("float") => Conversion::Float,
            _ => Conversion::None,
        };
        Some(Reference {
            name,
            field,
            conversion,
            len: 2 + close + 1,
        })
    }
}

/// `(?<name>` or `(?P<name>` at the start of `s` (not look-behind): name and length.
fn user_group_name(s: &str) -> Option<(&str, usize)> {
    let (prefix, rest) = if let Some(r) = s.strip_prefix("(?<") {
        (3, r)
    } else if let Some(r) = s.strip_prefix("(?P<") {
        (4, r)
    } else {
        return None;
    };
    if rest.starts_with(['=', '!']) {
        return None;
    }
    let end = rest.find('>')?;
    let name = &rest[..end];
    if name.is_empty() || name.contains(['(', ')', '|']) {
        return None;
    }
    Some((name, prefix + end + 1))
}

/// Length of the bracket expression at the start of `s` (which starts with `[`).
fn class_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 1;
    if b.get(i) == Some(&b'^') {
        i += 1;
    }
    if b.get(i) == Some(&b']') {
        i += 1;
    }
    let mut depth = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    s.len()
}

/// A bracket expression with Oniguruma's `\h` (hex digit) written out: the other
/// engines read `\h` as horizontal space or reject it.
fn class_hex_digits(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str("0-9a-fA-F"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A bracket expression as PCRE2 reads it. Oniguruma (like the `regex` crate) nests
/// classes, `[[[:alnum:]]_.-]`, where PCRE2 would read the inner `[` as a literal and
/// close the class early; a nested positive class is a union, so its members move up
/// into the outer class. `None` for what PCRE2 has no spelling of (a negated nested
/// class, `&&` intersection).
fn class_for_pcre2(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    if raw.contains("&&") {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    let mut depth = 0usize;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' => {
                let n = raw[i + 1..].chars().next().map_or(0, char::len_utf8);
                out.push_str(&raw[i..i + 1 + n]);
                i += 1 + n;
                continue;
            }
            b'[' if depth > 0 && raw[i..].starts_with("[:") => {
                let end = raw[i..].find(":]")?;
                let posix = &raw[i..i + end + 2];
                out.push_str(unicode_posix(posix).unwrap_or(posix));
                i += end + 2;
                continue;
            }
            b'[' => {
                depth += 1;
                if depth == 1 {
                    out.push('[');
                    i += 1;
                    if b.get(i) == Some(&b'^') {
                        out.push('^');
                        i += 1;
                    }
                    // A `]` first in the class is a literal.
                    if b.get(i) == Some(&b']') {
                        out.push_str("\\]");
                        i += 1;
                    }
                } else {
                    if b.get(i + 1) == Some(&b'^') {
                        return None;
                    }
                    i += 1;
                }
                continue;
            }
            b']' => {
                if depth == 0 {
                    return None;
                }
                depth -= 1;
                if depth == 0 {
                    out.push(']');
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        let n = raw[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&raw[i..i + n]);
        i += n;
    }
    (depth == 0).then_some(out)
}

/// Oniguruma's POSIX classes are Unicode classes, PCRE2's (without UCP, which would
/// also widen `\w`, `\d` and `\s` past Ruby's ASCII ones) are ASCII: the
/// properties Ruby documents for them, for the ones log patterns use.
fn unicode_posix(posix: &str) -> Option<&'static str> {
    Some(match posix {
        "[:alpha:]" => "\\p{L}\\p{M}",
        "[:alnum:]" => "\\p{L}\\p{M}\\p{Nd}",
        "[:digit:]" => "\\p{Nd}",
        "[:upper:]" => "\\p{Lu}",
        "[:lower:]" => "\\p{Ll}",
        "[:word:]" => "\\p{L}\\p{M}\\p{Nd}\\p{Pc}",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------
// The regex tree.

#[derive(Debug, Clone)]
enum Node {
    /// Consumes exactly one character: a literal, a class, `.`, `\d`, ...
    Atom(String),
    /// Zero-width and supported everywhere: `^`, `$`, `\b`, `\B`, `\A`, `\z`.
    Assert(&'static str),
    Group(GroupKind, Vec<Vec<Node>>),
    Look {
        behind: bool,
        negative: bool,
        alts: Vec<Vec<Node>>,
    },
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
        /// The quantifier as written, without a possessive `+`.
        quant: String,
        possessive: bool,
    },
    Backref(String),
    /// Inline flags `(?i)`, already translated.
    Flags(String),
}

#[derive(Debug, Clone)]
enum GroupKind {
    NonCapture,
    /// A plain `( )`: Oniguruma does not capture it when named groups exist.
    Plain,
    Named(String),
    Atomic,
    Flags(String),
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
    saw_case_flag: bool,
    dot_all: bool,
}

impl<'a> Parser<'a> {
    fn err(&self, m: &str) -> CompileError {
        CompileError::Regex(format!("{m} at offset {} of `{}`", self.i, self.s))
    }

    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.s[self.i..].starts_with(p) {
            self.i += p.len();
            true
        } else {
            false
        }
    }

    fn alts(&mut self) -> Result<Vec<Vec<Node>>, CompileError> {
        let mut alts = vec![self.seq()?];
        while self.eat("|") {
            alts.push(self.seq()?);
        }
        Ok(alts)
    }

    fn seq(&mut self) -> Result<Vec<Node>, CompileError> {
        let mut nodes = Vec::new();
        while let Some(c) = self.peek() {
            let node = match c {
                '|' | ')' => break,
                '(' => self.group()?,
                '[' => {
                    let n = class_len(&self.s[self.i..]);
                    let raw = &self.s[self.i..self.i + n];
                    self.i += n;
                    Node::Atom(class_hex_digits(raw))
                }
                '\\' => self.escape()?,
                '.' => {
                    self.i += 1;
                    Node::Atom(if self.dot_all { "(?s:.)" } else { "." }.into())
                }
                '^' => {
                    self.i += 1;
                    Node::Assert("^")
                }
                '$' => {
                    self.i += 1;
                    Node::Assert("$")
                }
                '*' | '+' | '?' => return Err(self.err("quantifier without an operand")),
                _ => {
                    self.bump();
                    Node::Atom(regex_syntax::escape(c.encode_utf8(&mut [0; 4])))
                }
            };
            let node = self.quantifiers(node)?;
            nodes.push(node);
        }
        Ok(nodes)
    }

    fn quantifiers(&mut self, mut node: Node) -> Result<Node, CompileError> {
        loop {
            let start = self.i;
            let (min, max) = match self.peek() {
                Some('*') => {
                    self.i += 1;
                    (0, None)
                }
                Some('+') => {
                    self.i += 1;
                    (1, None)
                }
                Some('?') => {
                    self.i += 1;
                    (0, Some(1))
                }
                Some('{') => match counted(&self.s[self.i..]) {
                    Some((min, max, len)) => {
                        self.i += len;
                        (min, max)
                    }
                    None => return Ok(node),
                },
                _ => return Ok(node),
            };
            let mut quant = self.s[start..self.i].to_string();
            if quant.starts_with("{,") {
                quant = format!("{{0,{}", &quant[2..]);
            }
            if self.eat("?") {
                quant.push('?');
            }
            let possessive = self.eat("+");
            if matches!(node, Node::Assert(_) | Node::Look { .. }) {
                // A repeated assertion asserts the same thing (or nothing if min = 0).
                if min == 0 {
                    node = Node::Group(GroupKind::NonCapture, vec![vec![]]);
                }
                continue;
            }
            node = Node::Repeat {
                node: Box::new(node),
                min,
                max,
                quant,
                possessive,
            };
        }
    }

    fn escape(&mut self) -> Result<Node, CompileError> {
        self.i += 1;
        let c = self.bump().ok_or_else(|| self.err("trailing backslash"))?;
        Ok(match c {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => Node::Atom(format!("\\{c}")),
            'h' => Node::Atom("[0-9a-fA-F]".into()),
            'H' => Node::Atom("[^0-9a-fA-F]".into()),
            'b' => Node::Assert("\\b"),
            'B' => Node::Assert("\\B"),
            'A' => Node::Assert("\\A"),
            'z' => Node::Assert("\\z"),
            'Z' => Node::Assert("\\Z"),
            'n' | 't' | 'r' | 'f' | 'v' | 'a' => Node::Atom(format!("\\{c}")),
            'e' => Node::Atom("\\x1B".into()),
            'p' | 'P' => {
                let start = self.i;
                if self.eat("{") {
                    let end = self.s[self.i..]
                        .find('}')
                        .ok_or_else(|| self.err("unterminated \\p{"))?;
                    self.i += end + 1;
                } else {
                    self.bump();
                }
                Node::Atom(format!("\\{c}{}", &self.s[start..self.i]))
            }
            'x' => {
                let start = self.i;
                if self.eat("{") {
                    let end = self.s[self.i..]
                        .find('}')
                        .ok_or_else(|| self.err("unterminated \\x{"))?;
                    self.i += end + 1;
                } else {
                    for _ in 0..2 {
                        if self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                            self.i += 1;
                        }
                    }
                }
                Node::Atom(format!("\\x{}", &self.s[start..self.i]))
            }
            'u' => {
                let start = self.i;
                for _ in 0..4 {
                    if self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                        self.i += 1;
                    }
                }
                Node::Atom(format!("\\x{{{}}}", &self.s[start..self.i]))
            }
            'k' => {
                let start = self.i - 2;
                if self.eat("<") {
                    let end = self.s[self.i..]
                        .find('>')
                        .ok_or_else(|| self.err("unterminated \\k<"))?;
                    self.i += end + 1;
                }
                Node::Backref(self.s[start..self.i].to_string())
            }
            '1'..='9' => Node::Backref(format!("\\{c}")),
            'G' | '0' => return Err(self.err("unsupported escape")),
            other => Node::Atom(regex_syntax::escape(other.encode_utf8(&mut [0; 4]))),
        })
    }

    fn group(&mut self) -> Result<Node, CompileError> {
        self.i += 1;
        let node = if self.eat("?#") {
            let end = self.s[self.i..]
                .find(')')
                .ok_or_else(|| self.err("unterminated comment"))?;
            self.i += end + 1;
            return Ok(Node::Group(GroupKind::NonCapture, vec![vec![]]));
        } else if self.eat("?:") {
            Node::Group(GroupKind::NonCapture, self.alts()?)
        } else if self.eat("?>") {
            Node::Group(GroupKind::Atomic, self.alts()?)
        } else if self.eat("?=") {
            self.look(false, false)?
        } else if self.eat("?!") {
            self.look(false, true)?
        } else if self.eat("?<=") {
            self.look(true, false)?
        } else if self.eat("?<!") {
            self.look(true, true)?
        } else if self.eat("?<") || self.eat("?P<") {
            let end = self.s[self.i..]
                .find('>')
                .ok_or_else(|| self.err("unterminated group name"))?;
            let name = self.s[self.i..self.i + end].to_string();
            self.i += end + 1;
            Node::Group(GroupKind::Named(name), self.alts()?)
        } else if self.eat("?") {
            let start = self.i;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '-')
            {
                self.i += 1;
            }
            let flags = translate_flags(&self.s[start..self.i]);
            if flags.contains('i') {
                self.saw_case_flag = true;
            }
            if self.eat(")") {
                return Ok(Node::Flags(flags));
            }
            if !self.eat(":") {
                return Err(self.err("unsupported group syntax"));
            }
            Node::Group(GroupKind::Flags(flags), self.alts()?)
        } else {
            Node::Group(GroupKind::Plain, self.alts()?)
        };
        if !self.eat(")") {
            return Err(self.err("missing `)`"));
        }
        Ok(node)
    }

    fn look(&mut self, behind: bool, negative: bool) -> Result<Node, CompileError> {
        Ok(Node::Look {
            behind,
            negative,
            alts: self.alts()?,
        })
    }
}

/// Oniguruma's (Ruby's) `m` is "dot matches newline", the `regex` crate's `s`.
fn translate_flags(f: &str) -> String {
    f.chars()
        .filter(|c| matches!(c, 'i' | 'm' | 'x' | '-'))
        .map(|c| if c == 'm' { 's' } else { c })
        .collect()
}

/// `{n}`, `{n,}`, `{n,m}`, `{,m}` at the start of `s`: (min, max, length).
fn counted(s: &str) -> Option<(u32, Option<u32>, usize)> {
    let end = s.find('}')?;
    let body = &s[1..end];
    let (min, max) = match body.split_once(',') {
        None => {
            let n = body.parse().ok()?;
            (n, Some(n))
        }
        Some((a, b)) => {
            let min = if a.is_empty() { 0 } else { a.parse().ok()? };
            let max = if b.is_empty() {
                None
            } else {
                Some(b.parse().ok()?)
            };
            (min, max)
        }
    };
    if body.is_empty() || body == "," {
        return None;
    }
    Some((min, max, end + 1))
}

// ---------------------------------------------------------------------------------
// Character sets at the edges of a node, to prove a look-around redundant.

/// What may come next to a position: characters, and whether the pattern's edge
/// (where the text is unknown) is reachable.
#[derive(Debug, Clone)]
struct Edge {
    class: ClassUnicode,
    /// The pattern's start (for look-behind) or end (look-ahead) is reachable.
    open: bool,
    /// Nothing at all stands between here and the pattern's edge.
    clean: bool,
}

/// Characters the edge of a sequence may consume, and whether it can be empty.
struct EdgeInfo {
    class: ClassUnicode,
    nullable: bool,
}

fn empty_class() -> ClassUnicode {
    ClassUnicode::empty()
}

fn newline_class() -> ClassUnicode {
    ClassUnicode::new([ClassUnicodeRange::new('\n', '\n')])
}

fn atom_class(raw: &str) -> Option<ClassUnicode> {
    let hir = regex_syntax::ParserBuilder::new().build().parse(raw).ok()?;
    class_of_hir(&hir)
}

fn class_of_hir(hir: &Hir) -> Option<ClassUnicode> {
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => Some(c.clone()),
        HirKind::Class(Class::Bytes(b)) => {
            let mut c = ClassUnicode::empty();
            for r in b.ranges() {
                c.push(ClassUnicodeRange::new(r.start() as char, r.end() as char));
            }
            Some(c)
        }
        HirKind::Literal(lit) => {
            let s = std::str::from_utf8(&lit.0).ok()?;
            let ch = s.chars().next()?;
            Some(ClassUnicode::new([ClassUnicodeRange::new(ch, ch)]))
        }
        _ => None,
    }
}

/// The first (`forward`) or last characters of a sequence.
fn seq_edge(nodes: &[Node], forward: bool) -> Option<EdgeInfo> {
    let mut class = empty_class();
    let iter: Box<dyn Iterator<Item = &Node>> = if forward {
        Box::new(nodes.iter())
    } else {
        Box::new(nodes.iter().rev())
    };
    for n in iter {
        let info = node_edge(n, forward)?;
        class.union(&info.class);
        if !info.nullable {
            return Some(EdgeInfo {
                class,
                nullable: false,
            });
        }
    }
    Some(EdgeInfo {
        class,
        nullable: true,
    })
}

fn node_edge(n: &Node, forward: bool) -> Option<EdgeInfo> {
    match n {
        Node::Atom(raw) => Some(EdgeInfo {
            class: atom_class(raw)?,
            nullable: false,
        }),
        Node::Assert(a) => {
            // At the end of text nothing follows; at its start nothing precedes. Ruby's
            // `^` and `$` are line anchors: a newline or nothing stands next to them.
            let (stops, class) = match (forward, *a) {
                (true, "\\z") | (false, "\\A") => (true, empty_class()),
                (true, "$" | "\\Z") | (false, "^") => (true, newline_class()),
                _ => (false, empty_class()),
            };
            Some(EdgeInfo {
                class,
                nullable: !stops,
            })
        }
        Node::Look { .. } | Node::Flags(_) => Some(EdgeInfo {
            class: empty_class(),
            nullable: true,
        }),
        Node::Group(_, alts) => {
            let mut class = empty_class();
            let mut nullable = false;
            for alt in alts {
                let e = seq_edge(alt, forward)?;
                class.union(&e.class);
                nullable |= e.nullable;
            }
            Some(EdgeInfo { class, nullable })
        }
        Node::Repeat { node, min, .. } => {
            let e = node_edge(node, forward)?;
            Some(EdgeInfo {
                class: e.class,
                nullable: e.nullable || *min == 0,
            })
        }
        Node::Backref(_) => None,
    }
}

fn extend(info: Option<EdgeInfo>, outer: &Edge, rest_empty: bool) -> Option<Edge> {
    let info = info?;
    if info.nullable {
        let mut class = info.class;
        class.union(&outer.class);
        Some(Edge {
            class,
            open: outer.open,
            clean: rest_empty && outer.clean,
        })
    } else {
        Some(Edge {
            class: info.class,
            open: false,
            clean: false,
        })
    }
}

// ---------------------------------------------------------------------------------
// Emission.

/// Which engine the regex text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The `regex` crate: no look-around, no back-references.
    Automaton,
    /// `fancy-regex`: everything Logstash's patterns use.
    Backtracking,
    /// PCRE2: Oniguruma's syntax but for nested classes.
    Pcre2,
}

struct Emitter {
    target: Target,
    analyse: bool,
    edge_checks: std::cell::RefCell<EdgeChecks>,
}

/// Characters that must not stand right before or after an automaton match: the
/// bodies of look-arounds dropped at the pattern's edges.
#[derive(Debug, Clone)]
pub struct EdgeChecks {
    pub before: ClassUnicode,
    pub after: ClassUnicode,
}

impl EdgeChecks {
    fn new() -> EdgeChecks {
        EdgeChecks {
            before: empty_class(),
            after: empty_class(),
        }
    }

    /// True when a match at `start..end` of `text` may differ from the backtracking
    /// engine's answer.
    pub fn violated(&self, text: &str, start: usize, end: usize) -> bool {
        let hit = |class: &ClassUnicode, c: Option<char>| {
            c.is_some_and(|c| {
                class
                    .ranges()
                    .iter()
                    .any(|r| r.start() <= c && c <= r.end())
            })
        };
        (!self.before.ranges().is_empty()
            && hit(
                &self.before,
                text.get(..start).and_then(|t| t.chars().next_back()),
            ))
            || (!self.after.ranges().is_empty()
                && hit(&self.after, text.get(end..).and_then(|t| t.chars().next())))
    }
}

/// The construct that keeps a pattern off the automaton engine.
struct NeedsBacktracking;

impl Emitter {
    fn seq(
        &self,
        nodes: &[Node],
        out: &mut String,
        after: Option<&Edge>,
        before: Option<&Edge>,
    ) -> Result<(), NeedsBacktracking> {
        for (i, n) in nodes.iter().enumerate() {
            let follow = after
                .and_then(|a| extend(seq_edge(&nodes[i + 1..], true), a, i + 1 == nodes.len()));
            let precede = before.and_then(|b| extend(seq_edge(&nodes[..i], false), b, i == 0));
            self.node(n, out, follow.as_ref(), precede.as_ref())?;
        }
        Ok(())
    }

    fn alts(
        &self,
        alts: &[Vec<Node>],
        out: &mut String,
        after: Option<&Edge>,
        before: Option<&Edge>,
    ) -> Result<(), NeedsBacktracking> {
        for (i, alt) in alts.iter().enumerate() {
            if i > 0 {
                out.push('|');
            }
            self.seq(alt, out, after, before)?;
        }
        Ok(())
    }

    fn node(
        &self,
        n: &Node,
        out: &mut String,
        follow: Option<&Edge>,
        precede: Option<&Edge>,
    ) -> Result<(), NeedsBacktracking> {
        match n {
            Node::Atom(raw) => {
                if self.target == Target::Pcre2 && raw.starts_with('[') {
                    out.push_str(&class_for_pcre2(raw).ok_or(NeedsBacktracking)?);
                } else {
                    out.push_str(raw);
                }
            }
            Node::Assert(a) => out.push_str(match (*a, self.target) {
                // Ruby's `^` and `$` always anchor at lines.
                ("^", _) => "(?m:^)",
                ("$", _) => "(?m:$)",
                // The end, or before a final newline.
                ("\\Z", Target::Automaton) => return Err(NeedsBacktracking),
                ("\\Z", Target::Backtracking) => "(?=\n?\\z)",
                (other, _) => other,
            }),
            Node::Flags(f) => {
                out.push_str("(?");
                out.push_str(f);
                out.push(')');
            }
            Node::Backref(raw) => {
                if self.target == Target::Automaton {
                    return Err(NeedsBacktracking);
                }
                out.push_str(raw);
            }
            Node::Group(kind, alts) => {
                match kind {
                    GroupKind::NonCapture | GroupKind::Plain => out.push_str("(?:"),
                    GroupKind::Named(name) => {
                        out.push_str("(?<");
                        out.push_str(name);
                        out.push('>');
                    }
                    GroupKind::Atomic => out.push_str(match self.target {
                        Target::Automaton => "(?:",
                        Target::Backtracking | Target::Pcre2 => "(?>",
                    }),
                    GroupKind::Flags(f) => {
                        out.push_str("(?");
                        out.push_str(f);
                        out.push(':');
                    }
                }
                self.alts(alts, out, follow, precede)?;
                out.push(')');
            }
            Node::Repeat {
                node,
                max,
                quant,
                possessive,
                ..
            } => {
                if *possessive && self.target == Target::Automaton {
                    return Err(NeedsBacktracking);
                }
                // Inside a repetition the node may follow or precede itself.
                let repeats = *max != Some(1);
                let inner_follow = follow.and_then(|f| {
                    if !repeats {
                        return Some(f.clone());
                    }
                    let e = node_edge(node, true)?;
                    let mut class = e.class;
                    class.union(&f.class);
                    Some(Edge {
                        class,
                        open: f.open,
                        clean: false,
                    })
                });
                let inner_precede = precede.and_then(|p| {
                    if !repeats {
                        return Some(p.clone());
                    }
                    let e = node_edge(node, false)?;
                    let mut class = e.class;
                    class.union(&p.class);
                    Some(Edge {
                        class,
                        open: p.open,
                        clean: false,
                    })
                });
                let wrap = matches!(**node, Node::Atom(_) | Node::Group(..));
                if !wrap {
                    out.push_str("(?:");
                }
                self.node(node, out, inner_follow.as_ref(), inner_precede.as_ref())?;
                if !wrap {
                    out.push(')');
                }
                out.push_str(quant);
                if *possessive {
                    out.push('+');
                }
            }
            Node::Look {
                behind,
                negative,
                alts,
            } => match self.target {
                Target::Backtracking | Target::Pcre2 => {
                    out.push_str(match (behind, negative) {
                        (false, false) => "(?=",
                        (false, true) => "(?!",
                        (true, false) => "(?<=",
                        (true, true) => "(?<!",
                    });
                    self.alts(alts, out, None, None)?;
                    out.push(')');
                }
                Target::Automaton => {
                    if !negative || !self.analyse {
                        return Err(NeedsBacktracking);
                    }
                    let edge = if *behind { precede } else { follow };
                    let edge = edge.ok_or(NeedsBacktracking)?;
                    // The characters the look-around body can start (or end) with.
                    let mut body = empty_class();
                    for alt in alts {
                        let e = seq_edge(alt, !behind).ok_or(NeedsBacktracking)?;
                        if e.nullable {
                            return Err(NeedsBacktracking);
                        }
                        body.union(&e.class);
                    }
                    let mut overlap = body.clone();
                    overlap.intersect(&edge.class);
                    if !overlap.ranges().is_empty() {
                        return Err(NeedsBacktracking);
                    }
                    if !edge.open {
                        // Whatever is next to this position can never start the body.
                        return Ok(());
                    }
                    if !edge.clean || !edge.class.ranges().is_empty() {
                        return Err(NeedsBacktracking);
                    }
                    // At the pattern's edge the neighbour is outside the match: drop the
                    // look-around and have the matcher check the character next to the
                    // match instead (and ask the backtracking engine when it is in the
                    // body's set).
                    let mut checks = self.edge_checks.borrow_mut();
                    if *behind {
                        checks.before.union(&body);
                    } else {
                        checks.after.union(&body);
                    }
                }
            },
        }
        Ok(())
    }
}

/// The regex text for each engine.
#[derive(Debug, Clone)]
pub struct Translated {
    /// For PCRE2, when it can spell the pattern.
    pub pcre2: Option<String>,
    /// For the `regex` crate, when the pattern can run there.
    pub automaton: Option<String>,
    /// What the matcher must check around an automaton match.
    pub edge_checks: EdgeChecks,
    /// For `fancy-regex`.
    pub backtracking: String,
}

/// Parses an expanded regex (Oniguruma's syntax, Ruby's semantics) and writes it for
/// each engine.
pub fn translate(expanded: &Expanded) -> Result<Translated, CompileError> {
    let regex = expanded.regex.as_str();
    let mut p = Parser {
        s: regex,
        i: 0,
        saw_case_flag: false,
        dot_all: expanded.dot_matches_newline,
    };
    let alts = p.alts()?;
    if p.i != regex.len() {
        return Err(p.err("unbalanced `)`"));
    }
    let edge = Edge {
        class: empty_class(),
        open: true,
        clean: true,
    };
    let emitter = |target, analyse| Emitter {
        target,
        analyse,
        edge_checks: std::cell::RefCell::new(EdgeChecks::new()),
    };
    let mut backtracking = String::with_capacity(regex.len());
    if emitter(Target::Backtracking, false)
        .alts(&alts, &mut backtracking, None, None)
        .is_err()
    {
        return Err(CompileError::Regex(format!("cannot translate `{regex}`")));
    }
    let mut pcre2 = String::with_capacity(regex.len());
    let pcre2 = emitter(Target::Pcre2, false)
        .alts(&alts, &mut pcre2, None, None)
        .ok()
        .map(|_| pcre2);
    let mut automaton = String::with_capacity(regex.len());
    let am = emitter(Target::Automaton, !p.saw_case_flag);
    let automaton = am
        .alts(&alts, &mut automaton, Some(&edge), Some(&edge))
        .ok()
        .map(|_| automaton);
    Ok(Translated {
        pcre2,
        automaton,
        edge_checks: am.edge_checks.into_inner(),
        backtracking,
    })
}

/// The top-level pieces of a pattern as written (`%{...}` references and the text
/// between them), for the grok debugger's "how far did it get".
pub fn components(pattern: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(i) = rest.find("%{") {
        if i > 0 {
            out.push(&rest[..i]);
        }
        let Some(end) = rest[i..].find('}') else {
            break;
        };
        out.push(&rest[i..i + end + 1]);
        rest = &rest[i + end + 1..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib() -> PatternLibrary {
        PatternLibrary::bundled()
    }

    fn auto(p: &str) -> Option<String> {
        let ex = expand(p, &lib(), true).unwrap();
        translate(&ex).unwrap().automaton
    }

    #[test]
    fn expands_references_with_fields_and_types() {
        let ex = expand("%{INT:a:int} %{WORD:[b][c]} %{WORD}", &lib(), true).unwrap();
        assert_eq!(ex.captures.len(), 2);
        assert_eq!(ex.captures[0].conversion, Conversion::Int);
        assert_eq!(ex.captures[1].field, "[b][c]");
        let ex = expand("%{WORD}", &lib(), false).unwrap();
        assert_eq!(ex.captures[0].field, "WORD");
    }

    #[test]
    fn expansion_errors() {
        assert_eq!(
            expand("%{NOPE:x}", &lib(), true).unwrap_err(),
            CompileError::UnknownPattern("NOPE".into())
        );
        let mut l = PatternLibrary::empty();
        l.insert("A", "x%{B}");
        l.insert("B", "%{A}");
        assert!(matches!(
            expand("%{A}", &l, true),
            Err(CompileError::Recursive(_))
        ));
    }

    #[test]
    fn references_read_as_logstash_reads_them() {
        // Any type but int and float leaves a string.
        let ex = expand(
            "%{INT:x:string} %{INT:y:float} %{INT:z:int:extra}",
            &lib(),
            true,
        )
        .unwrap();
        let conv: Vec<_> = ex.captures.iter().map(|c| c.conversion).collect();
        assert_eq!(conv, [Conversion::None, Conversion::Float, Conversion::Int]);
        assert_eq!(ex.captures[0].field, "x");
        // Text after the name or semantic is ignored, as Logstash's grok does.
        let ex = expand("%{INT } %{INT:n }", &lib(), true).unwrap();
        assert_eq!(ex.captures.len(), 1);
        assert_eq!(ex.captures[0].field, "n");
        assert!(!ex.regex.contains("%{"));
        // What is not a reference stays literal text.
        for literal in ["%{ INT}", "%{}", "%{INT", "%{-x}"] {
            let ex = expand(literal, &lib(), true).unwrap();
            assert!(ex.captures.is_empty());
            assert!(ex.regex.starts_with("%{"), "{literal}: {}", ex.regex);
        }
    }

    #[test]
    fn user_named_groups_become_captures() {
        let ex = expand(r"(?<queue_id>[0-9A-F]{10,11}) (?<=x)", &lib(), true).unwrap();
        assert_eq!(ex.captures.len(), 1);
        assert_eq!(ex.captures[0].field, "queue_id");
        assert!(ex.regex.starts_with("(?<_g0>"));
    }

    #[test]
    fn the_common_patterns_run_on_the_automaton() {
        for p in [
            "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:logger_name} - %{GREEDYDATA:message}",
            "%{COMBINEDAPACHELOG}",
            "%{SYSLOGBASE} %{GREEDYDATA:message}",
            "%{SLUICE_API}",
            "%{SLUICE_DEVICE}",
            "%{SLUICE_SYSLOG}",
            "%{IP:ip} %{NUMBER:n}",
        ] {
            let a = auto(p).unwrap_or_else(|| panic!("{p} needs backtracking"));
            regex::Regex::new(&a).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn look_around_that_matters_keeps_backtracking() {
        // The digit before the number decides the match: the look-behind is needed.
        assert!(auto("%{GREEDYDATA:a}%{NUMBER:b}").is_none());
        assert!(auto(r"(?<x>a)\k<x>").is_none());
        assert!(auto(r"foo(?=bar)").is_none());
        // At the pattern's edge the look-around becomes a check next to the match.
        let ex = expand("%{NUMBER:n}", &lib(), true).unwrap();
        let t = translate(&ex).unwrap();
        assert!(t.automaton.is_some());
        assert!(t.edge_checks.violated("31.5", 1, 4));
        assert!(!t.edge_checks.violated("a 1.5", 2, 5));
    }

    #[test]
    fn every_bundled_pattern_translates_for_the_backtracking_engine() {
        let l = lib();
        for name in l.names() {
            let ex = expand(&format!("%{{{name}}}"), &l, true).unwrap();
            let t = translate(&ex).unwrap_or_else(|e| panic!("{name}: {e}"));
            fancy_regex::Regex::new(&t.backtracking).unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(a) = t.automaton {
                regex::Regex::new(&a).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }

    #[test]
    fn classes_are_respelled_for_pcre2() {
        assert_eq!(
            class_for_pcre2("[[[:alnum:]]_%!$@:.,+~-]").as_deref(),
            Some(r"[\p{L}\p{M}\p{Nd}_%!$@:.,+~-]")
        );
        // A class of `:` and friends is no POSIX class.
        assert_eq!(class_for_pcre2("[:.,]").as_deref(), Some("[:.,]"));
        assert_eq!(class_for_pcre2(r"[^\\?*]").as_deref(), Some(r"[^\\?*]"));
        assert_eq!(class_for_pcre2("[]a]").as_deref(), Some(r"[\]a]"));
        assert_eq!(class_for_pcre2("[a-z[^0-9]]"), None);
        assert_eq!(class_for_pcre2("[a-z&&[^x]]"), None);
        assert_eq!(class_hex_digits(r"[\h-]"), "[0-9a-fA-F-]");
    }

    #[test]
    fn splits_components() {
        assert_eq!(
            components("%{A:x} - %{B}!"),
            vec!["%{A:x}", " - ", "%{B}", "!"]
        );
    }
}
