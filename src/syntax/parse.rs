//! The parser: tokens → [`ast::Rule`](crate::syntax::ast::Rule), with `nom` combinators over a token slice.
//!
//! Grammar (`grammar/rule.ebnf` has the full EBNF):
//!
//! ```text
//! rule       := or_expr EOF
//! or_expr    := and_expr ( ("-or" | "or") and_expr )*
//! and_expr   := unary ( ("-and" | "and") unary )*
//! unary      := ("-not" | "not")* primary
//! primary    := "(" or_expr ")" | direct_reports | operand ( quantifier lambda | op value )
//! lambda     := "(" or_expr ")" | operand op value
//! ```
//!
//! Precedence follows Microsoft Learn ("Operator precedence"): comparisons, then `-not`, then
//! `-and`, then `-or`. `-any`/`-all` are parsed as primaries (their predicate is a separate
//! expression), so a following `-and` is never absorbed into an unparenthesised predicate.
//!
//! Input safety: nesting deeper than [`MAX_NESTING`] is rejected before recursive descent
//! starts, so no input can overflow the stack.

use super::ast::*;
use super::lex::{Token, TokenKind};
use crate::diag::{Code, Diagnostic};
use crate::span::Span;
use nom::branch::alt;
use nom::combinator::{cut, opt};
use nom::multi::many0;
use nom::sequence::preceded;
use nom::{IResult, Parser};

/// Deepest nesting of parentheses and brackets accepted (our limit; Entra documents none).
/// 100 levels is far beyond any real rule (3,072 characters) and keeps recursion shallow.
pub const MAX_NESTING: usize = 100;

/// A token slice as nom input (nom 8 implements [`nom::Input`] only for bytes and text).
#[derive(Clone, Copy, Debug)]
pub struct Tokens<'a>(pub &'a [Token]);

impl<'a> Tokens<'a> {
    fn split_first(&self) -> Option<(&'a Token, Tokens<'a>)> {
        self.0.split_first().map(|(t, rest)| (t, Tokens(rest)))
    }
    fn first(&self) -> Option<&'a Token> {
        self.0.first()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn skip(&self, n: usize) -> Tokens<'a> {
        Tokens(self.0.get(n..).unwrap_or(&[]))
    }
}

impl<'a> nom::Input for Tokens<'a> {
    type Item = &'a Token;
    type Iter = std::slice::Iter<'a, Token>;
    type IterIndices = std::iter::Enumerate<std::slice::Iter<'a, Token>>;

    fn input_len(&self) -> usize {
        self.0.len()
    }
    fn take(&self, index: usize) -> Self {
        Tokens(self.0.get(..index).unwrap_or(self.0))
    }
    fn take_from(&self, index: usize) -> Self {
        self.skip(index)
    }
    fn take_split(&self, index: usize) -> (Self, Self) {
        let (a, b) = self.0.split_at(index.min(self.0.len()));
        (Tokens(b), Tokens(a))
    }
    fn position<P>(&self, predicate: P) -> Option<usize>
    where
        P: Fn(Self::Item) -> bool,
    {
        self.0.iter().position(predicate)
    }
    fn iter_elements(&self) -> Self::Iter {
        self.0.iter()
    }
    fn iter_indices(&self) -> Self::IterIndices {
        self.0.iter().enumerate()
    }
    fn slice_index(&self, count: usize) -> Result<usize, nom::Needed> {
        if self.0.len() >= count {
            Ok(count)
        } else {
            Err(nom::Needed::new(count - self.0.len()))
        }
    }
}

type In<'a> = Tokens<'a>;
type Res<'a, O> = IResult<In<'a>, O, PError>;

/// What the parser expected where it failed.
#[derive(Clone, Debug, PartialEq)]
enum Expected {
    Expression,
    Operator { operand: Span },
    Value { op: Span },
    Close { open: Span, bracket: bool },
    ListItem,
    Duration,
    ManagerId,
    Connective,
}

/// A parse failure: how many tokens were left, and what was expected there.
#[derive(Clone, Debug, PartialEq)]
pub struct PError {
    remaining: usize,
    expected: Expected,
}

