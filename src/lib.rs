//! # dynrule
//!
//! A compiler and evaluator for Microsoft Entra ID dynamic membership rules, and the
//! group-based licensing and what-if steps built on it.
//!
//! One type per stage and one verb per step:
//!
//! | stage | type | step |
//! | --- | --- | --- |
//! | text → tokens | [`syntax::lex::Token`] | [`syntax::lex::lex`] |
//! | tokens → syntax tree | [`syntax::ast::Rule`] | [`parse`] |
//! | syntax tree → typed rule | [`hir::Rule`] | [`check`](fn@check) |
//! | typed rule → warnings | [`diag::Diagnostic`] | [`lint::lint`] |
//! | typed rule → bytecode | [`program::Program`] | [`program::Program::compile`] |
//! | export → columns | [`table::Table`] | [`load::load`] |
//! | bytecode × columns → members | [`bitmap::Bitmap`] | [`vm::evaluate`] |
//! | snapshot → every group's members | [`recompute::Memberships`] | [`recompute::memberships`] |
//! | members → licences | [`licensing::Assignments`] | [`licensing::assign`] |
//! | change → difference | [`whatif::WhatIf`] | [`whatif::run`] |
//!
//! ```
//! let checked = dynrule::check(r#"(user.department -eq "Sales") -and (user.accountEnabled -eq true)"#);
//! assert!(checked.is_valid());
//! assert_eq!(checked.object, Some(dynrule::schema::ObjectType::User));
//!
//! let bad = dynrule::check("user.departmnt -eq \"Sales\"");
//! assert_eq!(bad.diagnostics[0].code.as_str(), "DR101");
//! assert_eq!(bad.diagnostics[0].help.as_deref(), Some("did you mean `user.department`?"));
//! ```
//!
//! Input safety: no input makes the front end panic or overflow its stack (nesting is bounded by
//! [`syntax::parse::MAX_NESTING`]); this is fuzzed (`fuzz/`) and property-tested.

#![forbid(unsafe_code)]

pub mod bitmap;
pub mod catalog;
pub mod check;
pub mod diag;
pub mod formats;
pub mod generate;
pub mod graph;
#[doc(hidden)]
pub mod harness;
pub mod hir;
pub mod html;
pub mod licensing;
pub mod lint;
pub mod load;
pub mod membership;
pub mod oracle;
pub mod output;
pub mod pattern;
pub mod plan;
pub mod program;
pub mod recompute;
pub mod report;
pub mod schema;
pub mod sources;
pub mod span;
pub mod syntax;
pub mod synth;
pub mod table;
pub mod tenant;
pub mod trust;
pub mod vm;
pub mod whatif;

use diag::{Code, Diagnostic};
use schema::ObjectType;
use span::Span;

/// Longest rule Entra accepts, in characters (Microsoft Learn, 2022–2026: 3,072; it was 2,048
/// until 2019). Counted in Unicode scalar values of the text as given (decision D14).
pub const MAX_RULE_CHARS: usize = 3072;

/// Everything the front end found out about one rule.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The syntax tree, when the rule parsed.
    pub ast: Option<syntax::ast::Rule>,
    /// The typed rule, when there was no error.
    pub hir: Option<hir::Rule>,
    /// `user` or `device`, when the rule names properties of one of them.
    pub object: Option<ObjectType>,
    /// Errors and warnings, ordered by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// True when there is no error (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.hir.is_some() && !self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The rule compiled for the VM with `opts`, when it is valid and compiles (`None`
    /// otherwise; the diagnostics say why).
    pub fn program(&self, opts: &program::CompileOptions) -> Option<program::Program> {
        self.hir
            .as_ref()
            .filter(|_| self.is_valid())
            .and_then(|h| program::Program::compile(h, opts).ok())
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

/// Lexes and parses a rule. Returns the tree when the rule is well-formed, and the lexical and
/// syntax diagnostics. A tree may come with lexical errors (a recovered typographic dash, say).
pub fn parse(src: &str) -> (Option<syntax::ast::Rule>, Vec<Diagnostic>) {
    let (tokens, mut diags) = syntax::lex::lex(src);
    diags.extend(whitespace_warnings(src, &tokens));
    let chars = src.chars().count();
    if chars > MAX_RULE_CHARS {
        diags.push(
            Diagnostic::new(
                Code::RuleTooLong,
                Span::new(0, src.len()),
                format!("the rule has {chars} characters; Entra accepts at most {MAX_RULE_CHARS}"),
            )
            .with_help("shorten it: `-in [...]` lists are shorter than `-or` chains"),
        );
    }
    match syntax::parse::parse_tokens(src, &tokens) {
        Ok(rule) => (Some(rule), diags),
        Err(d) => {
            diags.push(d);
            (None, diags)
        }
    }
}

fn whitespace_warnings(src: &str, tokens: &[syntax::lex::Token]) -> Vec<Diagnostic> {
    use syntax::lex::TokenKind as K;
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let K::Dash(w) = &t.kind else { continue };
        if syntax::ast::CmpOp::from_name(w).is_none() {
            continue;
        }
        let prev = i.checked_sub(1).and_then(|p| tokens.get(p));
        let before =
            prev.is_some_and(|p| p.span.end == t.span.start && matches!(p.kind, K::Word(_)));
        let after = tokens.get(i + 1).is_some_and(|n| {
            n.span.start == t.span.end && !matches!(n.kind, K::LParen | K::LBracket)
        });
        if before || after {
            out.push(
                Diagnostic::new(Code::MissingWhitespace, t.span, format!("no space around `{}`", t.span.slice(src)))
                    .with_help("accepted, but the 2016 documentation listed this form as an error: put spaces around operators"),
            );
        }
    }
    for t in tokens {
        if let K::Dollar(_) = t.kind {
            out.push(
                Diagnostic::new(
                    Code::DollarNull,
                    t.span,
                    "`$null` is the old spelling of `null`",
                )
                .with_help("write `null`"),
            );
        }
    }
    out
}

/// Runs the whole front end on a rule: lex, parse, check, lint.
pub fn check(src: &str) -> Checked {
    check_rule(src, true)
}

/// [`check`], with the lints (warnings) only when `lints`: evaluation needs the errors and the
/// HIR, and on a tenant of 15,000 rules the lints were a third of compiling them.
pub(crate) fn check_rule(src: &str, lints: bool) -> Checked {
    let (ast, mut diagnostics) = parse(src);
    let mut hir = None;
    let mut object = None;
    if let Some(rule) = &ast {
        let (h, o, d) = check::check_ast(src, rule);
        object = o;
        diagnostics.extend(d);
        if !diagnostics.iter().any(Diagnostic::is_error) {
            if let Some(h) = h {
                if lints {
                    diagnostics.extend(lint::lint(rule, &h));
                }
                hir = Some(h);
            }
        }
    }
    diagnostics.sort_by_key(|d| (d.span.start, d.severity, d.span.end));
    Checked {
        ast,
        hir,
        object,
        diagnostics,
    }
}

/// Formats a rule in canonical form (see [`syntax::print::canonicalize`]). Fails with the
/// syntax diagnostics when the rule does not parse; semantic errors do not prevent formatting.
pub fn format(src: &str) -> Result<String, Vec<Diagnostic>> {
    match parse(src) {
        (Some(rule), _) => Ok(syntax::print::print(&syntax::print::canonicalize(&rule))),
        (None, diags) => Err(diags),
    }
}
