//! The reference oracle: a plain tree-walking evaluator of a [`hir::Rule`] over one Microsoft
//! Graph object (a user or device as `GET /users/{id}` returns it), written independently of the
//! columnar engine so the two can be tested against each other. It is also the explain engine:
//! [`explain`] returns the result in the shape of Graph's `evaluateDynamicMembership`
//! (`evaluateDynamicMembershipResult`, beta).
//!
//! Semantics (`grammar/DECISIONS.md`): null fails every positive test and passes its negation
//! (D1); strings compare after Unicode lower-casing (D2); `-match` is unanchored and
//! case-insensitive (D9); `-all` is true on an empty collection; Direct Reports includes the
//! manager (D12); `system.now` is [`Context::now`].
//!
//! Reading a property: the schema's Graph key first (`mobile` ← `mobilePhone`,
//! `extensionAttribute1` ← `onPremisesExtensionAttributes.extensionAttribute1`), then the rule's
//! own name at the top level (hand-written records, flattened exports). Keys match
//! case-insensitively, since `Get-MgUser | ConvertTo-Json` writes PascalCase.

use crate::formats::get_ci;
use crate::hir::{self, Attr, Body, Collection, DateValue, ExprKind, Test};
use crate::pattern::Pattern;
use crate::schema::{GraphKey, PropType, Property};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What the evaluation needs besides the object.
#[derive(Clone, Debug)]
pub struct Context {
    /// The instant `system.now` stands for.
    pub now: jiff::Timestamp,
    /// Direct group memberships by object id (lower case), for memberOf rules. When this is
    /// empty, each object's own `memberOf` array (`$expand=memberOf`) is read instead.
    pub member_of: HashMap<String, Vec<String>>,
}

impl Context {
    /// A context with `now` and no group memberships.
    pub fn at(now: jiff::Timestamp) -> Self {
        Context {
            now,
            member_of: HashMap::new(),
        }
    }
}

/// Graph's `evaluateDynamicMembershipResult`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationResult {
    /// The rule evaluated, as given.
    pub membership_rule: String,
    /// True when the object is a member.
    pub membership_rule_evaluation_result: bool,
    /// The evaluation tree.
    pub membership_rule_evaluation_details: ExpressionDetails,
}

/// Graph's `expressionEvaluationDetails`: one node of the tree (decision D16: an `-and`/`-or`
/// chain is one node with a child per operand; `-any`/`-all` has a child per element).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpressionDetails {
    /// The node's rule text, without outer parentheses.
    pub expression: String,
    /// Its value.
    pub expression_result: bool,
    /// Children, in rule order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expression_evaluation_details: Vec<ExpressionDetails>,
    /// For comparisons and collections: what was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_to_evaluate: Option<PropertyToEvaluate>,
}

/// Graph's `propertyToEvaluate`: the property name without its `user.`/`device.` prefix, and its
/// value as text (`null` when missing; a collection as a JSON array).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyToEvaluate {
    /// `displayName`, `proxyAddresses`, `assignedPlan.service`.
    pub property_name: String,
    /// The value read.
    pub property_value: Option<String>,
}

/// True when `object` is a member under `rule`.
pub fn evaluate(rule: &hir::Rule, object: &Value, cx: &Context) -> bool {
    explain(rule, "", object, cx).membership_rule_evaluation_result
}

/// Evaluates `rule` (whose text is `src`) on `object`, keeping every intermediate result.
pub fn explain(rule: &hir::Rule, src: &str, object: &Value, cx: &Context) -> EvaluationResult {
    let empty = Map::new();
    let obj = object.as_object().unwrap_or(&empty);
    let details = match &rule.body {
        Body::Expr(e) => Eval { src, obj, cx }.expr(e, &Scope::Top),
        Body::DirectReports { manager_id, span } => {
            let own = text_of(get_ci(obj, "id"));
            // `$expand=manager` gives an object; flattened exports a plain id or `managerId`.
            let manager = match get_ci(obj, "manager") {
                Some(Value::Object(m)) => text_of(get_ci(m, "id")),
                Some(Value::String(id)) => Some(id.clone()),
                _ => None,
            }
            .or_else(|| text_of(get_ci(obj, "managerId")));
            let result = manager
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(manager_id))
                || own
                    .as_deref()
                    .is_some_and(|o| o.eq_ignore_ascii_case(manager_id));
            leaf(span.slice(src), result, "manager", manager)
        }
        Body::MemberOf { group_ids, span } => {
            let groups = groups_of(obj, cx);
            let result = groups
                .iter()
                .any(|g| group_ids.iter().any(|id| id.eq_ignore_ascii_case(g)));
            leaf(
                span.slice(src),
                result,
                "memberOf",
                Some(serde_json::to_string(&groups).unwrap_or_default()),
            )
        }
    };
    EvaluationResult {
        membership_rule: src.to_string(),
        membership_rule_evaluation_result: details.expression_result,
        membership_rule_evaluation_details: details,
    }
}

