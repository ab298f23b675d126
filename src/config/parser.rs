//! Text → AST for the Logstash configuration language.
//!
//! A hand-written recursive-descent parser that follows Logstash's treetop grammar
//! (`lscl_grammar.treetop`). That grammar is a PEG, so where it is ambiguous the order of
//! its alternatives decides, and this parser makes the same choices (a value followed by
//! `{` is a plugin; `["a"]` in a condition is a field reference, not an array).
//!
//! The parser works on bytes: every token delimiter is ASCII, so byte offsets at which it
//! stops are always character boundaries. Positions are turned into line and column only
//! when a node or an error needs one.
//!
//! Error messages are built in `#[cold]` helpers, not inline: in debug builds every
//! `format!` reserves stack in the calling frame, and the recursive functions' frames
//! decide how deep a configuration can nest before a 2 MiB thread stack runs out.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use super::ast::{
    Attribute, BoolOp, Branch, Case, CompareOp, Condition, ConditionKind, Config, HashEntry, Item,
    Plugin, Pos, Rvalue, RvalueKind, Section, SectionKind, Value, ValueKind,
};
use super::error::{snippet, Error};

/// Deepest nesting of brackets, blocks and parentheses accepted. Recursion is bounded by
/// it, so hostile input gets an error instead of a stack overflow.
const MAX_DEPTH: u32 = 256;

/// Parses one configuration source. `file` names it in error messages; with
/// `support_escapes`, `\n \r \t \0 \\ \" \'` in quoted strings are processed.
pub fn parse(source: &str, file: &str, support_escapes: bool) -> Result<Config, Error> {
    // Editors hide a byte-order mark; columns on line 1 should not count it.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut parser = Parser::new(source, file, support_escapes);
    parser.config().map_err(|fail| parser.syntax_error(fail))
}

/// A parse failure before it is turned into an [`Error`]: cheap to build and to discard.
#[derive(Debug)]
struct Fail {
    at: usize,
    message: String,
}

type PResult<T> = Result<T, Fail>;

