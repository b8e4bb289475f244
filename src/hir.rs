//! The typed rule: names resolved against the schema, operators checked against types, values
//! parsed (dates, durations, regexes validated). Built only by [`crate::check`](fn@crate::check); the evaluator
//! and the compiler to bytecode start from here and never see syntax.
//!
//! Shape decisions (`grammar/DECISIONS.md`):
//! - Negated operators are their positive test with `negated: true`. A null (missing) value makes
//!   every positive test false, so negated tests are true on null (D1).
//! - A string operator written directly on a string collection (`user.proxyAddresses
//!   -startsWith "smtp:"`) is desugared to `-any (_ -startsWith …)` (D7).
//! - Parentheses are gone; node spans cover the expression without them (as Graph's
//!   `expressionEvaluationDetails.expression` shows it).

use crate::schema::{ObjectType, Property};
use crate::span::Span;

/// A checked rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Users or devices.
    pub object: ObjectType,
    /// What the rule selects.
    pub body: Body,
}

/// The three rule forms Entra has.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// A boolean expression.
    Expr(Expr),
    /// `Direct Reports for "<id>"`: users whose `manager` is that id (and, per the 2026 docs, the
    /// manager; see decision D12). The id is lower-cased.
    DirectReports {
        /// Manager's object id, lower case.
        manager_id: String,
        /// Span of the whole rule.
        span: Span,
    },
    /// `user.memberOf -any (group.objectId -in [...])`: direct members of any of the groups.
    MemberOf {
        /// Source group ids, lower case, deduplicated, in source order.
        group_ids: Vec<String>,
        /// Span of the whole rule.
        span: Span,
    },
}

/// A typed expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is in the rule text.
    pub span: Span,
}

/// Typed expression kinds. `And`/`Or` have two or more children.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// All children true.
    And(Vec<Expr>),
    /// Some child true.
    Or(Vec<Expr>),
    /// Child false.
    Not(Box<Expr>),
    /// A comparison.
    Cmp(Cmp),
    /// Some element of a collection satisfies the predicate (false on an empty collection).
    Any(Collection, Box<Expr>),
    /// Every element does (true on an empty collection: Microsoft Learn, example 3 of
    /// "Multi-value properties").
    All(Collection, Box<Expr>),
}

/// A collection that `-any`/`-all` ranges over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Collection {
    /// A string collection (`proxyAddresses`, `otherMails`, `devicePhysicalIds`,
    /// `systemLabels`); elements are `_`.
    Strings(&'static Property),
    /// `user.assignedPlans`; elements are `assignedPlan.<field>`.
    AssignedPlans,
}

/// What a comparison reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// A schema property.
    Prop(&'static Property),
    /// A directory extension `extension_<appId>_<name>` (a string), canonical as written.
    Extension(String),
    /// `_`: the current element of a string collection.
    Element,
    /// `assignedPlan.<field>` inside `assignedPlans -any/-all`.
    Plan(PlanField),
}

impl Attr {
    /// Name for messages and explain output: `department`, `extension_…_x`, `_`,
    /// `assignedPlan.service`.
    pub fn name(&self) -> String {
        match self {
            Attr::Prop(p) => p.name.to_string(),
            Attr::Extension(n) => n.clone(),
            Attr::Element => "_".to_string(),
            Attr::Plan(f) => format!("assignedPlan.{}", f.as_str()),
        }
    }
}

/// Fields of an `assignedPlan` element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlanField {
    /// `servicePlanId` (GUID)
    ServicePlanId,
    /// `service` (for example `exchange`, `SCO`)
    Service,
    /// `capabilityStatus` (`Enabled`, `Deleted`, `Suspended`, …)
    CapabilityStatus,
}

impl PlanField {
    /// Canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanField::ServicePlanId => "servicePlanId",
            PlanField::Service => "service",
            PlanField::CapabilityStatus => "capabilityStatus",
        }
    }
}

/// A typed comparison: `negated` flips the result of `test`, and a null value fails every test.
#[derive(Clone, Debug, PartialEq)]
pub struct Cmp {
    /// What is read.
    pub attr: Attr,
    /// The positive test.
    pub test: Test,
    /// `-ne`, `-notContains`, … : the result is `!test`.
    pub negated: bool,
}

/// Positive tests. Strings compare case-insensitively (Microsoft Learn: "All string operations
/// are not case sensitive"); the values here are as written, folding happens when compiling.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// `-eq null`: true when the value is missing. (`-ne null` is this, negated.)
    IsNull,
    /// `-eq "v"`
    Eq(String),
    /// `-startsWith "v"`
    StartsWith(String),
    /// `-endsWith "v"`
    EndsWith(String),
    /// `-contains "v"` (substring)
    Contains(String),
    /// `-match "re"`: unanchored, case-insensitive; the pattern compiled at check time.
    Match(String),
    /// `-in [...]`
    In(Vec<String>),
    /// `-eq true` / `-eq false`
    Bool(bool),
    /// `-eq <date>` (to the second, as both sides are instants).
    DateEq(DateValue),
    /// `-ge <date>`
    DateGe(DateValue),
    /// `-le <date>`
    DateLe(DateValue),
}

/// A date on the right-hand side.
#[derive(Clone, Debug, PartialEq)]
pub enum DateValue {
    /// A fixed instant.
    At(jiff::Timestamp),
    /// `system.now`, optionally `±` an ISO 8601 duration (validated; kept as text because a
    /// calendar duration such as `P1M` only becomes a length against a given "now").
    Now(Option<(crate::syntax::ast::Sign, String)>),
}

impl DateValue {
    /// The instant this stands for when "now" is `now`: a fixed instant, or `now` plus or minus
    /// the duration, added in UTC as calendar arithmetic (so `P1M` from 31 January is the end
    /// of February). `None` when the duration does not parse or the result is out of range.
    pub fn resolve(&self, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
        match self {
            DateValue::At(t) => Some(*t),
            DateValue::Now(None) => Some(now),
            DateValue::Now(Some((sign, text))) => {
                let span = crate::formats::parse_duration(text)?;
                let span = if *sign == crate::syntax::ast::Sign::Minus {
                    span.negate()
                } else {
                    span
                };
                let zoned = now.to_zoned(jiff::tz::TimeZone::UTC);
                zoned.checked_add(span).ok().map(|z| z.timestamp())
            }
        }
    }
}

impl Rule {
    /// Every comparison in the rule, in source order.
    pub fn comparisons(&self) -> Vec<&Cmp> {
        let mut out = Vec::new();
        if let Body::Expr(e) = &self.body {
            e.walk(&mut |e| {
                if let ExprKind::Cmp(c) = &e.kind {
                    out.push(c);
                }
            });
        }
        out
    }
}

impl Expr {
    /// Visits this node and its descendants, parents first.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match &self.kind {
            ExprKind::And(xs) | ExprKind::Or(xs) => xs.iter().for_each(|x| x.walk(f)),
            ExprKind::Not(x) | ExprKind::Any(_, x) | ExprKind::All(_, x) => x.walk(f),
            ExprKind::Cmp(_) => {}
        }
    }
}
