//! Concrete syntax: the lexer, the syntax tree, the parser and the printer.

pub mod ast;
pub mod lex;
pub mod parse;
pub mod print;
