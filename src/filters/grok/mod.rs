//! `grok` filter.
pub mod compiler;
pub mod library;