impl<'a> nom::error::ParseError<In<'a>> for PError {
    fn from_error_kind(input: In<'a>, _: nom::error::ErrorKind) -> Self {
        PError {
            remaining: input.len(),
            expected: Expected::Expression,
        }
    }

    fn append(_: In<'a>, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // Keep the error that got furthest.
        if other.remaining <= self.remaining {
            other
        } else {
            self
        }
    }
}

fn err<O>(i: In<'_>, expected: Expected) -> Res<'_, O> {
    Err(nom::Err::Error(PError {
        remaining: i.len(),
        expected,
    }))
}

fn failure<O>(i: In<'_>, expected: Expected) -> Res<'_, O> {
    Err(nom::Err::Failure(PError {
        remaining: i.len(),
        expected,
    }))
}

fn word_is(t: &Token, w: &str) -> bool {
    matches!(&t.kind, TokenKind::Word(x) if x.eq_ignore_ascii_case(w))
}

fn keyword_is(t: &Token, w: &str) -> bool {
    match &t.kind {
        TokenKind::Dash(x) | TokenKind::Word(x) => x.eq_ignore_ascii_case(w),
        _ => false,
    }
}

fn keyword<'a>(w: &'static str) -> impl Fn(In<'a>) -> Res<'a, Span> {
    move |i: In<'a>| match i.split_first() {
        Some((t, rest)) if keyword_is(t, w) => Ok((rest, t.span)),
        _ => err(i, Expected::Connective),
    }
}

fn punct<'a>(kind: TokenKind) -> impl Fn(In<'a>) -> Res<'a, Span> {
    move |i: In<'a>| match i.split_first() {
        Some((t, rest)) if t.kind == kind => Ok((rest, t.span)),
        _ => err(i, Expected::Expression),
    }
}

fn span_of(first: Span, items: &[Expr]) -> Span {
    items.last().map_or(first, |l| first.to(l.span))
}