/// What a value is for, to say so when it is missing.
#[derive(Clone, Copy)]
enum ValueCtx<'s> {
    Option(&'s str),
    Element,
    HashKey(&'s str),
}

impl fmt::Display for ValueCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueCtx::Option(name) => write!(f, "a value for option {name:?}"),
            ValueCtx::Element => f.write_str("an array element"),
            ValueCtx::HashKey(key) => write!(f, "a value for hash key {key:?}"),
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    file: Arc<str>,
    /// Byte offset at which each line starts, for offset → line/column.
    line_starts: Vec<usize>,
    /// The last position computed: byte offset, line, column.
    last_pos: Cell<(usize, usize, usize)>,
    escapes: bool,
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// `[A-Za-z0-9_-]`: plugin and option names.
fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// `[A-Za-z0-9_]`: the rest of a bareword.
fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// Logstash's `config.support_escapes` processing, pair by pair from the left.
fn unescape(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(e @ ('\\' | '"' | '\'')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Turns `\/` into `/` in a regex literal's body, pairing backslashes as the grammar does.
fn unescape_regex(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(k) = rest.find('\\') {
        out.push_str(&rest[..k]);
        if rest[k + 1..].starts_with('/') {
            out.push('/');
            rest = &rest[k + 2..];
        } else {
            out.push('\\');
            rest = &rest[k + 1..];
        }
    }
    out.push_str(rest);
    out
}

fn bool_op_name(op: BoolOp) -> &'static str {
    match op {
        BoolOp::And => "and",
        BoolOp::Or => "or",
        BoolOp::Xor => "xor",
        BoolOp::Nand => "nand",
    }
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, file: &str, escapes: bool) -> Parser<'a> {
        let b = src.as_bytes();
        let mut line_starts = vec![0];
        line_starts.extend(memchr::memchr_iter(b'\n', b).map(|k| k + 1));
        Parser {
            src,
            b,
            i: 0,
            file: Arc::from(file),
            line_starts,
            last_pos: Cell::new((0, 1, 1)),
            escapes,
        }
    }

    // ---- positions ----

    fn floor_boundary(&self, at: usize) -> usize {
        let mut at = at.min(self.src.len());
        while !self.src.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// Positions are mostly asked for in increasing order, so counting characters from
    /// the previous answer on the same line keeps a long single-line config linear.
    fn line_col(&self, at: usize) -> (u32, u32) {
        let at = self.floor_boundary(at);
        let line = self.line_starts.partition_point(|&s| s <= at);
        let start = self.line_starts[line.saturating_sub(1)];
        let (last_at, last_line, last_column) = self.last_pos.get();
        let column = if last_line == line && (start..=at).contains(&last_at) {
            last_column + self.src[last_at..at].chars().count()
        } else {
            self.src[start..at].chars().count() + 1
        };
        self.last_pos.set((at, line, column));
        (
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(column).unwrap_or(u32::MAX),
        )
    }

    fn pos(&self, at: usize) -> Pos {
        let (line, column) = self.line_col(at);
        Pos {
            file: self.file.clone(),
            line,
            column,
        }
    }

    /// `line:column`, for messages that point back at an earlier token.
    fn lc(&self, at: usize) -> String {
        let (line, column) = self.line_col(at);
        format!("{line}:{column}")
    }

    // ---- errors (all cold, see the module doc) ----

    fn syntax_error(&self, fail: Fail) -> Error {
        let pos = self.pos(fail.at);
        let snippet = snippet(self.src, pos.line, pos.column);
        // The message may quote the token at the error, which can be a secret.
        let message = super::error::redact_with(&fail.message, self.src);
        Error::Syntax {
            pos,
            message,
            snippet,
        }
    }

    #[cold]
    #[inline(never)]
    fn fail(&self, at: usize, message: &str) -> Fail {
        Fail {
            at,
            message: message.to_string(),
        }
    }

    #[cold]
    #[inline(never)]
    fn fail_fmt(&self, at: usize, message: fmt::Arguments<'_>) -> Fail {
        Fail {
            at,
            message: message.to_string(),
        }
    }

    /// `expected {what}, found {the token at at}`.
    #[cold]
    #[inline(never)]
    fn expected(&self, at: usize, what: &str) -> Fail {
        self.fail_fmt(
            at,
            format_args!("expected {what}, found {}", self.found(at)),
        )
    }

    /// `expected {what} {name:?}, found {the token at at}`.
    #[cold]
    #[inline(never)]
    fn expected_after(&self, at: usize, what: &str, name: &str) -> Fail {
        self.fail_fmt(
            at,
            format_args!("expected {what} {name:?}, found {}", self.found(at)),
        )
    }

    #[cold]
    #[inline(never)]
    fn expected_value(&self, at: usize, ctx: ValueCtx<'_>) -> Fail {
        self.fail_fmt(at, format_args!("expected {ctx}, found {}", self.found(at)))
    }

    #[cold]
    #[inline(never)]
    fn unclosed(&self, open: usize) -> Fail {
        let bracket = self.b.get(open).map_or('?', |&c| char::from(c));
        self.fail_fmt(
            self.b.len(),
            format_args!(
                "unexpected end of input: \"{bracket}\" opened at {} is never closed",
                self.lc(open)
            ),
        )
    }

    #[cold]
    #[inline(never)]
    fn unclosed_paren(&self, at: usize, open: usize) -> Fail {
        self.fail_fmt(
            at,
            format_args!(
                "expected \")\" to close the \"(\" at {}, found {}",
                self.lc(open),
                self.found(at)
            ),
        )
    }

    #[cold]
    #[inline(never)]
    fn invalid_number(&self, start: usize) -> Fail {
        let end = self.scan_while(start, |c| is_name_byte(c) || c == b'.');
        self.fail_fmt(
            start,
            format_args!("invalid number {:?}", &self.src[start..end]),
        )
    }

    #[cold]
    #[inline(never)]
    fn bad_word_in_condition(&self, start: usize) -> Fail {
        let end = self.scan_while(start, is_word_byte);
        let word = &self.src[start..end];
        self.fail_fmt(
            start,
            format_args!(
                "unexpected word {word:?} in condition: write [{word}] for a field or \"{word}\" for a string"
            ),
        )
    }

    /// Describes the token at `at` for "found ..." in messages.
    fn found(&self, at: usize) -> String {
        let rest = &self.src[self.floor_boundary(at)..];
        let mut chars = rest.chars();
        let Some(c) = chars.next() else {
            return "end of input".to_string();
        };
        if c == '"' || c == '\'' {
            let mut shown = String::from(c);
            for d in chars.take(40) {
                if d == '\n' || d == '\r' {
                    break;
                }
                shown.push(d);
                if d == c {
                    break;
                }
            }
            return format!("the string {shown}");
        }
        let token: String = if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
            rest.chars()
                .take_while(|d| d.is_ascii_alphanumeric() || matches!(d, '_' | '-' | '.'))
                .take(40)
                .collect()
        } else if matches!(c, '=' | '!' | '<' | '>')
            && matches!(chars.next(), Some('=' | '>' | '~'))
        {
            rest[..2].to_string()
        } else {
            c.to_string()
        };
        format!("{token:?}")
    }

    /// Counts one more level of nesting, refusing to go past [`MAX_DEPTH`].
    fn enter(&self, depth: u32, at: usize) -> PResult<u32> {
        if depth >= MAX_DEPTH {
            return Err(self.fail_fmt(at, format_args!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(depth + 1)
    }

    // ---- low-level scanning ----

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn peek_at(&self, at: usize) -> Option<u8> {
        self.b.get(at).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.b[self.i..].starts_with(s.as_bytes())
    }

    /// A keyword not followed by a name character (`if` but not `iffy`).
    fn keyword(&self, kw: &str) -> bool {
        self.starts_with(kw) && !self.peek_at(self.i + kw.len()).is_some_and(is_name_byte)
    }

    /// Skips whitespace and `#` comments; says whether it skipped anything.
    fn skip_cs(&mut self) -> bool {
        let start = self.i;
        while let Some(c) = self.peek() {
            if is_ws(c) {
                self.i += 1;
            } else if c == b'#' {
                self.i = match memchr::memchr(b'\n', &self.b[self.i..]) {
                    Some(k) => self.i + k + 1,
                    None => self.b.len(),
                };
            } else {
                break;
            }
        }
        self.i != start
    }

    fn scan_while(&self, from: usize, pred: impl Fn(u8) -> bool) -> usize {
        let mut j = from;
        while j < self.b.len() && pred(self.b[j]) {
            j += 1;
        }
        j
    }

    /// Whether, after optional whitespace and comments, the next byte is `c` (no move).
    fn followed_by(&mut self, c: u8) -> bool {
        let save = self.i;
        self.skip_cs();
        let yes = self.peek() == Some(c);
        self.i = save;
        yes
    }

    /// Scans a `"`/`'` string or `/` regex body starting at the opening delimiter.
    /// A backslash only pairs with the delimiter, exactly like the grammar's `'\"' / !'"' .`,
    /// so `"a\\"` is not closed. Returns the body's byte range.
    fn delimited(&mut self, what: &str) -> PResult<(usize, usize)> {
        let start = self.i;
        let q = self.b[start];
        let body = start + 1;
        let mut j = body;
        loop {
            let Some(k) = memchr::memchr2(q, b'\\', &self.b[j..]) else {
                return Err(self.fail_fmt(
                    start,
                    format_args!("unterminated {what} starting at {}", self.lc(start)),
                ));
            };
            let at = j + k;
            if self.b[at] == q {
                self.i = at + 1;
                return Ok((body, at));
            }
            j = if self.peek_at(at + 1) == Some(q) {
                at + 2
            } else {
                at + 1
            };
        }
    }

    fn string(&mut self) -> PResult<String> {
        let (from, to) = self.delimited("string")?;
        let raw = &self.src[from..to];
        Ok(if self.escapes {
            unescape(raw)
        } else {
            raw.to_string()
        })
    }

    /// `-?[0-9]+(\.[0-9]*)?`. Anything number-like glued to it (`1.2.3`, `1e5`) is an
    /// error here rather than a confusing one at the next token; `strict` extends that to
    /// letters, which conditions do not need (`1and` is legal there).
    fn number(&mut self, strict: bool) -> PResult<String> {
        let start = self.i;
        let mut j = start;
        if self.peek_at(j) == Some(b'-') {
            j += 1;
        }
        j = self.scan_while(j, |c| c.is_ascii_digit());
        if self.peek_at(j) == Some(b'.') {
            j = self.scan_while(j + 1, |c| c.is_ascii_digit());
        }
        let glued = self
            .peek_at(j)
            .is_some_and(|c| c == b'.' || (strict && is_name_byte(c)));
        if glued {
            return Err(self.invalid_number(start));
        }
        self.i = j;
        Ok(self.src[start..j].to_string())
    }

    /// `[A-Za-z_][A-Za-z0-9_]+`, with a helpful error when the word has one character or
    /// a `-` (which only plugin and option names may contain).
    fn bareword(&mut self) -> PResult<String> {
        let start = self.i;
        let end = self.scan_while(start + 1, is_word_byte);
        let run_end = self.scan_while(start, is_name_byte);
        let run = &self.src[start..run_end];
        if run_end > end {
            return Err(self.fail_fmt(
                start,
                format_args!(
                    "{run:?} is not a valid bareword (only letters, digits and \"_\"); quote it"
                ),
            ));
        }
        if end - start < 2 {
            return Err(self.fail_fmt(
                start,
                format_args!("a bareword needs at least two characters, found {run:?}; quote it"),
            ));
        }
        self.i = end;
        Ok(run.to_string())
    }

    fn starts_number(&self) -> bool {
        match self.peek() {
            Some(b'-') => self.peek_at(self.i + 1).is_some_and(|c| c.is_ascii_digit()),
            Some(c) => c.is_ascii_digit(),
            None => false,
        }
    }

    /// A plugin or option name: `[A-Za-z0-9_-]+` or a quoted string.
    fn name(&mut self) -> PResult<String> {
        match self.peek() {
            Some(b'"' | b'\'') => self.string(),
            _ => {
                let start = self.i;
                let end = self.scan_while(start, is_name_byte);
                if end == start {
                    return Err(self.expected(start, "a name"));
                }
                self.i = end;
                Ok(self.src[start..end].to_string())
            }
        }
    }

    // ---- sections, plugins and values ----

    fn config(&mut self) -> PResult<Config> {
        let mut sections = Vec::new();
        loop {
            self.skip_cs();
            if self.peek().is_none() {
                return Ok(Config { sections });
            }
            sections.push(self.section()?);
        }
    }

    fn section(&mut self) -> PResult<Section> {
        let start = self.i;
        let pos = self.pos(start);
        let end = self.scan_while(start, is_name_byte);
        let kind = match &self.src[start..end] {
            "input" => SectionKind::Input,
            "filter" => SectionKind::Filter,
            "output" => SectionKind::Output,
            _ => return Err(self.expected(start, "one of input, filter, output")),
        };
        self.i = end;
        self.skip_cs();
        if self.peek() != Some(b'{') {
            return Err(self.expected_after(self.i, "\"{\" after section name", kind.as_str()));
        }
        let open = self.i;
        self.i += 1;
        let items = self.items(open, 0)?;
        Ok(Section { kind, items, pos })
    }

    /// The plugins and branches of a section or block, through its closing `}`.
    fn items(&mut self, open: usize, depth: u32) -> PResult<Vec<Item>> {
        let mut items = Vec::new();
        loop {
            self.skip_cs();
            let Some(c) = self.peek() else {
                return Err(self.unclosed(open));
            };
            if c == b'}' {
                self.i += 1;
                return Ok(items);
            }
            if self.keyword("if") {
                items.push(Item::Branch(self.branch(depth)?));
            } else if self.keyword("else") {
                return Err(self.fail(self.i, "\"else\" without a preceding \"if\" block"));
            } else if is_name_byte(c) || c == b'"' || c == b'\'' {
                items.push(Item::Plugin(self.plugin(depth)?));
            } else {
                return Err(self.expected(self.i, "a plugin, \"if\" or \"}\""));
            }
        }
    }

    fn plugin(&mut self, depth: u32) -> PResult<Plugin> {
        let start = self.i;
        let pos = self.pos(start);
        let name = self.name()?;
        self.skip_cs();
        if self.peek() != Some(b'{') {
            return Err(self.expected_after(self.i, "\"{\" after plugin name", &name));
        }
        let open = self.i;
        let depth = self.enter(depth, open)?;
        self.i += 1;
        let mut attributes: Vec<Attribute> = Vec::new();
        loop {
            let separated = self.skip_cs();
            let Some(c) = self.peek() else {
                return Err(self.unclosed(open));
            };
            if c == b'}' {
                self.i += 1;
                break;
            }
            if let Some(last) = attributes.last() {
                if c == b',' {
                    return Err(self.fail_fmt(
                        self.i,
                        format_args!(
                            "unexpected \",\" after option {:?}: options are separated by whitespace, not commas",
                            last.name
                        ),
                    ));
                }
                if !separated {
                    return Err(self.expected_after(
                        self.i,
                        "whitespace or \"}\" after the value of option",
                        &last.name,
                    ));
                }
            }
            if !(is_name_byte(c) || c == b'"' || c == b'\'') {
                return Err(self.expected_after(
                    self.i,
                    "an option name or \"}\" in plugin",
                    &name,
                ));
            }
            attributes.push(self.attribute(depth)?);
        }
        Ok(Plugin {
            name,
            attributes,
            pos,
        })
    }

    fn attribute(&mut self, depth: u32) -> PResult<Attribute> {
        let start = self.i;
        let pos = self.pos(start);
        let name = self.name()?;
        self.skip_cs();
        if !self.starts_with("=>") {
            return Err(self.expected_after(self.i, "\"=>\" after option name", &name));
        }
        self.i += 2;
        self.skip_cs();
        let value = self.value(depth, ValueCtx::Option(&name))?;
        Ok(Attribute { name, value, pos })
    }

    /// `plugin / bareword / string / number / array / hash`, in that order of preference.
    fn value(&mut self, depth: u32, ctx: ValueCtx<'_>) -> PResult<Value> {
        let start = self.i;
        let pos = self.pos(start);
        let kind = match self.peek() {
            Some(b'"' | b'\'') => {
                let s = self.string()?;
                if self.followed_by(b'{') {
                    self.i = start;
                    ValueKind::Plugin(self.plugin(depth)?)
                } else {
                    ValueKind::String(s)
                }
            }
            Some(c) if is_name_byte(c) => {
                self.i = self.scan_while(start, is_name_byte);
                let is_plugin = self.followed_by(b'{');
                self.i = start;
                if is_plugin {
                    ValueKind::Plugin(self.plugin(depth)?)
                } else if is_word_start(c) {
                    ValueKind::Bareword(self.bareword()?)
                } else if self.starts_number() {
                    ValueKind::Number(self.number(true)?)
                } else {
                    return Err(self.invalid_number(start));
                }
            }
            Some(b'[') => ValueKind::Array(self.array(depth)?),
            Some(b'{') => ValueKind::Hash(self.hash(depth)?),
            _ => return Err(self.expected_value(start, ctx)),
        };
        Ok(Value { kind, pos })
    }

    /// `"[" cs [ value { cs "," cs value } ] cs "]"`; no trailing comma, as in Logstash.
    fn array(&mut self, depth: u32) -> PResult<Vec<Value>> {
        let open = self.i;
        let depth = self.enter(depth, open)?;
        self.i += 1;
        let mut values = Vec::new();
        self.skip_cs();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(values);
        }
        loop {
            if self.peek().is_none() {
                return Err(self.unclosed(open));
            }
            values.push(self.value(depth, ValueCtx::Element)?);
            self.skip_cs();
            match self.peek() {
                Some(b',') => {
                    let comma = self.i;
                    self.i += 1;
                    self.skip_cs();
                    if self.peek() == Some(b']') {
                        return Err(self.fail(
                            comma,
                            "trailing \",\" in array: Logstash does not accept a comma before \"]\"",
                        ));
                    }
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(values);
                }
                None => return Err(self.unclosed(open)),
                Some(_) => return Err(self.expected(self.i, "\",\" or \"]\" in array")),
            }
        }
    }

    /// `{ key => value ... }`. The grammar wants whitespace between entries; commas are
    /// accepted too because configurations in the wild use them (but not a trailing one).
    fn hash(&mut self, depth: u32) -> PResult<Vec<HashEntry>> {
        let open = self.i;
        let depth = self.enter(depth, open)?;
        self.i += 1;
        let mut entries: Vec<HashEntry> = Vec::new();
        loop {
            let mut separated = self.skip_cs();
            let mut comma = None;
            if self.peek() == Some(b',') && !entries.is_empty() {
                comma = Some(self.i);
                separated = true;
                self.i += 1;
                self.skip_cs();
            }
            let Some(c) = self.peek() else {
                return Err(self.unclosed(open));
            };
            if c == b'}' {
                if let Some(comma) = comma {
                    return Err(self.fail(
                        comma,
                        "trailing \",\" in hash: expected another entry before \"}\"",
                    ));
                }
                self.i += 1;
                return Ok(entries);
            }
            if let Some(last) = entries.last() {
                if !separated {
                    return Err(self.expected_after(
                        self.i,
                        "whitespace, \",\" or \"}\" after the value of hash key",
                        &last.key,
                    ));
                }
            }
            let key_start = self.i;
            let key_pos = self.pos(key_start);
            let key = match c {
                b'"' | b'\'' => self.string()?,
                c if is_word_start(c) => self.bareword()?,
                _ if self.starts_number() => self.number(true)?,
                _ => {
                    return Err(self.expected(
                        key_start,
                        "a hash key (a number, a word or a string) or \"}\"",
                    ))
                }
            };
            self.skip_cs();
            if !self.starts_with("=>") {
                return Err(self.expected_after(self.i, "\"=>\" after hash key", &key));
            }
            self.i += 2;
            self.skip_cs();
            let value = self.value(depth, ValueCtx::HashKey(&key))?;
            entries.push(HashEntry {
                key,
                key_pos,
                value,
            });
        }
    }

    // ---- branches and conditions ----

    /// `if cond { } { else if cond { } } [ else { } ]`, starting at `if`.
    fn branch(&mut self, depth: u32) -> PResult<Branch> {
        let start = self.i;
        let pos = self.pos(start);
        let depth = self.enter(depth, start)?;
        let mut cases = vec![self.case(depth)?];
        let mut otherwise = None;
        loop {
            let save = self.i;
            self.skip_cs();
            if !self.keyword("else") {
                self.i = save;
                break;
            }
            self.i += 4;
            self.skip_cs();
            if self.keyword("if") {
                cases.push(self.case(depth)?);
                continue;
            }
            if self.peek() != Some(b'{') {
                return Err(self.expected(self.i, "\"{\" or \"if\" after \"else\""));
            }
            let open = self.i;
            self.i += 1;
            otherwise = Some(self.items(open, depth)?);
            break;
        }
        Ok(Branch {
            cases,
            otherwise,
            pos,
        })
    }

    /// `if cond { ... }`, starting at `if`.
    fn case(&mut self, depth: u32) -> PResult<Case> {
        let start = self.i;
        let pos = self.pos(start);
        self.i += 2;
        self.skip_cs();
        if matches!(self.peek(), None | Some(b'{')) {
            return Err(self.expected(self.i, "a condition after \"if\""));
        }
        let condition = self.condition(depth, "\"if\"")?;
        self.skip_cs();
        if self.peek() != Some(b'{') {
            return Err(self.expected(self.i, "\"{\" after the condition"));
        }
        let open = self.i;
        self.i += 1;
        let body = self.items(open, depth)?;
        Ok(Case {
            condition,
            body,
            pos,
        })
    }

    /// `expr { cs op cs expr }` with `and` binding tighter than `or`. Logstash refuses
    /// chains mixing `xor`/`nand` with another operator, since their precedence is unclear.
    fn condition(&mut self, depth: u32, after: &str) -> PResult<Condition> {
        let mut exprs = vec![self.expr(depth, after)?];
        let mut ops: Vec<(BoolOp, usize)> = Vec::new();
        loop {
            let save = self.i;
            self.skip_cs();
            let (op, text) = if self.starts_with("and") {
                (BoolOp::And, "\"and\"")
            } else if self.starts_with("or") {
                (BoolOp::Or, "\"or\"")
            } else if self.starts_with("xor") {
                (BoolOp::Xor, "\"xor\"")
            } else if self.starts_with("nand") {
                (BoolOp::Nand, "\"nand\"")
            } else {
                self.i = save;
                break;
            };
            ops.push((op, self.i));
            self.i += text.len() - 2;
            self.skip_cs();
            exprs.push(self.expr(depth, text)?);
        }
        self.combine(exprs, &ops)
    }

    fn combine(&self, exprs: Vec<Condition>, ops: &[(BoolOp, usize)]) -> PResult<Condition> {
        fn join(left: Condition, op: BoolOp, right: Condition) -> Condition {
            let pos = left.pos.clone();
            Condition {
                kind: ConditionKind::Boolean(Box::new(left), op, Box::new(right)),
                pos,
            }
        }
        let special = |op: BoolOp| matches!(op, BoolOp::Xor | BoolOp::Nand);
        if let Some(k) = ops.iter().position(|&(op, _)| special(op)) {
            let first = ops[k].0;
            let clash = if k > 0 {
                Some((k, ops[k - 1].0))
            } else {
                ops.iter()
                    .position(|&(op, _)| op != first)
                    .map(|j| (j, ops[j].0))
            };
            if let Some((j, other)) = clash {
                return Err(self.fail_fmt(
                    ops[j].1,
                    format_args!(
                        "mixing \"{}\" with \"{}\" needs parentheses",
                        bool_op_name(first),
                        bool_op_name(other)
                    ),
                ));
            }
        }
        let mut exprs = exprs.into_iter();
        let Some(mut current) = exprs.next() else {
            return Err(self.fail(self.i, "expected a condition"));
        };
        let mut or_terms = Vec::new();
        for (&(op, _), right) in ops.iter().zip(exprs) {
            match op {
                BoolOp::Or => or_terms.push(std::mem::replace(&mut current, right)),
                op => current = join(current, op, right),
            }
        }
        let mut or_terms = or_terms.into_iter();
        Ok(match or_terms.next() {
            None => current,
            Some(first) => {
                let left = or_terms.fold(first, |acc, c| join(acc, BoolOp::Or, c));
                join(left, BoolOp::Or, current)
            }
        })
    }

    /// One operand of a boolean chain. Kept small: it is on the recursive path of nested
    /// parentheses, while the operator forms live in [`Parser::rvalue_expr`].
    fn expr(&mut self, depth: u32, after: &str) -> PResult<Condition> {
        match self.peek() {
            Some(b'(') => self.paren(depth),
            Some(b'!') => self.not(depth),
            _ => self.rvalue_expr(depth, after),
        }
    }

    /// `!( cond )` or `![field]`.
    fn not(&mut self, depth: u32) -> PResult<Condition> {
        let start = self.i;
        let pos = self.pos(start);
        self.i += 1;
        self.skip_cs();
        let inner = match self.peek() {
            Some(b'(') => self.paren(depth)?,
            Some(b'[') => {
                let selector = self.selector()?;
                Condition {
                    pos: selector.pos.clone(),
                    kind: ConditionKind::Truthy(selector),
                }
            }
            _ => {
                return Err(self.expected(self.i, "\"(\" or a field reference after \"!\""));
            }
        };
        Ok(Condition {
            kind: ConditionKind::Not(Box::new(inner)),
            pos,
        })
    }

    /// `rvalue [ in | not in | == ... | =~ | !~ ] rvalue`, or a bare rvalue (truthiness).
    fn rvalue_expr(&mut self, depth: u32, after: &str) -> PResult<Condition> {
        let start = self.i;
        let pos = self.pos(start);
        let Some(left) = self.rvalue(depth)? else {
            return Err(self.expected_condition(start, after));
        };
        let save = self.i;
        self.skip_cs();
        let kind = if self.starts_with("in") {
            self.i += 2;
            self.skip_cs();
            let right = self.rvalue_after(depth, "\"in\"")?;
            ConditionKind::In {
                left,
                right,
                negate: false,
            }
        } else if self.starts_with("not") && self.peek_at(self.i + 3).is_some_and(is_ws) {
            self.i += 3;
            self.skip_cs();
            if !self.starts_with("in") {
                return Err(self.expected(self.i, "\"in\" after \"not\""));
            }
            self.i += 2;
            self.skip_cs();
            let right = self.rvalue_after(depth, "\"not in\"")?;
            ConditionKind::In {
                left,
                right,
                negate: true,
            }
        } else if self.starts_with("=~") || self.starts_with("!~") {
            let negate = self.b[self.i] == b'!';
            self.i += 2;
            self.skip_cs();
            let at = self.i;
            let pattern = match self.peek() {
                Some(b'"' | b'\'') => RvalueKind::String(self.string()?),
                Some(b'/') => self.regex()?,
                _ => {
                    let what = if negate {
                        "a regex /.../ or a string after \"!~\""
                    } else {
                        "a regex /.../ or a string after \"=~\""
                    };
                    return Err(self.expected(at, what));
                }
            };
            ConditionKind::Match {
                left,
                pattern: Rvalue {
                    kind: pattern,
                    pos: self.pos(at),
                },
                negate,
            }
        } else if let Some((op, text)) = self.compare_op() {
            self.i += text.len() - 2;
            self.skip_cs();
            let right = self.rvalue_after(depth, text)?;
            ConditionKind::Compare(left, op, right)
        } else {
            self.i = save;
            ConditionKind::Truthy(left)
        };
        Ok(Condition { kind, pos })
    }

    #[cold]
    #[inline(never)]
    fn expected_condition(&self, at: usize, after: &str) -> Fail {
        self.fail_fmt(
            at,
            format_args!(
                "expected a condition after {after}, found {}",
                self.found(at)
            ),
        )
    }

    /// The comparison operator here, with its text quoted for messages.
    fn compare_op(&self) -> Option<(CompareOp, &'static str)> {
        const OPS: [(CompareOp, &str); 6] = [
            (CompareOp::Eq, "\"==\""),
            (CompareOp::Ne, "\"!=\""),
            (CompareOp::Le, "\"<=\""),
            (CompareOp::Ge, "\">=\""),
            (CompareOp::Lt, "\"<\""),
            (CompareOp::Gt, "\">\""),
        ];
        OPS.into_iter()
            .find(|(_, text)| self.starts_with(&text[1..text.len() - 1]))
    }

    /// `( cond )`, starting at `(`.
    fn paren(&mut self, depth: u32) -> PResult<Condition> {
        let open = self.i;
        let depth = self.enter(depth, open)?;
        self.i += 1;
        self.skip_cs();
        let condition = self.condition(depth, "\"(\"")?;
        self.skip_cs();
        match self.peek() {
            Some(b')') => {
                self.i += 1;
                Ok(condition)
            }
            None => Err(self.unclosed(open)),
            Some(_) => Err(self.unclosed_paren(self.i, open)),
        }
    }

    fn rvalue_after(&mut self, depth: u32, after: &str) -> PResult<Rvalue> {
        let at = self.i;
        match self.rvalue(depth)? {
            Some(r) => Ok(r),
            None => Err(self.expected_after_token(at, after)),
        }
    }

    #[cold]
    #[inline(never)]
    fn expected_after_token(&self, at: usize, after: &str) -> Fail {
        self.fail_fmt(
            at,
            format_args!("expected a value after {after}, found {}", self.found(at)),
        )
    }

    /// `string / number / selector / array / method_call / regexp`; `None` when nothing
    /// here can start an rvalue.
    fn rvalue(&mut self, depth: u32) -> PResult<Option<Rvalue>> {
        let start = self.i;
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        if c == b'[' {
            return self.bracket(depth).map(Some);
        }
        let pos = self.pos(start);
        let kind = match c {
            b'"' | b'\'' => RvalueKind::String(self.string()?),
            b'/' => self.regex()?,
            _ if self.starts_number() => RvalueKind::Number(self.number(false)?),
            c if is_word_start(c) => self.method_call(depth)?,
            _ => return Ok(None),
        };
        Ok(Some(Rvalue { kind, pos }))
    }

    fn regex(&mut self) -> PResult<RvalueKind> {
        let (from, to) = self.delimited("regex")?;
        Ok(RvalueKind::Regex(unescape_regex(&self.src[from..to])))
    }

    /// `name(args)`; any other word is an error, with a hint since a bare word in a
    /// condition is usually a field name missing its brackets or a string its quotes.
    fn method_call(&mut self, depth: u32) -> PResult<RvalueKind> {
        let start = self.i;
        let end = self.scan_while(start, is_word_byte);
        self.i = end;
        if end - start < 2 || !self.followed_by(b'(') {
            self.i = start;
            return Err(self.bad_word_in_condition(start));
        }
        let name = self.src[start..end].to_string();
        self.skip_cs();
        let open = self.i;
        let depth = self.enter(depth, open)?;
        self.i += 1;
        let mut args = Vec::new();
        self.skip_cs();
        if self.peek() == Some(b')') {
            self.i += 1;
            return Ok(RvalueKind::MethodCall { name, args });
        }
        loop {
            if self.peek().is_none() {
                return Err(self.unclosed(open));
            }
            args.push(self.rvalue_after(depth, "\"(\" or \",\"")?);
            self.skip_cs();
            match self.peek() {
                Some(b',') => {
                    let comma = self.i;
                    self.i += 1;
                    self.skip_cs();
                    if self.peek() == Some(b')') {
                        return Err(self.fail(comma, "trailing \",\" in method call arguments"));
                    }
                }
                Some(b')') => {
                    self.i += 1;
                    return Ok(RvalueKind::MethodCall { name, args });
                }
                None => return Err(self.unclosed(open)),
                Some(_) => return Err(self.expected(self.i, "\",\" or \")\" in method call")),
            }
        }
    }

    /// End of the selector `( "[" [^\]\[,]+ "]" )+` starting at `from`, if one does.
    fn scan_selector(&self, from: usize) -> Option<usize> {
        let mut j = from;
        let mut end = None;
        while self.peek_at(j) == Some(b'[') {
            let Some(k) = memchr::memchr3(b'[', b']', b',', &self.b[j + 1..]) else {
                break;
            };
            let k = j + 1 + k;
            if k == j + 1 || self.b[k] != b']' {
                break;
            }
            j = k + 1;
            end = Some(j);
        }
        end
    }

    /// A selector that must be there (after `!`).
    fn selector(&mut self) -> PResult<Rvalue> {
        let start = self.i;
        let pos = self.pos(start);
        let Some(end) = self.scan_selector(start) else {
            return Err(self.selector_failure(start));
        };
        self.i = end;
        Ok(Rvalue {
            kind: RvalueKind::Selector(self.src[start..end].to_string()),
            pos,
        })
    }

    #[cold]
    #[inline(never)]
    fn selector_failure(&self, open: usize) -> Fail {
        let stop = memchr::memchr3(b'[', b']', b',', &self.b[open + 1..]).map(|k| open + 1 + k);
        match stop {
            Some(k) if k == open + 1 && self.b[k] == b']' => {
                self.fail(open, "empty field reference \"[]\"")
            }
            Some(k) => self.fail_fmt(
                open,
                format_args!(
                    "unclosed \"[\" in field reference: found {} at {} before any \"]\"",
                    self.found(k),
                    self.lc(k)
                ),
            ),
            None => self.fail(
                open,
                "unclosed \"[\" in field reference: no \"]\" before end of input",
            ),
        }
    }

    /// At `[` in a condition: a selector if one matches, else an array (PEG order).
    fn bracket(&mut self, depth: u32) -> PResult<Rvalue> {
        let start = self.i;
        let pos = self.pos(start);
        if self.scan_selector(start).is_some() {
            return self.selector();
        }
        match self.rvalue_array(depth) {
            Ok(items) => Ok(Rvalue {
                kind: RvalueKind::Array(items),
                pos,
            }),
            Err(fail) => Err(self.bracket_failure(start, fail)),
        }
    }

    /// Picks the array's error when the text looks like an array, else the selector's
    /// (the common mistake being a field reference missing its `]`).
    #[cold]
    #[inline(never)]
    fn bracket_failure(&self, start: usize, array_fail: Fail) -> Fail {
        let first = self.scan_while(start + 1, is_ws);
        let stop = memchr::memchr3(b'[', b']', b',', &self.b[start + 1..]);
        let looks_like_array = matches!(
            self.peek_at(first),
            Some(b'"' | b'\'' | b'[' | b'{' | b'-' | b'0'..=b'9' | b']' | b'#')
        ) || stop.is_some_and(|k| self.b[start + 1 + k] == b',');
        if looks_like_array {
            array_fail
        } else {
            self.selector_failure(start)
        }
    }

    /// An array in a condition. Its elements follow the value grammar, as in Logstash;
    /// barewords become strings, hashes and plugins have no meaning there.
    fn rvalue_array(&mut self, depth: u32) -> PResult<Vec<Rvalue>> {
        let start = self.i;
        let values = self.array(depth)?;
        values
            .into_iter()
            .map(|v| self.to_rvalue(v, start))
            .collect()
    }

    fn to_rvalue(&self, value: Value, at: usize) -> PResult<Rvalue> {
        let kind = match value.kind {
            ValueKind::String(s) | ValueKind::Bareword(s) => RvalueKind::String(s),
            ValueKind::Number(n) => RvalueKind::Number(n),
            ValueKind::Array(items) => RvalueKind::Array(
                items
                    .into_iter()
                    .map(|v| self.to_rvalue(v, at))
                    .collect::<PResult<_>>()?,
            ),
            ValueKind::Hash(_) => return Err(self.fail(at, "a hash cannot be used in a condition")),
            ValueKind::Plugin(_) => {
                return Err(self.fail(at, "a plugin cannot be used in a condition"))
            }
        };
        Ok(Rvalue {
            kind,
            pos: value.pos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "test.conf";

    fn ok(src: &str) -> Config {
        parse(src, FILE, false).unwrap_or_else(|e| panic!("{src:?} should parse: {e}"))
    }

    fn ok_escapes(src: &str) -> Config {
        parse(src, FILE, true).unwrap_or_else(|e| panic!("{src:?} should parse: {e}"))
    }

    /// Asserts a syntax error at `line:column` whose message contains `message`.
    #[track_caller]
    fn assert_err(source: &str, line: u32, column: u32, message: &str) {
        let src: String = source.chars().take(100).collect();
        let err = match parse(source, FILE, false) {
            Ok(_) => panic!("{src:?} should fail"),
            Err(e) => e,
        };
        let rendered = err.to_string();
        let Error::Syntax {
            pos, message: m, ..
        } = &err
        else {
            panic!("not a syntax error: {rendered}");
        };
        assert!(
            m.contains(message),
            "message {m:?} lacks {message:?} for {src:?}"
        );
        assert_eq!(
            (pos.line, pos.column),
            (line, column),
            "position of {m:?} for {src:?}"
        );
        assert!(
            rendered.contains(&format!("{FILE}:{line}:{column}: syntax error")),
            "{rendered}"
        );
    }

    fn plugin(c: &Config) -> &Plugin {
        match &c.sections[0].items[0] {
            Item::Plugin(p) => p,
            other => panic!("not a plugin: {other:?}"),
        }
    }

    fn value<'c>(p: &'c Plugin, name: &str) -> &'c ValueKind {
        &p.attributes
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no option {name}"))
            .value
            .kind
    }

    fn attr_value(v: &str) -> ValueKind {
        let c = ok(&format!("filter {{ f {{ x => {v} }} }}"));
        value(plugin(&c), "x").clone()
    }

    fn s(text: &str) -> ValueKind {
        ValueKind::String(text.to_string())
    }

    fn rv(r: &Rvalue) -> String {
        match &r.kind {
            RvalueKind::String(s) => format!("{s:?}"),
            RvalueKind::Number(n) => n.clone(),
            RvalueKind::Selector(s) => s.clone(),
            RvalueKind::Regex(re) => format!("/{re}/"),
            RvalueKind::Array(items) => {
                format!("[{}]", items.iter().map(rv).collect::<Vec<_>>().join(","))
            }
            RvalueKind::MethodCall { name, args } => {
                format!(
                    "{name}({})",
                    args.iter().map(rv).collect::<Vec<_>>().join(",")
                )
            }
        }
    }

    /// A compact, fully parenthesised rendering of a condition.
    fn cs(c: &Condition) -> String {
        match &c.kind {
            ConditionKind::Boolean(l, op, r) => {
                let op = match op {
                    BoolOp::And => "and",
                    BoolOp::Or => "or",
                    BoolOp::Xor => "xor",
                    BoolOp::Nand => "nand",
                };
                format!("({} {op} {})", cs(l), cs(r))
            }
            ConditionKind::Not(inner) => format!("!{}", cs(inner)),
            ConditionKind::Compare(l, op, r) => {
                let op = match op {
                    CompareOp::Eq => "==",
                    CompareOp::Ne => "!=",
                    CompareOp::Lt => "<",
                    CompareOp::Gt => ">",
                    CompareOp::Le => "<=",
                    CompareOp::Ge => ">=",
                };
                format!("({} {op} {})", rv(l), rv(r))
            }
            ConditionKind::Match {
                left,
                pattern,
                negate,
            } => format!(
                "({} {} {})",
                rv(left),
                if *negate { "!~" } else { "=~" },
                rv(pattern)
            ),
            ConditionKind::In {
                left,
                right,
                negate,
            } => format!(
                "({} {} {})",
                rv(left),
                if *negate { "not in" } else { "in" },
                rv(right)
            ),
            ConditionKind::Truthy(r) => rv(r),
        }
    }

    fn branch(c: &Config) -> &Branch {
        match &c.sections[0].items[0] {
            Item::Branch(b) => b,
            other => panic!("not a branch: {other:?}"),
        }
    }

    fn cond(text: &str) -> String {
        let c = ok(&format!("filter {{ if {text} {{ }} }}"));
        cs(&branch(&c).cases[0].condition)
    }

    // ---- valid configurations ----

    #[test]
    fn empty_configs_have_no_sections() {
        for src in ["", "  \n\t\r\n", "# just a comment", "# c1\n\n   # c2\n"] {
            assert!(ok(src).sections.is_empty(), "{src:?}");
        }
    }

    #[test]
    fn sections_repeat_in_order_and_may_be_empty() {
        let c = ok("input { }\nfilter{}output {\n}\ninput {}");
        let kinds: Vec<_> = c.sections.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                SectionKind::Input,
                SectionKind::Filter,
                SectionKind::Output,
                SectionKind::Input
            ]
        );
        assert!(c.sections.iter().all(|s| s.items.is_empty()));
        assert_eq!((c.sections[2].pos.line, c.sections[2].pos.column), (2, 9));
        assert_eq!((c.sections[3].pos.line, c.sections[3].pos.column), (4, 1));
        assert_eq!(&*c.sections[0].pos.file, FILE);
    }

    #[test]
    fn plugins_and_positions() {
        let c = ok("input {\n  stdin {}\n  beats { port => 5044 host => \"0.0.0.0\" }\n}");
        let items = &c.sections[0].items;
        assert_eq!(items.len(), 2);
        let Item::Plugin(beats) = &items[1] else {
            panic!()
        };
        assert_eq!(beats.name, "beats");
        assert_eq!((beats.pos.line, beats.pos.column), (3, 3));
        assert_eq!(beats.attributes.len(), 2);
        let port = &beats.attributes[0];
        assert_eq!((port.pos.line, port.pos.column), (3, 11));
        assert_eq!(port.value.kind, ValueKind::Number("5044".into()));
        assert_eq!((port.value.pos.line, port.value.pos.column), (3, 19));
        assert_eq!(value(beats, "host"), &s("0.0.0.0"));
    }

    #[test]
    fn adjacent_plugins_need_no_separator() {
        let c = ok("output{stdout{}null{}}");
        assert_eq!(c.sections[0].items.len(), 2);
    }

    #[test]
    fn quoted_plugin_and_option_names() {
        let c = ok(r#"filter { "my-filter" { "add_tag" => "x" 'single' => 1 } 'other' {} }"#);
        let p = plugin(&c);
        assert_eq!(p.name, "my-filter");
        assert_eq!(p.attributes[0].name, "add_tag");
        assert_eq!(p.attributes[1].name, "single");
        let Item::Plugin(other) = &c.sections[0].items[1] else {
            panic!()
        };
        assert_eq!(other.name, "other");
    }

    #[test]
    fn every_value_kind() {
        assert_eq!(attr_value(r#""double""#), s("double"));
        assert_eq!(attr_value("'single'"), s("single"));
        assert_eq!(attr_value(r#""""#), s(""));
        for n in ["-1", "3.5", "3.", "0", "5044", "-0.25"] {
            assert_eq!(attr_value(n), ValueKind::Number(n.into()), "{n}");
        }
        for w in ["true", "false", "json", "_x", "a1"] {
            assert_eq!(attr_value(w), ValueKind::Bareword(w.into()), "{w}");
        }
        assert_eq!(attr_value("[]"), ValueKind::Array(vec![]));
        assert_eq!(attr_value("{}"), ValueKind::Hash(vec![]));
        let ValueKind::Array(items) =
            attr_value(r#"[ "a", 'b' , 1, true, [2, []], { kk => vv } ]"#)
        else {
            panic!()
        };
        let kinds: Vec<_> = items.iter().map(|v| &v.kind).collect();
        assert_eq!(kinds[0], &s("a"));
        assert_eq!(kinds[1], &s("b"));
        assert_eq!(kinds[2], &ValueKind::Number("1".into()));
        assert_eq!(kinds[3], &ValueKind::Bareword("true".into()));
        assert!(matches!(kinds[4], ValueKind::Array(inner) if inner.len() == 2));
        assert!(matches!(kinds[5], ValueKind::Hash(h) if h[0].key == "kk"));
    }

    #[test]
    fn strings_span_lines() {
        assert_eq!(attr_value("\"a\nb\r\nc\""), s("a\nb\r\nc"));
    }

    #[test]
    fn hashes_nest_and_accept_key_kinds_and_commas() {
        let v = attr_value(
            "{\n  \"message\" => \"%{x}\"\n  'q' => 1\n  plain => [1, 2]\n  404 => { inner => { deep => yes } }\n  -1 => x1\n}",
        );
        let ValueKind::Hash(entries) = v else {
            panic!()
        };
        let keys: Vec<_> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["message", "q", "plain", "404", "-1"]);
        assert_eq!((entries[3].key_pos.line, entries[3].key_pos.column), (5, 3));
        let ValueKind::Hash(inner) = &entries[3].value.kind else {
            panic!()
        };
        assert!(matches!(&inner[0].value.kind, ValueKind::Hash(d) if d[0].key == "deep"));

        // Commas between entries, as configurations in the wild write them.
        let ValueKind::Hash(entries) = attr_value(r#"{ "a" => 1, "b" => 2 ,"c" => 3 }"#) else {
            panic!()
        };
        assert_eq!(entries.len(), 3);
        let ValueKind::Hash(entries) = attr_value(r#"{"a"=>1 "b"=>2}"#) else {
            panic!()
        };
        assert_eq!(entries[1].key, "b");
    }

    #[test]
    fn plugin_as_value() {
        let c = ok(r#"input { stdin { codec => json_lines { charset => "UTF-8" } type => x1 } }"#);
        let p = plugin(&c);
        let ValueKind::Plugin(codec) = value(p, "codec") else {
            panic!()
        };
        assert_eq!(codec.name, "json_lines");
        assert_eq!(value(codec, "charset"), &s("UTF-8"));
        assert_eq!(value(p, "type"), &ValueKind::Bareword("x1".into()));
        // Bare codec names stay barewords; a comment may sit before the block.
        assert_eq!(attr_value("json"), ValueKind::Bareword("json".into()));
        let ValueKind::Plugin(q) = attr_value("\"json\" # c\n {}") else {
            panic!()
        };
        assert_eq!(q.name, "json");
        let ValueKind::Plugin(h) = attr_value("json-lines {}") else {
            panic!()
        };
        assert_eq!(h.name, "json-lines");
    }

    #[test]
    fn comments_anywhere_whitespace_goes() {
        let src = "# head\ninput # after name\n{ # after brace\n  stdin # before block\n  { # in plugin\n    tags # before arrow\n    => # after arrow\n    [ # in array\n      \"a\" # after element\n      , # after comma\n      \"b\"\n    ] # between options\n    add_field => { # in hash\n      \"k\" # key\n      => \"v\" # value\n    }\n  }\n  if # before cond\n  [a] # after rvalue\n  == # after op\n  1 # before and\n  and # after and\n  ( # in paren\n    [b] # x\n  ) # before block\n  { }\n  # before else\n  else # after else\n  { }\n} # trailing, no newline";
        let c = ok(src);
        let items = &c.sections[0].items;
        let Item::Plugin(p) = &items[0] else { panic!() };
        let ValueKind::Array(tags) = value(p, "tags") else {
            panic!()
        };
        assert_eq!(tags.len(), 2);
        let ValueKind::Hash(h) = value(p, "add_field") else {
            panic!()
        };
        assert_eq!(h[0].key, "k");
        let Item::Branch(b) = &items[1] else { panic!() };
        assert_eq!(cs(&b.cases[0].condition), "(([a] == 1) and [b])");
        assert!(b.otherwise.is_some());
    }

    #[test]
    fn comparison_operators() {
        assert_eq!(cond(r#"[a] == "x""#), r#"([a] == "x")"#);
        assert_eq!(cond("[a]!=1"), "([a] != 1)");
        assert_eq!(cond("[a] < 1"), "([a] < 1)");
        assert_eq!(cond("[a] > -1.5"), "([a] > -1.5)");
        assert_eq!(cond("[a] <= [b][c]"), "([a] <= [b][c])");
        assert_eq!(cond("1 >= [a]"), "(1 >= [a])");
        assert_eq!(cond(r#""x" == 'x'"#), r#"("x" == "x")"#);
    }

    #[test]
    fn in_and_not_in() {
        assert_eq!(cond(r#""error" in [tags]"#), r#"("error" in [tags])"#);
        assert_eq!(
            cond(r#"[a] not in ["x", "y"]"#),
            r#"([a] not in ["x","y"])"#
        );
        assert_eq!(cond("[a] not  # c\n in [b]"), "([a] not in [b])");
        assert_eq!(cond("[a] in [1, [2, 3]]"), "([a] in [1,[2,3]])");
        assert_eq!(cond("[a] in []"), "([a] in [])");
        // Barewords in a condition array are strings, as in Logstash.
        assert_eq!(cond("[a] in [foo, bar]"), r#"([a] in ["foo","bar"])"#);
        // PEG order: a one-element bracket is a field reference, not an array.
        assert_eq!(cond(r#"[a] in ["x"]"#), r#"([a] in ["x"])"#);
        let c = ok(r#"filter { if [a] in ["x"] {} }"#);
        let ConditionKind::In { right, .. } = &branch(&c).cases[0].condition.kind else {
            panic!()
        };
        assert_eq!(right.kind, RvalueKind::Selector(r#"["x"]"#.into()));
    }

    #[test]
    fn regex_matches() {
        assert_eq!(cond(r"[m] =~ /^a\/b\d+$/"), r"([m] =~ /^a/b\d+$/)");
        assert_eq!(cond(r#"[m] !~ "x.*""#), r#"([m] !~ "x.*")"#);
        assert_eq!(cond(r#"[m] =~ 'y'"#), r#"([m] =~ "y")"#);
        let c = ok("filter { if [m] =~ /a b/ {} }");
        let ConditionKind::Match {
            pattern, negate, ..
        } = &branch(&c).cases[0].condition.kind
        else {
            panic!()
        };
        assert_eq!(pattern.kind, RvalueKind::Regex("a b".into()));
        assert_eq!((pattern.pos.line, pattern.pos.column), (1, 20));
        assert!(!negate);
        // A regex literal is also a plain rvalue.
        assert_eq!(cond("/re/"), "/re/");
    }

    #[test]
    fn negation_and_parentheses() {
        assert_eq!(cond("![a]"), "![a]");
        assert_eq!(cond("! [a][b]"), "![a][b]");
        assert_eq!(cond("!([a] == 1)"), "!([a] == 1)");
        assert_eq!(cond("!( [a] or [b] )"), "!([a] or [b])");
        assert_eq!(cond("(([a]))"), "[a]");
        assert_eq!(cond("([a] or [b]) and [c]"), "(([a] or [b]) and [c])");
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(cond("[a] and [b] or [c]"), "(([a] and [b]) or [c])");
        assert_eq!(cond("[a] or [b] and [c]"), "([a] or ([b] and [c]))");
        assert_eq!(
            cond("[a] or [b] and [c] or [d]"),
            "(([a] or ([b] and [c])) or [d])"
        );
        assert_eq!(
            cond("[a] and [b] and [c] or [d] and [e]"),
            "((([a] and [b]) and [c]) or ([d] and [e]))"
        );
        assert_eq!(cond("[a] or [b] or [c]"), "(([a] or [b]) or [c])");
    }

    #[test]
    fn xor_and_nand_chains_are_left_associative() {
        assert_eq!(cond("[a] xor [b] xor [c]"), "(([a] xor [b]) xor [c])");
        assert_eq!(cond("[a] nand [b] nand [c]"), "(([a] nand [b]) nand [c])");
        assert_eq!(cond("([a] xor [b]) and [c]"), "(([a] xor [b]) and [c])");
    }

    #[test]
    fn truthiness_and_method_calls() {
        assert_eq!(cond("[field]"), "[field]");
        assert_eq!(cond("[@metadata][x]"), "[@metadata][x]");
        assert_eq!(cond(r#""literal""#), r#""literal""#);
        assert_eq!(cond("42"), "42");
        assert_eq!(cond("[a]and[b]"), "([a] and [b])");
        assert_eq!(cond(r#"len([a], "x") > 2"#), r#"(len([a],"x") > 2)"#);
        assert_eq!(cond("now ( )"), "now()");
    }

    #[test]
    fn else_if_chains_and_nesting() {
        let src = "filter {\n  if [a] {\n    drop {}\n  } else if [b] == 1 {\n    if [c] { mutate {} } else { x1 {} }\n  } else if [d] {\n  } else {\n    noop {}\n  }\n  after {}\n}";
        let c = ok(src);
        let items = &c.sections[0].items;
        assert_eq!(items.len(), 2);
        let b = branch(&c);
        assert_eq!(b.cases.len(), 3);
        assert_eq!((b.pos.line, b.pos.column), (2, 3));
        assert_eq!((b.cases[1].pos.line, b.cases[1].pos.column), (4, 10));
        assert_eq!(cs(&b.cases[1].condition), "([b] == 1)");
        let Item::Branch(inner) = &b.cases[1].body[0] else {
            panic!()
        };
        assert_eq!(inner.otherwise.as_ref().map(Vec::len), Some(1));
        assert!(b.cases[2].body.is_empty());
        let Some(otherwise) = &b.otherwise else {
            panic!()
        };
        assert!(matches!(&otherwise[0], Item::Plugin(p) if p.name == "noop"));
        assert!(matches!(&items[1], Item::Plugin(p) if p.name == "after"));
    }

    #[test]
    fn branches_in_every_section() {
        let c = ok("input { if [a] { stdin {} } }\nfilter { if [a] {} }\noutput { if [a] { stdout {} } else { null {} } }");
        for s in &c.sections {
            assert!(matches!(s.items[0], Item::Branch(_)), "{:?}", s.kind);
        }
        // Keywords glued to what follows are still keywords when a name cannot continue.
        let c = ok("filter{if[a]{}else{}}");
        assert!(branch(&c).otherwise.is_some());
        // ... and plugin names that merely start with one are plugins.
        let c = ok("filter { iffy {} elsewhere {} }");
        assert!(matches!(&c.sections[0].items[1], Item::Plugin(p) if p.name == "elsewhere"));
    }

    #[test]
    fn strings_without_escape_support_keep_backslashes() {
        assert_eq!(attr_value(r#""a\"b""#), s(r#"a\"b"#));
        assert_eq!(attr_value(r#""tab\there\n""#), s(r"tab\there\n"));
        assert_eq!(attr_value(r"'it\'s'"), s(r"it\'s"));
        assert_eq!(attr_value(r#"'say "hi"'"#), s(r#"say "hi""#));
        assert_eq!(attr_value(r#""C:\temp\x""#), s(r"C:\temp\x"));
    }

    #[test]
    fn strings_with_escape_support() {
        let c =
            ok_escapes(r#"filter { f { a => "l1\nl2\r\t\0 \\ \" \' \x \u0041" b => 'it\'s' } }"#);
        let p = plugin(&c);
        assert_eq!(value(p, "a"), &s("l1\nl2\r\t\0 \\ \" ' \\x \\u0041"));
        assert_eq!(value(p, "b"), &s("it's"));
        // Hash keys, plugin names and condition strings are processed too.
        let c = ok_escapes(r#"filter { "a\tb" { "k\n" => { "x\"y" => 1 } } if [m] == "\t" {} }"#);
        let p = plugin(&c);
        assert_eq!(p.name, "a\tb");
        assert_eq!(p.attributes[0].name, "k\n");
        let ValueKind::Hash(h) = &p.attributes[0].value.kind else {
            panic!()
        };
        assert_eq!(h[0].key, "x\"y");
        let Item::Branch(b) = &c.sections[0].items[1] else {
            panic!()
        };
        assert_eq!(cs(&b.cases[0].condition), r#"([m] == "\t")"#);
    }

    #[test]
    fn crlf_line_endings() {
        let src = "input {\r\n  stdin {\r\n    codec => line # c\r\n  }\r\n}\r\nfilter {\r\n  if [a] {\r\n  }\r\n}\r\n";
        let c = ok(src);
        assert_eq!(c.sections.len(), 2);
        let p = plugin(&c);
        assert_eq!(
            (p.attributes[0].pos.line, p.attributes[0].pos.column),
            (3, 5)
        );
        assert_err(
            "input {\r\n  stdin {\r\n    codec line\r\n  }\r\n}\r\n",
            3,
            11,
            "expected \"=>\" after option name \"codec\", found \"line\"",
        );
    }

    #[test]
    fn columns_count_characters_and_skip_a_bom() {
        let c = ok("\u{feff}filter { mutate { add_tag => \"é\" x1 => 1 } }");
        assert_eq!(c.sections[0].pos.column, 1);
        let p = plugin(&c);
        assert_eq!(p.attributes[1].pos.column, 34);
        assert_err("filter { m { \"é€😀\" 1 } }", 1, 20, "expected \"=>\"");
    }

    // ---- malformed configurations ----

    #[test]
    fn missing_arrow() {
        assert_err(
            "input {\n  beats {\n    port 5044\n  }\n}",
            3,
            10,
            "expected \"=>\" after option name \"port\", found \"5044\"",
        );
        assert_err(
            "filter { f { a => 1 b } }",
            1,
            23,
            "expected \"=>\" after option name \"b\", found \"}\"",
        );
    }

    #[test]
    fn missing_brace_after_plugin_name() {
        assert_err(
            "input {\n  stdin\n}",
            3,
            1,
            "expected \"{\" after plugin name \"stdin\", found \"}\"",
        );
        assert_err(
            "input { stdin codec => json }",
            1,
            15,
            "expected \"{\" after plugin name \"stdin\", found \"codec\"",
        );
        assert_err(
            "input {}\noutput stdout {}",
            2,
            8,
            "expected \"{\" after section name \"output\", found \"stdout\"",
        );
    }

    #[test]
    fn missing_closing_brace() {
        assert_err(
            "input {\n  stdin {\n}\n",
            4,
            1,
            "unexpected end of input: \"{\" opened at 1:7 is never closed",
        );
        assert_err(
            "filter {\n  mutate { add_field => {\n \"a\" => \"b\"\n",
            4,
            1,
            "\"{\" opened at 2:25 is never closed",
        );
        assert_err(
            "filter { if [a] {\n drop {}\n}",
            3,
            2,
            "\"{\" opened at 1:8 is never closed",
        );
        assert_err(
            "input { x { a => [1, 2",
            1,
            23,
            "\"[\" opened at 1:18 is never closed",
        );
    }

    #[test]
    fn unterminated_strings_and_regexes() {
        assert_err(
            "filter {\n  mutate {\n    add_tag => \"oops\n  }\n}\n",
            3,
            16,
            "unterminated string starting at 3:16",
        );
        assert_err("filter { m { a => 'x\\' } }", 1, 19, "unterminated string");
        // As in Logstash, `\"` never closes a string, even after another backslash.
        assert_err(
            "filter { m { a => \"C:\\\\\" } }",
            1,
            19,
            "unterminated string",
        );
        assert_err(
            "filter {\n if [m] =~ /abc {\n }\n}",
            2,
            12,
            "unterminated regex starting at 2:12",
        );
    }

    #[test]
    fn unknown_section() {
        assert_err(
            "inputs { }",
            1,
            1,
            "expected one of input, filter, output, found \"inputs\"",
        );
        assert_err(
            "input {}\n\n  {",
            3,
            3,
            "expected one of input, filter, output, found \"{\"",
        );
        assert_err(
            "input {} }",
            1,
            10,
            "expected one of input, filter, output, found \"}\"",
        );
    }

    #[test]
    fn commas_between_options() {
        assert_err(
            "input {\n  beats { port => 5044, host => \"x\" }\n}",
            2,
            23,
            "unexpected \",\" after option \"port\": options are separated by whitespace, not commas",
        );
        assert_err(
            "filter { f { a => \"x\"b => 1 } }",
            1,
            22,
            "expected whitespace or \"}\" after the value of option \"a\", found \"b\"",
        );
    }

    #[test]
    fn trailing_commas() {
        assert_err(
            "filter {\n  mutate { add_tag => [\"a\", \"b\",] }\n}",
            2,
            32,
            "trailing \",\" in array",
        );
        assert_err(
            "filter { f { h => { a1 => 1, } } }",
            1,
            28,
            "trailing \",\" in hash",
        );
        assert_err(
            "filter { f { a => [,] } }",
            1,
            20,
            "expected an array element, found \",\"",
        );
        assert_err(
            "filter { if fn(1,) {} }",
            1,
            17,
            "trailing \",\" in method call",
        );
    }

    #[test]
    fn bad_numbers_and_barewords() {
        assert_err(
            "filter { f { a => 1.2.3 } }",
            1,
            19,
            "invalid number \"1.2.3\"",
        );
        assert_err(
            "filter { f { a => 5044abc } }",
            1,
            19,
            "invalid number \"5044abc\"",
        );
        assert_err("filter { f { a => -x } }", 1, 19, "invalid number \"-x\"");
        assert_err(
            "filter { if [a] == 1.2.3 {} }",
            1,
            20,
            "invalid number \"1.2.3\"",
        );
        assert_err(
            "filter { f { a => x } }",
            1,
            19,
            "a bareword needs at least two characters, found \"x\"",
        );
        assert_err(
            "filter { f { a => json-lines } }",
            1,
            19,
            "\"json-lines\" is not a valid bareword",
        );
    }

    #[test]
    fn else_without_if() {
        assert_err(
            "filter {\n  drop {}\n  else { drop {} }\n}",
            3,
            3,
            "\"else\" without a preceding \"if\" block",
        );
        assert_err(
            "filter { if [a] {} else {} else {} }",
            1,
            28,
            "\"else\" without a preceding \"if\"",
        );
        assert_err(
            "filter { if [a] {} else [b] {} }",
            1,
            25,
            "expected \"{\" or \"if\" after \"else\", found \"[\"",
        );
    }

    #[test]
    fn empty_or_unfinished_conditions() {
        assert_err(
            "filter {\n  if {\n  }\n}",
            2,
            6,
            "expected a condition after \"if\", found \"{\"",
        );
        assert_err(
            "filter { if () {} }",
            1,
            14,
            "expected a condition after \"(\", found \")\"",
        );
        assert_err(
            "filter { if [a] and {} }",
            1,
            21,
            "expected a condition after \"and\", found \"{\"",
        );
        assert_err(
            "filter { if [a] == {} }",
            1,
            20,
            "expected a value after \"==\", found \"{\"",
        );
        assert_err(
            "filter { if [a] = \"b\" {} }",
            1,
            17,
            "expected \"{\" after the condition, found \"=\"",
        );
        assert_err(
            "filter { if [a] not [b] {} }",
            1,
            21,
            "expected \"in\" after \"not\"",
        );
        assert_err(
            "filter { if [a] =~ [b] {} }",
            1,
            20,
            "expected a regex /.../ or a string after \"=~\", found \"[\"",
        );
        assert_err(
            "filter { if !\"x\" {} }",
            1,
            14,
            "expected \"(\" or a field reference after \"!\"",
        );
        assert_err(
            "filter { if message == \"x\" {} }",
            1,
            13,
            "unexpected word \"message\" in condition: write [message] for a field",
        );
        assert_err(
            "filter {\n if ([a] == 1 {} }",
            2,
            15,
            "expected \")\" to close the \"(\" at 2:5, found \"{\"",
        );
        assert_err(
            "filter { if [a] in [{ b1 => 1 }, 2] {} }",
            1,
            20,
            "a hash cannot be used",
        );
    }

    #[test]
    fn mixing_xor_or_nand_needs_parentheses() {
        assert_err(
            "filter {\n  if [a] and [b] xor [c] {}\n}",
            2,
            18,
            "mixing \"xor\" with \"and\" needs parentheses",
        );
        assert_err(
            "filter { if [a] xor [b] and [c] {} }",
            1,
            25,
            "mixing \"xor\" with \"and\" needs parentheses",
        );
        assert_err(
            "filter { if [a] nand [b] or [c] {} }",
            1,
            26,
            "mixing \"nand\" with \"or\"",
        );
        assert_err(
            "filter { if [a] xor [b] nand [c] {} }",
            1,
            25,
            "mixing \"xor\" with \"nand\"",
        );
    }

    #[test]
    fn bare_arrow() {
        assert_err(
            "input { => 1 }",
            1,
            9,
            "expected a plugin, \"if\" or \"}\", found \"=>\"",
        );
        assert_err(
            "input { stdin { => 1 } }",
            1,
            17,
            "expected an option name or \"}\" in plugin \"stdin\", found \"=>\"",
        );
        assert_err(
            "input { stdin { a => => 1 } }",
            1,
            22,
            "expected a value for option \"a\", found \"=>\"",
        );
        assert_err(
            "input { x { a => } }",
            1,
            18,
            "expected a value for option \"a\", found \"}\"",
        );
        assert_err(
            "filter { f { h => { k1 1 } } }",
            1,
            24,
            "expected \"=>\" after hash key \"k1\", found \"1\"",
        );
    }

    #[test]
    fn unclosed_selector() {
        assert_err(
            "filter {\n  if [foo == \"x\" {\n    drop {}\n  }\n}\n",
            2,
            6,
            "unclosed \"[\" in field reference: no \"]\" before end of input",
        );
        assert_err(
            "filter {\n  if [foo {\n    mutate { add_tag => [\"x\"] }\n  }\n}\n",
            2,
            6,
            "unclosed \"[\" in field reference: found \"[\" at 3:25",
        );
        assert_err(
            "filter { if ![a {} }",
            1,
            14,
            "unclosed \"[\" in field reference",
        );
        assert_err("filter { if ![] {} }", 1, 14, "empty field reference");
    }

    #[test]
    fn hostile_input_errors_without_panicking() {
        let deep = "[".repeat(100_000);
        assert_err(
            &format!("filter {{ f {{ a => {deep} }} }}"),
            1,
            19 + 255,
            "nesting deeper than 256 levels",
        );
        let parens = "(".repeat(10_000);
        assert!(parse(&format!("filter {{ if {parens}[a] {{}} }}"), FILE, false).is_err());
        let nested_if = "if [a] {".repeat(5_000);
        assert!(parse(&format!("filter {{ {nested_if} }}"), FILE, false).is_err());
        let codecs = "c { a => ".repeat(5_000);
        assert!(parse(&format!("filter {{ {codecs} }}"), FILE, false).is_err());
        let hashes = "{ a1 => ".repeat(5_000);
        assert!(parse(&format!("filter {{ f {{ a => {hashes} }} }}"), FILE, false).is_err());
        assert!(parse(&"![".repeat(5_000), FILE, false).is_err());

        assert_err("input {\0}", 1, 8, "found \"\\0\"");
        assert_err("\0\0\0", 1, 1, "expected one of input, filter, output");
        assert_err("input { stdin { a\0 => 1 } }", 1, 18, "expected \"=>\"");
        assert_err("@#$%^&*", 1, 1, "expected one of input");
        assert_err("input { \u{a0} }", 1, 9, r#"found "\u{a0}""#);
        assert_err("filter { if [a] ==", 1, 19, "found end of input");
    }

    #[test]
    fn long_single_line_keeps_exact_columns() {
        // Thousands of nodes on one line with multi-byte characters: columns must stay
        // exact (and the parse linear; a quadratic one takes visibly long here).
        let mut src = String::from("filter { ");
        for _ in 0..5_000 {
            src.push_str("f { a => \"é😀\" } ");
        }
        src.push_str("last { z => 1 } }");
        let c = ok(&src);
        let Some(Item::Plugin(last)) = c.sections[0].items.last() else {
            panic!()
        };
        let byte = src.find("z =>").unwrap_or_default();
        let column = src[..byte].chars().count() as u32 + 1;
        assert_eq!(last.attributes[0].pos.column, column);
    }

    /// The depth limit must trip before a 2 MiB stack (tokio's and the test harness's
    /// default) runs out, in the unoptimised build where frames are largest.
    #[test]
    fn depth_limit_fits_a_two_mib_stack() {
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let n = 1_000;
                let inputs = [
                    format!("filter {{ {} }}", "if [a] {".repeat(n)),
                    format!("filter {{ {} }}", "c { a => ".repeat(n)),
                    format!("filter {{ f {{ a => {} }} }}", "{ a1 => ".repeat(n)),
                    format!("filter {{ f {{ a => {} }} }}", "[".repeat(n)),
                    format!("filter {{ if {}[a] {{}} }}", "(".repeat(n)),
                    format!("filter {{ if {}[a] {{}} }}", "!(".repeat(n)),
                    format!("filter {{ if [a] in {} {{}} }}", "[".repeat(n)),
                    format!("filter {{ if {} {{}} }}", "fn(".repeat(n)),
                    format!("filter {{ {} }}", "c { a => { k1 => [ d { b => ".repeat(n)),
                ];
                inputs
                    .iter()
                    .map(|src| match parse(src, FILE, false) {
                        Err(Error::Syntax { message, .. }) => message,
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let messages = handle
            .join()
            .unwrap_or_else(|_| panic!("parser overflowed"));
        for m in messages {
            assert!(m.contains("nesting deeper than 256 levels"), "{m}");
        }
    }

    #[test]
    fn moderate_nesting_is_fine() {
        let n = 200;
        let src = format!(
            "filter {{ f {{ a => {}1{} }} }}",
            "[".repeat(n),
            "]".repeat(n)
        );
        ok(&src);
        let src = format!("filter {{ if {}[a]{} {{}} }}", "(".repeat(n), ")".repeat(n));
        ok(&src);
        let src = format!("filter {{ {} {} }}", "if [a] {".repeat(n), "}".repeat(n));
        ok(&src);
    }

    #[test]
    fn snippet_points_at_the_error() {
        let err = parse("input {\n  beats { port 5044 }\n}", FILE, false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.ends_with("\n    beats { port 5044 }\n                 ^"),
            "{text}"
        );
    }

    /// Deterministic pseudo-random configurations from grammar tokens must never panic,
    /// and every error must point inside the source.
    #[test]
    fn fuzzed_token_soup_never_panics() {
        const TOKENS: &[&str] = &[
            "input", "filter", "output", "{", "}", "[", "]", "(", ")", "=>", ",", "\"s\"", "'t'",
            "\"", "'", "/re/", "/", "#c\n", "\n", " ", "\r\n", "if", "else", "and", "or", "xor",
            "nand", "!", "==", "!=", "<", ">", "<=", ">=", "=~", "!~", "in", "not ", "123", "-4.5",
            "3.", "-", "word", "x", "[f]", "[a][b]", "\\", "\\\"", "\0", "é", "😀", "codec",
            "json", "f(", "\t", "#", "\"a\nb\"",
        ];
        let mut state: u64 = 0x5eed_1234_abcd_ef01;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let mut parsed = 0;
        for round in 0..4_000 {
            let len = 1 + next() % 60;
            let mut src = String::new();
            if round % 2 == 0 {
                // Start like a real config so the soup gets past the section keyword.
                src.push_str(["input { ", "filter { f { a => ", "filter { if "][next() % 3]);
            }
            for _ in 0..len {
                src.push_str(TOKENS[next() % TOKENS.len()]);
                if next() % 3 == 0 {
                    src.push(' ');
                }
            }
            for escapes in [false, true] {
                match parse(&src, FILE, escapes) {
                    Ok(_) => parsed += 1,
                    Err(Error::Syntax { pos, snippet, .. }) => {
                        let lines = src.split('\n').count() as u32;
                        assert!(pos.line >= 1 && pos.line <= lines, "{src:?} {pos}");
                        assert!(pos.column >= 1, "{src:?} {pos}");
                        assert!(snippet.contains('^'));
                    }
                    Err(other) => panic!("unexpected error kind {other}"),
                }
            }
        }
        // Random bytes (made valid UTF-8) as well.
        for _ in 0..1_000 {
            let len = next() % 80;
            let bytes: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
            let src = String::from_utf8_lossy(&bytes);
            let _ = parse(&src, FILE, true);
            let _ = parse(&format!("filter {{ if {src} {{}} }}"), FILE, false);
        }
        assert!(parsed > 0, "the soup should sometimes be valid");
    }
}
