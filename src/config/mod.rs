//! The Logstash pipeline configuration language: parsing, values, templates and the
//! compilation of a parsed configuration into a runnable pipeline.

pub mod ast;
pub mod env;
pub mod error;
pub mod field_ref;
pub mod options;
pub mod parser;
pub mod sprintf;

pub use error::Error;
pub use parser::parse;