fn leaf(expr: &str, result: bool, name: &str, value: Option<String>) -> ExpressionDetails {
    ExpressionDetails {
        expression: expr.to_string(),
        expression_result: result,
        expression_evaluation_details: Vec::new(),
        property_to_evaluate: Some(PropertyToEvaluate {
            property_name: name.to_string(),
            property_value: value,
        }),
    }
}

fn groups_of(obj: &Map<String, Value>, cx: &Context) -> Vec<String> {
    // Memberships given (a tenant's groups) replace the object's own `memberOf`.
    if !cx.member_of.is_empty() {
        return text_of(get_ci(obj, "id"))
            .and_then(|id| cx.member_of.get(&id.to_lowercase()).cloned())
            .unwrap_or_default();
    }
    get_ci(obj, "memberOf")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|g| match g {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => text_of(get_ci(o, "id")),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A scalar as text: strings as they are, numbers and booleans printed, null and the rest `None`.
pub(crate) fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn read_graph<'v>(obj: &'v Map<String, Value>, p: &Property) -> Option<&'v Value> {
    let v = match p.graph {
        GraphKey::Field(k) => get_ci(obj, k),
        GraphKey::Nested(a, b) => get_ci(obj, a)
            .and_then(Value::as_object)
            .and_then(|o| get_ci(o, b)),
        GraphKey::First(k) => get_ci(obj, k)
            .and_then(Value::as_array)
            .and_then(|a| a.first()),
        GraphKey::Derived => None,
    };
    match v {
        Some(Value::Null) | None => get_ci(obj, p.name).filter(|v| !v.is_null()),
        some => some,
    }
}

enum Scope<'v> {
    Top,
    Element(Option<String>),
    Plan(&'v Map<String, Value>),
}

struct Eval<'a> {
    src: &'a str,
    obj: &'a Map<String, Value>,
    cx: &'a Context,
}

/// `-match`: patterns compile once per thread (a small cache, emptied when full), as regex
/// compilation would otherwise dominate evaluating one rule over many objects.
fn matches_pattern(pattern: &str, value: &str) -> bool {
    thread_local! {
        static CACHE: std::cell::RefCell<HashMap<String, Option<Pattern>>> =
            std::cell::RefCell::new(HashMap::new());
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 256 {
            c.clear();
        }
        c.entry(pattern.to_string())
            .or_insert_with(|| Pattern::new(pattern).ok())
            .as_ref()
            .is_some_and(|r| r.is_match(value))
    })
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

impl<'a> Eval<'a> {
    fn node(
        &self,
        span: crate::span::Span,
        result: bool,
        children: Vec<ExpressionDetails>,
        prop: Option<PropertyToEvaluate>,
    ) -> ExpressionDetails {
        ExpressionDetails {
            expression: span.slice(self.src).to_string(),
            expression_result: result,
            expression_evaluation_details: children,
            property_to_evaluate: prop,
        }
    }