fn or_expr(i: In<'_>) -> Res<'_, Expr> {
    let (i, first) = and_expr(i)?;
    let (i, rest) = many0(preceded(keyword("or"), cut(and_expr))).parse(i)?;
    if rest.is_empty() {
        return Ok((i, first));
    }
    let start = first.span;
    let mut items = vec![first];
    items.extend(rest);
    let span = span_of(start, &items);
    Ok((
        i,
        Expr {
            kind: ExprKind::Or(items),
            span,
        },
    ))
}

fn and_expr(i: In<'_>) -> Res<'_, Expr> {
    let (i, first) = unary(i)?;
    let (i, rest) = many0(preceded(keyword("and"), cut(unary))).parse(i)?;
    if rest.is_empty() {
        return Ok((i, first));
    }
    let start = first.span;
    let mut items = vec![first];
    items.extend(rest);
    let span = span_of(start, &items);
    Ok((
        i,
        Expr {
            kind: ExprKind::And(items),
            span,
        },
    ))
}

fn unary(i: In<'_>) -> Res<'_, Expr> {
    let (i, nots) = many0(keyword("not")).parse(i)?;
    let (i, mut expr) = if nots.is_empty() {
        primary(i)?
    } else {
        cut(primary).parse(i)?
    };
    for not in nots.into_iter().rev() {
        let span = not.to(expr.span);
        expr = Expr {
            kind: ExprKind::Not(Box::new(expr)),
            span,
        };
    }
    Ok((i, expr))
}

fn primary(i: In<'_>) -> Res<'_, Expr> {
    alt((paren_expr, direct_reports, comparison_or_quantified)).parse(i)
}

fn paren_expr(i: In<'_>) -> Res<'_, Expr> {
    let (i, open) = punct(TokenKind::LParen)(i)?;
    let (i, inner) = cut(or_expr).parse(i)?;
    let (i, close) = close(i, open, false)?;
    Ok((
        i,
        Expr {
            kind: ExprKind::Paren(Box::new(inner)),
            span: open.to(close),
        },
    ))
}

fn close(i: In<'_>, open: Span, bracket: bool) -> Res<'_, Span> {
    let want = if bracket {
        TokenKind::RBracket
    } else {
        TokenKind::RParen
    };
    match i.split_first() {
        Some((t, rest)) if t.kind == want => Ok((rest, t.span)),
        _ => failure(i, Expected::Close { open, bracket }),
    }
}

fn direct_reports(i: In<'_>) -> Res<'_, Expr> {
    match i.0 {
        [a, b, c, rest @ ..]
            if word_is(a, "direct") && word_is(b, "reports") && word_is(c, "for") =>
        {
            let rest = Tokens(rest);
            match rest.split_first() {
                Some((t, rest)) => {
                    let (_, v) = scalar_value(Tokens(std::slice::from_ref(t)))
                        .or_else(|_| failure(rest, Expected::ManagerId))?;
                    Ok((
                        rest,
                        Expr {
                            kind: ExprKind::DirectReports(v),
                            span: a.span.to(t.span),
                        },
                    ))
                }
                None => failure(rest, Expected::ManagerId),
            }
        }
        _ => err(i, Expected::Expression),
    }
}

fn operand(i: In<'_>) -> Res<'_, Operand> {
    match i.split_first() {
        Some((t, rest)) => match &t.kind {
            TokenKind::Word(w) if w == "_" => Ok((
                rest,
                Operand {
                    kind: OperandKind::Element,
                    span: t.span,
                },
            )),
            TokenKind::Word(w) if !is_reserved_word(w) => {
                let segments = w.split('.').map(str::to_string).collect();
                Ok((
                    rest,
                    Operand {
                        kind: OperandKind::Path(segments),
                        span: t.span,
                    },
                ))
            }
            _ => err(i, Expected::Expression),
        },
        None => err(i, Expected::Expression),
    }
}

/// Words that can never be operands: connectives and literals.
fn is_reserved_word(w: &str) -> bool {
    ["and", "or", "not", "true", "false", "null"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(w))
}

fn comparison_or_quantified(i: In<'_>) -> Res<'_, Expr> {
    let (i, lhs) = operand(i)?;
    // From here on we are committed: an operand must be followed by an operator.
    if let Some((t, rest)) = i.split_first() {
        let quantifier = if keyword_is(t, "any") {
            Some(Quantifier::Any)
        } else if keyword_is(t, "all") {
            Some(Quantifier::All)
        } else {
            None
        };
        if let Some(quantifier) = quantifier {
            let (i, predicate) = cut(lambda).parse(rest)?;
            let span = lhs.span.to(predicate.span);
            let q = Quantified {
                collection: lhs,
                quantifier,
                quantifier_span: t.span,
                predicate: Box::new(predicate),
            };
            return Ok((
                i,
                Expr {
                    kind: ExprKind::Quantified(q),
                    span,
                },
            ));
        }
    }
    let (i, (op, rhs)) = cut(|i| op_and_value(i, lhs.span)).parse(i)?;
    let span = lhs.span.to(rhs.span);
    Ok((
        i,
        Expr {
            kind: ExprKind::Compare(Compare { lhs, op, rhs }),
            span,
        },
    ))
}

fn lambda(i: In<'_>) -> Res<'_, Expr> {
    if let Some((t, _)) = i.first().map(|t| (t, ())) {
        if t.kind == TokenKind::LParen {
            return paren_expr(i);
        }
    }
    let (i, lhs) = operand(i)?;
    let (i, (op, rhs)) = cut(|i| op_and_value(i, lhs.span)).parse(i)?;
    let span = lhs.span.to(rhs.span);
    Ok((
        i,
        Expr {
            kind: ExprKind::Compare(Compare { lhs, op, rhs }),
            span,
        },
    ))
}

fn op_and_value(i: In<'_>, operand: Span) -> Res<'_, (Op, Value)> {
    let Some((t, rest)) = i.split_first() else {
        return failure(i, Expected::Operator { operand });
    };
    let kind = match &t.kind {
        TokenKind::Dash(w) | TokenKind::Word(w) => CmpOp::from_name(w),
        _ => None,
    };
    let Some(kind) = kind else {
        return failure(i, Expected::Operator { operand });
    };
    let op = Op { kind, span: t.span };
    let (i, rhs) = value(rest).map_err(|e| match e {
        nom::Err::Error(_) => nom::Err::Failure(PError {
            remaining: rest.len(),
            expected: Expected::Value { op: t.span },
        }),
        other => other,
    })?;
    Ok((i, (op, rhs)))
}

fn value(i: In<'_>) -> Res<'_, Value> {
    alt((list, now_parenthesized, now_expr, scalar_value)).parse(i)
}

fn scalar_value(i: In<'_>) -> Res<'_, Value> {
    let Some((t, rest)) = i.split_first() else {
        return err(i, Expected::ListItem);
    };
    let kind = match &t.kind {
        TokenKind::Str(s) => ValueKind::Str(s.clone()),
        TokenKind::Dollar(_) => ValueKind::Null,
        TokenKind::Number(n) => ValueKind::Number(n.clone()),
        TokenKind::DateTime(d) => ValueKind::DateTime(d.clone()),
        TokenKind::Guid(g) => ValueKind::Guid(g.clone()),
        TokenKind::Word(w) if w.eq_ignore_ascii_case("null") => ValueKind::Null,
        TokenKind::Word(w) if w.eq_ignore_ascii_case("true") => ValueKind::Bool(true),
        TokenKind::Word(w) if w.eq_ignore_ascii_case("false") => ValueKind::Bool(false),
        TokenKind::Word(w) if w.eq_ignore_ascii_case("system.now") => {
            return err(i, Expected::ListItem);
        }
        TokenKind::Word(w) if !is_connective(w) => ValueKind::Bare(w.clone()),
        _ => return err(i, Expected::ListItem),
    };
    Ok((rest, Value { kind, span: t.span }))
}

fn is_connective(w: &str) -> bool {
    ["and", "or", "not"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(w))
}

fn list(i: In<'_>) -> Res<'_, Value> {
    let (mut i, open) = punct(TokenKind::LBracket)(i)?;
    let mut items = Vec::new();
    if let Some((t, rest)) = i.split_first() {
        if t.kind == TokenKind::RBracket {
            return Ok((
                rest,
                Value {
                    kind: ValueKind::List(items),
                    span: open.to(t.span),
                },
            ));
        }
    }
    loop {
        let (rest, item) = match scalar_value(i) {
            Ok(ok) => ok,
            Err(_) => {
                // `[` then something that is neither an item nor `]`.
                return match i.first() {
                    None => failure(
                        i,
                        Expected::Close {
                            open,
                            bracket: true,
                        },
                    ),
                    Some(_) => failure(i, Expected::ListItem),
                };
            }
        };
        items.push(item);
        match rest.split_first() {
            Some((t, after)) if t.kind == TokenKind::Comma => i = after,
            Some((t, after)) if t.kind == TokenKind::RBracket => {
                return Ok((
                    after,
                    Value {
                        kind: ValueKind::List(items),
                        span: open.to(t.span),
                    },
                ));
            }
            _ => {
                return failure(
                    rest,
                    Expected::Close {
                        open,
                        bracket: true,
                    },
                );
            }
        }
    }
}

fn now_expr(i: In<'_>) -> Res<'_, Value> {
    let Some((t, rest)) = i.split_first() else {
        return err(i, Expected::ListItem);
    };
    if !word_is(t, "system.now") {
        return err(i, Expected::ListItem);
    }
    let sign = match rest.first() {
        Some(s) if keyword_is(s, "plus") => Some(Sign::Plus),
        Some(s) if keyword_is(s, "minus") => Some(Sign::Minus),
        _ => None,
    };
    let Some(sign) = sign else {
        return Ok((
            rest,
            Value {
                kind: ValueKind::Now(None),
                span: t.span,
            },
        ));
    };
    let rest = rest.skip(1);
    match rest.split_first() {
        Some((d, after)) => match &d.kind {
            TokenKind::Word(w) => Ok((
                after,
                Value {
                    kind: ValueKind::Now(Some((sign, w.clone()))),
                    span: t.span.to(d.span),
                },
            )),
            _ => failure(rest, Expected::Duration),
        },
        None => failure(rest, Expected::Duration),
    }
}

fn now_parenthesized(i: In<'_>) -> Res<'_, Value> {
    let (i, open) = punct(TokenKind::LParen)(i)?;
    let (i, mut v) = now_expr(i)?;
    let (i, close) = close(i, open, false)?;
    v.span = open.to(close);
    Ok((i, v))
}

fn opt_rule(i: In<'_>) -> Res<'_, Option<Expr>> {
    opt(or_expr).parse(i)
}

/// Parses tokens into a rule. On failure, returns the syntax error as a diagnostic (one: the
/// first point where the rule stops making sense; lexical and semantic errors are reported
/// separately and can be many).
pub fn parse_tokens(src: &str, tokens: &[Token]) -> Result<Rule, Diagnostic> {
    if let Some(d) = check_nesting(tokens) {
        return Err(d);
    }
    if tokens.is_empty() {
        return Err(Diagnostic::new(Code::EmptyRule, Span::new(0, src.len()), "the rule is empty")
            .with_help("write a rule such as `user.department -eq \"Sales\"`; `user.objectId -ne null` selects all users"));
    }
    match opt_rule(Tokens(tokens)) {
        Ok((rest, Some(body))) if rest.is_empty() => Ok(Rule { body }),
        Ok((rest, Some(_))) => Err(trailing(src, tokens, rest)),
        Ok((rest, None)) => Err(to_diag(
            src,
            tokens,
            PError {
                remaining: rest.len(),
                expected: Expected::Expression,
            },
        )),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(to_diag(src, tokens, e)),
        Err(nom::Err::Incomplete(_)) => Err(Diagnostic::new(
            Code::UnexpectedToken,
            Span::new(src.len(), src.len()),
            "the rule ends too early",
        )),
    }
}

fn check_nesting(tokens: &[Token]) -> Option<Diagnostic> {
    // Parentheses, brackets and runs of `-not` all deepen the tree the parser builds.
    let mut depth = 0usize;
    let mut nots = 0usize;
    for t in tokens {
        match t.kind {
            TokenKind::LParen | TokenKind::LBracket => depth += 1,
            TokenKind::RParen | TokenKind::RBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
        if keyword_is(t, "not") {
            nots += 1;
        } else if t.kind != TokenKind::LParen {
            nots = 0;
        }
        if depth + nots > MAX_NESTING {
            return Some(
                Diagnostic::new(Code::NestingTooDeep, t.span, format!("expression nested more than {MAX_NESTING} deep"))
                    .with_help("flatten the rule: `-and`/`-or` chains need no nested parentheses, and `-not -not x` is `x`"),
            );
        }
    }
    None
}

fn starts_primary(t: &Token) -> bool {
    match &t.kind {
        TokenKind::LParen => true,
        TokenKind::Word(w) => !is_connective(w),
        TokenKind::Dash(w) => w.eq_ignore_ascii_case("not"),
        _ => false,
    }
}

fn trailing(src: &str, tokens: &[Token], rest: In<'_>) -> Diagnostic {
    let pos = tokens.len() - rest.len();
    let Some(t) = tokens.get(pos) else {
        return Diagnostic::new(
            Code::UnexpectedToken,
            Span::new(src.len(), src.len()),
            "unexpected end of rule",
        );
    };
    if t.kind == TokenKind::RParen {
        return Diagnostic::new(Code::UnmatchedDelimiter, t.span, "unmatched `)`")
            .with_help("remove it, or add the `(` it was meant to close");
    }
    if starts_primary(t) {
        let prev = pos
            .checked_sub(1)
            .and_then(|p| tokens.get(p))
            .map_or(t.span, |p| p.span);
        return Diagnostic::new(
            Code::MissingConnective,
            t.span,
            "missing `-and` or `-or` between two expressions",
        )
        .with_label(
            Span::new(prev.end, t.span.start.max(prev.end)),
            "connective expected here",
        )
        .with_help("join expressions with `-and` or `-or`");
    }
    if let TokenKind::Dash(w) = &t.kind {
        return unknown_operator(t.span, w, "a connective (`-and`, `-or`)");
    }
    Diagnostic::new(
        Code::UnexpectedToken,
        t.span,
        format!(
            "expected `-and`, `-or` or the end of the rule, found {}",
            t.kind.describe()
        ),
    )
}

fn to_diag(src: &str, tokens: &[Token], e: PError) -> Diagnostic {
    let pos = tokens.len().saturating_sub(e.remaining);
    let tok = tokens.get(pos);
    let end = Span::new(src.len(), src.len());
    let at = tok.map_or(end, |t| t.span);
    let found = tok.map_or_else(|| "the end of the rule".to_string(), |t| t.kind.describe());
    match e.expected {
        Expected::Expression => match tok {
            Some(t) if t.kind == TokenKind::RParen => {
                Diagnostic::new(Code::UnexpectedToken, at, "expected an expression, found `)`").with_help("remove the empty or extra parentheses")
            }
            Some(t) if matches!(&t.kind, TokenKind::Dash(w) if CmpOp::from_name(w).is_some()) => {
                Diagnostic::new(Code::UnexpectedToken, at, format!("operator {found} has no property before it"))
                    .with_help("a comparison reads `user.property -op value`")
            }
            Some(t) if matches!(&t.kind, TokenKind::Str(_) | TokenKind::Number(_) | TokenKind::Guid(_) | TokenKind::DateTime(_)) => {
                Diagnostic::new(Code::UnexpectedToken, at, format!("expected an expression, found {found}"))
                    .with_help("a comparison starts with a property: `user.property -op value`")
            }
            None => Diagnostic::new(Code::UnexpectedToken, at, "the rule ends where an expression was expected"),
            _ => Diagnostic::new(Code::UnexpectedToken, at, format!("expected an expression, found {found}")),
        },
        Expected::Operator { operand } => match tok.map(|t| &t.kind) {
            Some(TokenKind::Dash(w)) if w.eq_ignore_ascii_case("not") => {
                Diagnostic::new(Code::NotAsComparison, at, "`-not` is not a comparison operator")
                    .with_help("to test for a missing value write `-ne null`; `-not` goes before an expression: `-not (user.x -eq \"v\")`")
            }
            Some(TokenKind::Dash(w)) => unknown_operator(at, w, "an operator"),
            None => Diagnostic::new(Code::UnexpectedToken, at, format!("`{}` has no operator after it", operand.slice(src)))
                .with_label(operand, "this property"),
            _ => Diagnostic::new(Code::UnexpectedToken, at, format!("expected an operator after `{}`, found {found}", operand.slice(src)))
                .with_label(operand, "this property")
                .with_help("a comparison reads `user.property -op value`, e.g. `user.department -eq \"Sales\"`"),
        },
        Expected::Value { op } => match tok {
            None => Diagnostic::new(Code::MissingValue, op, format!("`{}` has no value after it", op.slice(src))),
            Some(t) if matches!(&t.kind, TokenKind::Dash(w) if w.eq_ignore_ascii_case("not")) || word_is(t, "not") => {
                Diagnostic::new(Code::NotAsComparison, at, "`-not` cannot stand as a value").with_help("to test for a missing value write `-ne null`")
            }
            _ => Diagnostic::new(Code::MissingValue, at, format!("expected a value after `{}`, found {found}", op.slice(src)))
                .with_label(op, "this operator")
                .with_help("values are quoted strings, `true`/`false`, `null`, lists `[\"a\", \"b\"]`, dates or `system.now`"),
        },
        Expected::Close { open, bracket } => {
            let (o, c) = if bracket { ('[', ']') } else { ('(', ')') };
            match tok {
                None => Diagnostic::new(Code::UnclosedDelimiter, open, format!("this `{o}` is never closed"))
                    .with_label(end, format!("`{c}` expected here"))
                    .with_help(format!("add the missing `{c}`")),
                Some(t) if !bracket && starts_primary(t) => {
                    Diagnostic::new(Code::MissingConnective, at, "missing `-and` or `-or` between two expressions")
                        .with_help("join expressions with `-and` or `-or`")
                }
                Some(Token { kind: TokenKind::Dash(w), .. }) if !bracket && CmpOp::from_name(w).is_none() => {
                    unknown_operator(at, w, "`)` or a connective")
                }
                Some(_) => Diagnostic::new(Code::UnclosedDelimiter, at, format!("expected `{c}`, found {found}"))
                    .with_label(open, format!("to close this `{o}`")),
            }
        }
        Expected::ListItem => Diagnostic::new(Code::UnexpectedToken, at, format!("expected a quoted list item, found {found}"))
            .with_help("lists read `[\"a\", \"b\"]`"),
        Expected::Duration => {
            let d = Diagnostic::new(Code::InvalidDuration, at, format!("expected an ISO 8601 duration such as `P30D`, found {found}"));
            match tok.map(|t| &t.kind) {
                Some(TokenKind::Str(s)) => d.with_help(format!("write the duration without quotes: `system.now -minus {s}`")),
                _ => d.with_help("durations read `P30D` (30 days), `P1Y2M`, `PT12H`"),
            }
        }
        Expected::ManagerId => Diagnostic::new(Code::UnexpectedToken, at, format!("expected the manager's object id in quotes, found {found}"))
            .with_help("`Direct Reports for \"62e19b97-8b3d-4d4a-a106-4ce66896a863\"`"),
        Expected::Connective => Diagnostic::new(Code::UnexpectedToken, at, format!("unexpected {found}")),
    }
}

/// Operator names admins meet in machine-translated documentation, with what they mean.
const LOCALISED_OPERATORS: &[(&str, &str)] = &[
    ("bevat", "-contains"),
    ("enthaelt", "-contains"),
    ("enthält", "-contains"),
    ("contient", "-contains"),
    ("contiene", "-contains"),
    ("zawiera", "-contains"),
    ("gelijk", "-eq"),
    ("gleich", "-eq"),
    ("igual", "-eq"),
    ("en", "-and"),
    ("und", "-and"),
    ("et", "-and"),
    ("y", "-and"),
    ("of", "-or"),
    ("oder", "-or"),
    ("ou", "-or"),
    ("o", "-or"),
    ("like", "-match"),
    ("notlike", "-notMatch"),
    ("isnull", "-eq null"),
];

fn unknown_operator(at: Span, word: &str, expected: &str) -> Diagnostic {
    let d = Diagnostic::new(
        Code::UnknownOperator,
        at,
        format!("`-{word}` is not an operator; expected {expected}"),
    );
    // PowerShell's wildcard operators (`-like "Sales*"`), which admins carry over from
    // `Get-MgUser | Where-Object`.
    if word.eq_ignore_ascii_case("like") || word.eq_ignore_ascii_case("notlike") {
        let not = word.len() > 4;
        return d.with_help(format!(
            "`-{word}` is PowerShell's wildcard match; rules have none: for `\"Sales*\"` write `{}`, for `\"*Sales\"` `{}`, for `\"*Sales*\"` `{}`, or `{}` with a regular expression (`^Sales`)",
            if not { "-notStartsWith" } else { "-startsWith" },
            if not { "-notEndsWith" } else { "-endsWith" },
            if not { "-notContains" } else { "-contains" },
            if not { "-notMatch" } else { "-match" },
        ));
    }
    if let Some((_, meant)) = LOCALISED_OPERATORS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(word))
    {
        return d.with_help(format!(
            "operators are always English; `-{word}` looks like a translation of `{meant}` (localised documentation translates operators)"
        ));
    }
    let names = CmpOp::ALL
        .iter()
        .map(|(_, n)| *n)
        .chain(["and", "or", "not", "any", "all"]);
    let best = names
        .map(|n| {
            (
                strsim::jaro_winkler(&n.to_ascii_lowercase(), &word.to_ascii_lowercase()),
                n,
            )
        })
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, n)) => d.with_help(format!("did you mean `-{n}`?")),
        None => d.with_help("operators: -eq -ne -startsWith -notStartsWith -endsWith -notEndsWith -contains -notContains -match -notMatch -in -notIn -ge -le -any -all -and -or -not"),
    }
}
