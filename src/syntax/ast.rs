//! The syntax tree: what the rule says, with spans, before any name is resolved.
//!
//! The tree keeps everything that changes meaning or that the formatter must reproduce
//! (explicit parentheses, whether an `-any` predicate was parenthesised, names as written) and
//! nothing that does not (operator spelling `eq`/`-EQ`/`–eq`, quote style, `$null` vs `null`,
//! whitespace). Spans never take part in equality (see [`Span`]).

use crate::span::Span;

/// A whole rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The top-level expression.
    pub body: Expr,
}

/// An expression node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Where it is, from its first to its last token.
    pub span: Span,
}

/// Expression kinds. `Or` and `And` hold two or more children, in source order; the parser
/// never puts an `Or` directly inside an `Or` (nor `And` in `And`) without a `Paren` between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    /// `a -or b -or …`
    Or(Vec<Expr>),
    /// `a -and b -and …`
    And(Vec<Expr>),
    /// `-not a`
    Not(Box<Expr>),
    /// `( a )`, kept so the formatter prints what the author grouped.
    Paren(Box<Expr>),
    /// `operand -op value`
    Compare(Compare),
    /// `collection -any predicate` / `-all`
    Quantified(Quantified),
    /// `Direct Reports for "<manager objectId>"`
    DirectReports(Value),
}

/// A comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    /// Left side: a property, `_`, or an element field such as `assignedPlan.service`.
    pub lhs: Operand,
    /// The operator.
    pub op: Op,
    /// Right side: a constant.
    pub rhs: Value,
}

/// An operator with its span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// Which operator.
    pub kind: CmpOp,
    /// Where it is.
    pub span: Span,
}

/// The comparison operators. `Gt`/`Lt` are parsed so the checker can say they are unsupported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `-eq`
    Eq,
    /// `-ne`
    Ne,
    /// `-startsWith`
    StartsWith,
    /// `-notStartsWith`
    NotStartsWith,
    /// `-endsWith`
    EndsWith,
    /// `-notEndsWith`
    NotEndsWith,
    /// `-contains` (substring)
    Contains,
    /// `-notContains`
    NotContains,
    /// `-match` (unanchored regular expression)
    Match,
    /// `-notMatch`
    NotMatch,
    /// `-in [list]`
    In,
    /// `-notIn [list]`
    NotIn,
    /// `-ge` (dates)
    Ge,
    /// `-le` (dates)
    Le,
    /// `-gt`: not in the language; parsed for a precise error.
    Gt,
    /// `-lt`: not in the language; parsed for a precise error.
    Lt,
}

impl CmpOp {
    /// Every operator with its canonical spelling (without the hyphen).
    pub const ALL: &'static [(CmpOp, &'static str)] = &[
        (CmpOp::Eq, "eq"),
        (CmpOp::Ne, "ne"),
        (CmpOp::StartsWith, "startsWith"),
        (CmpOp::NotStartsWith, "notStartsWith"),
        (CmpOp::EndsWith, "endsWith"),
        (CmpOp::NotEndsWith, "notEndsWith"),
        (CmpOp::Contains, "contains"),
        (CmpOp::NotContains, "notContains"),
        (CmpOp::Match, "match"),
        (CmpOp::NotMatch, "notMatch"),
        (CmpOp::In, "in"),
        (CmpOp::NotIn, "notIn"),
        (CmpOp::Ge, "ge"),
        (CmpOp::Le, "le"),
        (CmpOp::Gt, "gt"),
        (CmpOp::Lt, "lt"),
    ];

    /// Looks an operator up by name, case-insensitively, without the hyphen.
    pub fn from_name(name: &str) -> Option<CmpOp> {
        CmpOp::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(op, _)| *op)
    }

    /// Canonical spelling with the hyphen: `-startsWith`.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "-eq",
            CmpOp::Ne => "-ne",
            CmpOp::StartsWith => "-startsWith",
            CmpOp::NotStartsWith => "-notStartsWith",
            CmpOp::EndsWith => "-endsWith",
            CmpOp::NotEndsWith => "-notEndsWith",
            CmpOp::Contains => "-contains",
            CmpOp::NotContains => "-notContains",
            CmpOp::Match => "-match",
            CmpOp::NotMatch => "-notMatch",
            CmpOp::In => "-in",
            CmpOp::NotIn => "-notIn",
            CmpOp::Ge => "-ge",
            CmpOp::Le => "-le",
            CmpOp::Gt => "-gt",
            CmpOp::Lt => "-lt",
        }
    }

    /// For a negated operator, its positive twin (`NotContains` → `Contains`); `None` otherwise.
    pub fn positive(self) -> Option<CmpOp> {
        Some(match self {
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::NotStartsWith => CmpOp::StartsWith,
            CmpOp::NotEndsWith => CmpOp::EndsWith,
            CmpOp::NotContains => CmpOp::Contains,
            CmpOp::NotMatch => CmpOp::Match,
            CmpOp::NotIn => CmpOp::In,
            _ => return None,
        })
    }
}