    fn expr(&self, e: &hir::Expr, scope: &Scope<'_>) -> ExpressionDetails {
        match &e.kind {
            ExprKind::And(xs) | ExprKind::Or(xs) => {
                let children: Vec<ExpressionDetails> =
                    xs.iter().map(|x| self.expr(x, scope)).collect();
                let result = if matches!(e.kind, ExprKind::And(_)) {
                    children.iter().all(|c| c.expression_result)
                } else {
                    children.iter().any(|c| c.expression_result)
                };
                self.node(e.span, result, children, None)
            }
            ExprKind::Not(x) => {
                let child = self.expr(x, scope);
                let result = !child.expression_result;
                self.node(e.span, result, vec![child], None)
            }
            ExprKind::Cmp(c) => {
                let (value, result) = self.cmp(c, scope);
                let prop = PropertyToEvaluate {
                    property_name: c.attr.name(),
                    property_value: value,
                };
                self.node(e.span, result, Vec::new(), Some(prop))
            }
            ExprKind::Any(coll, pred) | ExprKind::All(coll, pred) => {
                let any = matches!(e.kind, ExprKind::Any(..));
                let (name, children, shown): (&str, Vec<ExpressionDetails>, Value) = match coll {
                    Collection::Strings(p) => {
                        let elems = self.strings(p);
                        let children = elems
                            .iter()
                            .map(|s| self.expr(pred, &Scope::Element(s.clone())))
                            .collect();
                        (p.name, children, Value::from(elems))
                    }
                    Collection::AssignedPlans => {
                        let plans: Vec<&Map<String, Value>> = get_ci(self.obj, "assignedPlans")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().filter_map(Value::as_object).collect())
                            .unwrap_or_default();
                        let children = plans
                            .iter()
                            .map(|plan| self.expr(pred, &Scope::Plan(plan)))
                            .collect();
                        let shown = get_ci(self.obj, "assignedPlans")
                            .cloned()
                            .unwrap_or(Value::Array(Vec::new()));
                        ("assignedPlans", children, shown)
                    }
                };
                let result = if any {
                    children.iter().any(|c| c.expression_result)
                } else {
                    children.iter().all(|c| c.expression_result)
                };
                let prop = PropertyToEvaluate {
                    property_name: name.to_string(),
                    property_value: Some(shown.to_string()),
                };
                self.node(e.span, result, children, Some(prop))
            }
        }
    }

    fn strings(&self, p: &Property) -> Vec<Option<String>> {
        match read_graph(self.obj, p) {
            Some(Value::Array(a)) => a.iter().map(|v| text_of(Some(v))).collect(),
            // A lone scalar is one element, as its JSON text (D31).
            Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
                vec![text_of(Some(v))]
            }
            _ => Vec::new(),
        }
    }

    /// The value read (as text) and the comparison's result.
    fn cmp(&self, c: &hir::Cmp, scope: &Scope<'_>) -> (Option<String>, bool) {
        let raw: Option<String> = match (&c.attr, scope) {
            (Attr::Element, Scope::Element(v)) => v.clone(),
            (Attr::Plan(f), Scope::Plan(plan)) => text_of(get_ci(plan, f.as_str())),
            (Attr::Prop(p), _) => text_of(read_graph(self.obj, p)),
            (Attr::Extension(name), _) => text_of(get_ci(self.obj, name)),
            _ => None,
        };
        let ty = match &c.attr {
            Attr::Prop(p) => p.ty,
            _ => PropType::String,
        };
        // A blank boolean or date is null, as the load reads it (D31, D62).
        let raw = raw.filter(|v| {
            !(matches!(ty, PropType::Bool | PropType::DateTime) && v.trim().is_empty())
        });
        let positive = match (&c.test, raw.as_deref()) {
            (Test::IsNull, v) => v.is_none(),
            (_, None) => false,
            (Test::Bool(b), Some(v)) => {
                ty == PropType::Bool && v.eq_ignore_ascii_case(if *b { "true" } else { "false" })
            }
            (Test::Eq(x), Some(v)) => fold(v) == fold(x),
            (Test::StartsWith(x), Some(v)) => fold(v).starts_with(&fold(x)),
            (Test::EndsWith(x), Some(v)) => fold(v).ends_with(&fold(x)),
            (Test::Contains(x), Some(v)) => fold(v).contains(&fold(x)),
            (Test::Match(p), Some(v)) => matches_pattern(p, v),
            (Test::In(xs), Some(v)) => {
                let v = fold(v);
                xs.iter().any(|x| fold(x) == v)
            }
            (Test::DateEq(d) | Test::DateGe(d) | Test::DateLe(d), Some(v)) => {
                match (crate::formats::export_date(v), self.date(d)) {
                    (Some(t), Some(rhs)) => match c.test {
                        Test::DateEq(_) => t == rhs,
                        Test::DateGe(_) => t >= rhs,
                        _ => t <= rhs,
                    },
                    _ => false,
                }
            }
        };
        (raw, positive != c.negated)
    }

    fn date(&self, d: &DateValue) -> Option<jiff::Timestamp> {
        d.resolve(self.cx.now)
    }
}

/// Renders an evaluation tree as text: one line per node, indented two spaces per level, `✓` or
/// `✗` for its result, and for a comparison the property it read and the value (`null` when
/// missing): `✗ user.department -eq "Sales"    [user.department = Marketing]`.
pub fn render_tree(d: &ExpressionDetails, depth: usize, out: &mut String) {
    let mark = if d.expression_result { "✓" } else { "✗" };
    let value = d
        .property_to_evaluate
        .as_ref()
        .map(|p| {
            format!(
                "    [{} = {}]",
                p.property_name,
                p.property_value.as_deref().unwrap_or("null")
            )
        })
        .unwrap_or_default();
    out.push_str(&format!(
        "{}{mark} {}{value}\n",
        "  ".repeat(depth),
        d.expression
    ));
    for c in &d.expression_evaluation_details {
        render_tree(c, depth + 1, out);
    }
}
