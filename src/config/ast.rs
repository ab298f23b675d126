//! The syntax tree of a Logstash pipeline configuration, as the parser produces it.
//! Every node carries its position so later stages can name `file:line:column`.

use std::sync::Arc;

/// A position in a configuration source: the file name (or `config string` for `-e`),
/// 1-based line and column (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A whole configuration: the sections of one or more files, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    Input,
    Filter,
    Output,
}

impl SectionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SectionKind::Input => "input",
            SectionKind::Filter => "filter",
            SectionKind::Output => "output",
        }
    }
}

/// `input { ... }`, `filter { ... }` or `output { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: SectionKind,
    pub items: Vec<Item>,
    pub pos: Pos,
}

/// What a section or a branch block holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Plugin(Plugin),
    Branch(Branch),
}

/// `name { attr => value ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    pub name: String,
    pub attributes: Vec<Attribute>,
    pub pos: Pos,
}

/// `name => value` inside a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: Value,
    pub pos: Pos,
}

/// An option value.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// A quoted string, after escape processing when `config.support_escapes` is on.
    String(String),
    /// A number as written (`-1`, `3.5`); plugins convert it to the type they need.
    Number(String),
    /// An unquoted word such as `true`, `json` or `message`.
    Bareword(String),
    Array(Vec<Value>),
    /// `{ key => value ... }`; keys are numbers, barewords or strings, kept as text.
    Hash(Vec<HashEntry>),
    /// A plugin as a value: `codec => json_lines { charset => "UTF-8" }`.
    Plugin(Plugin),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HashEntry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Value,
}

/// `if cond { ... } else if cond { ... } else { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// The `if` and each `else if`, in order.
    pub cases: Vec<Case>,
    /// The final `else` block, if any.
    pub otherwise: Option<Vec<Item>>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub condition: Condition,
    pub body: Vec<Item>,
    pub pos: Pos,
}

/// A boolean condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub kind: ConditionKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConditionKind {
    /// `a and b`, `a or b`, `a xor b`, `a nand b` with precedence already applied.
    Boolean(Box<Condition>, BoolOp, Box<Condition>),
    /// `!cond`, `!(cond)` or `![field]`.
    Not(Box<Condition>),
    /// `left op right` with `== != < > <= >=`.
    Compare(Rvalue, CompareOp, Rvalue),
    /// `left =~ /re/` or `left !~ "re"`; `negate` for `!~`.
    Match {
        left: Rvalue,
        pattern: Rvalue,
        negate: bool,
    },
    /// `left in right` / `left not in right`.
    In {
        left: Rvalue,
        right: Rvalue,
        negate: bool,
    },
    /// A bare rvalue: `if [field]` tests truthiness.
    Truthy(Rvalue),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolOp {
    And,
    Or,
    Xor,
    Nand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// An operand in a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rvalue {
    pub kind: RvalueKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RvalueKind {
    String(String),
    Number(String),
    /// A field reference as written, e.g. `[a][b]`.
    Selector(String),
    Array(Vec<Rvalue>),
    /// A regular expression literal `/.../` with `\/` already turned into `/`.
    Regex(String),
    /// `name(args)`: parsed as Logstash does, refused by the compiler.
    MethodCall {
        name: String,
        args: Vec<Rvalue>,
    },
}