/// `-any` or `-all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantifier {
    /// True when some element satisfies the predicate.
    Any,
    /// True when every element does (so true on an empty collection).
    All,
}

impl Quantifier {
    /// `-any` / `-all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantifier::Any => "-any",
            Quantifier::All => "-all",
        }
    }
}

/// `collection -any predicate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantified {
    /// The collection property.
    pub collection: Operand,
    /// `-any` or `-all`.
    pub quantifier: Quantifier,
    /// Span of the quantifier keyword.
    pub quantifier_span: Span,
    /// The predicate: a `Paren` when written `-any (…)`, a bare `Compare` when written
    /// `-any _ -op v`.
    pub predicate: Box<Expr>,
}

/// The left side of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operand {
    /// What it is.
    pub kind: OperandKind,
    /// Where.
    pub span: Span,
}

/// Operand kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperandKind {
    /// A dotted name as written: `user.department` is `["user", "department"]`.
    Path(Vec<String>),
    /// `_`, the current element of a string collection inside `-any`/`-all`.
    Element,
}

/// A constant on the right of an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// What it is.
    pub kind: ValueKind,
    /// Where.
    pub span: Span,
}

/// Sign of a `system.now` offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    /// `-plus`
    Plus,
    /// `-minus`
    Minus,
}

/// Constant kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A quoted string, escapes resolved.
    Str(String),
    /// `null` or `$null`.
    Null,
    /// `true` / `false` (any letter case).
    Bool(bool),
    /// An unquoted number, as written.
    Number(String),
    /// An unquoted ISO 8601 date or date-time, as written.
    DateTime(String),
    /// An unquoted GUID (always an error: it must be quoted).
    Guid(String),
    /// `[item, …]`
    List(Vec<Value>),
    /// `system.now`, optionally `-plus`/`-minus` an ISO 8601 duration (as written).
    Now(Option<(Sign, String)>),
    /// An unquoted word that is none of the above (`Sales`, `user.city`): an error.
    Bare(String),
}

impl Rule {
    /// Visits every expression node, parents before children.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        self.body.walk(f);
    }
}

impl Expr {
    /// Visits this node and its descendants, parents before children.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match &self.kind {
            ExprKind::Or(xs) | ExprKind::And(xs) => xs.iter().for_each(|x| x.walk(f)),
            ExprKind::Not(x) | ExprKind::Paren(x) => x.walk(f),
            ExprKind::Quantified(q) => q.predicate.walk(f),
            ExprKind::Compare(_) | ExprKind::DirectReports(_) => {}
        }
    }

    /// This node with any number of enclosing `Paren`s removed.
    pub fn unparen(&self) -> &Expr {
        match &self.kind {
            ExprKind::Paren(x) => x.unparen(),
            _ => self,
        }
    }
}
