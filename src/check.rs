//! The checker: [`ast::Rule`] → [`hir::Rule`], resolving names against the [`schema`] and
//! reporting errors in Entra's categories ("Troubleshooting dynamic groups", Microsoft Learn).
//!
//! The checker keeps going after an error so one pass reports every unknown property, bad
//! operator and bad value in the rule; it returns a HIR only when there was no error.

use crate::diag::{Code, Diagnostic};
use crate::formats::{is_guid, parse_date, parse_duration};
use crate::hir::{self, Attr, Body, Cmp, Collection, DateValue, PlanField, Test};
use crate::pattern::Pattern;
use crate::schema::{self, ObjectType, PropType, Status};
use crate::span::Span;
use crate::syntax::ast::{self, CmpOp, ExprKind, OperandKind, ValueKind};
use crate::syntax::print::{print_expr, quote};

/// Most source groups one memberOf rule may name (Microsoft Learn, "memberOf attribute").
pub const MAX_MEMBER_OF_GROUPS: usize = 50;

#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Top,
    Strings(&'static schema::Property),
    Plans,
}

struct Cx<'s> {
    src: &'s str,
    diags: Vec<Diagnostic>,
    object: Option<(ObjectType, Span)>,
}

/// Checks a parsed rule. Returns the typed rule when there was no error, the object type the
/// rule is about when it could be told, and every diagnostic found.
pub fn check_ast(
    src: &str,
    rule: &ast::Rule,
) -> (Option<hir::Rule>, Option<ObjectType>, Vec<Diagnostic>) {
    let mut cx = Cx {
        src,
        diags: Vec::new(),
        object: None,
    };
    let body = cx.rule(rule);
    let object = cx.object.map(|(o, _)| o);
    let has_error = cx.diags.iter().any(Diagnostic::is_error);
    let hir = match (body, object) {
        (Some(body), Some(object)) if !has_error => Some(hir::Rule { object, body }),
        _ => None,
    };
    (hir, object, cx.diags)
}

impl<'s> Cx<'s> {
    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn text(&self, span: Span) -> &'s str {
        span.slice(self.src)
    }

    fn set_object(&mut self, object: ObjectType, span: Span) {
        match self.object {
            None => self.object = Some((object, span)),
            Some((first, first_span)) if first != object => {
                self.error(
                    Diagnostic::new(
                        Code::InvalidObjectType,
                        span,
                        format!("a rule cannot mix `{}.` and `{}.` properties", first.as_str(), object.as_str()),
                    )
                    .with_label(first_span, format!("the rule is about {}s from here", first.as_str()))
                    .with_help("a rule selects either users or devices; device rules cannot read the owner's user properties"),
                );
            }
            Some(_) => {}
        }
    }

    fn rule(&mut self, rule: &ast::Rule) -> Option<Body> {
        let top = rule.body.unparen();
        let parenthesized = !matches!(
            rule.body.kind,
            ExprKind::Quantified(_) | ExprKind::DirectReports(_)
        );
        match &top.kind {
            ExprKind::DirectReports(v) => {
                self.set_object(ObjectType::User, top.span);
                let id = self.object_id(v, "manager")?;
                Some(Body::DirectReports {
                    manager_id: id,
                    span: top.span,
                })
            }
            ExprKind::Quantified(q) if self.is_member_of(&q.collection) => {
                if parenthesized {
                    self.diags.push(
                        Diagnostic::new(Code::ParenthesizedMemberOf, rule.body.span, "memberOf rule wrapped in parentheses")
                            .with_help("accepted, but a parenthesised memberOf rule was reported to fail in the portal (azure-docs#94059): remove the outer parentheses"),
                    );
                }
                self.member_of(q, top.span)
            }
            _ => self.expr(&rule.body, Scope::Top).map(Body::Expr),
        }
    }

    fn is_member_of(&self, o: &ast::Operand) -> bool {
        matches!(&o.kind, OperandKind::Path(s) if matches!(s.as_slice(), [object, name] if name.eq_ignore_ascii_case("memberOf") && ObjectType::from_prefix(object).is_some()))
    }

    fn object_id(&mut self, v: &ast::Value, what: &str) -> Option<String> {
        match &v.kind {
            ValueKind::Str(s) if is_guid(s) => Some(s.to_ascii_lowercase()),
            ValueKind::Str(s) => {
                self.error(
                    Diagnostic::new(Code::NotAnObjectId, v.span, format!("{s:?} is not an object id"))
                        .with_help(format!("the {what} is named by its object id, a GUID such as \"62e19b97-8b3d-4d4a-a106-4ce66896a863\"; placeholders from documentation must be replaced")),
                );
                None
            }
            _ => {
                self.error(Diagnostic::new(
                    Code::InvalidOperands,
                    v.span,
                    format!("the {what} id must be a quoted GUID"),
                ));
                None
            }
        }
    }

    fn member_of(&mut self, q: &ast::Quantified, span: Span) -> Option<Body> {
        if let OperandKind::Path(segs) = &q.collection.kind {
            if let Some(o) = segs.first().and_then(|s| ObjectType::from_prefix(s)) {
                self.set_object(o, q.collection.span);
            }
        }
        if q.quantifier == ast::Quantifier::All {
            self.error(
                Diagnostic::new(Code::MustStandAlone, q.quantifier_span, "memberOf supports only `-any`")
                    .with_help("write `user.memberOf -any (group.objectId -in [...])` (an `-all` rule is rejected: entra-docs#102)"),
            );
            return None;
        }
        let pred = q.predicate.unparen();
        let form_help = "the only memberOf form is `user.memberOf -any (group.objectId -in ['<group id>', ...])`";
        let ExprKind::Compare(c) = &pred.kind else {
            self.error(
                Diagnostic::new(
                    Code::InvalidOperands,
                    pred.span,
                    "unsupported memberOf predicate",
                )
                .with_help(form_help),
            );
            return None;
        };
        let lhs_ok = matches!(&c.lhs.kind, OperandKind::Path(s) if matches!(s.as_slice(), [g, id] if g.eq_ignore_ascii_case("group") && id.eq_ignore_ascii_case("objectId")));
        if !lhs_ok {
            self.error(
                Diagnostic::new(
                    Code::WrongPropertyApplied,
                    c.lhs.span,
                    format!(
                        "`{}` cannot be used in a memberOf rule",
                        self.text(c.lhs.span)
                    ),
                )
                .with_help(form_help),
            );
            return None;
        }
        if c.op.kind != CmpOp::In {
            self.error(
                Diagnostic::new(
                    Code::OperatorNotSupported,
                    c.op.span,
                    format!("memberOf supports only `-in`, not `{}`", c.op.kind.as_str()),
                )
                .with_help(form_help),
            );
            return None;
        }
        let ValueKind::List(items) = &c.rhs.kind else {
            self.error(
                Diagnostic::new(
                    Code::ValueNotApplicable,
                    c.rhs.span,
                    "`-in` takes a list of group ids",
                )
                .with_help(form_help),
            );
            return None;
        };
        let mut ids: Vec<String> = Vec::new();
        let mut ok = true;
        for item in items {
            match self.object_id(item, "source group") {
                Some(id) if !ids.contains(&id) => ids.push(id),
                Some(_) => {}
                None => ok = false,
            }
        }
        if items.len() > MAX_MEMBER_OF_GROUPS {
            self.error(Diagnostic::new(
                Code::TooManyGroups,
                c.rhs.span,
                format!(
                    "{} source groups; a memberOf rule can name at most {MAX_MEMBER_OF_GROUPS}",
                    items.len()
                ),
            ));
            ok = false;
        }
        if ids.is_empty() && ok {
            self.error(Diagnostic::new(
                Code::ValueNotApplicable,
                c.rhs.span,
                "empty list of source groups",
            ));
            ok = false;
        }
        ok.then_some(Body::MemberOf {
            group_ids: ids,
            span,
        })
    }

    fn expr(&mut self, e: &ast::Expr, scope: Scope) -> Option<hir::Expr> {
        let kind = match &e.kind {
            ExprKind::Or(xs) | ExprKind::And(xs) => {
                let items: Vec<Option<hir::Expr>> =
                    xs.iter().map(|x| self.expr(x, scope)).collect();
                let items: Option<Vec<hir::Expr>> = items.into_iter().collect();
                let items = items?;
                if matches!(e.kind, ExprKind::Or(_)) {
                    hir::ExprKind::Or(items)
                } else {
                    hir::ExprKind::And(items)
                }
            }
            ExprKind::Not(x) => {
                if let ExprKind::Quantified(q) = &x.unparen().kind {
                    if self.is_member_of(&q.collection) {
                        self.error(
                            Diagnostic::new(Code::MustStandAlone, e.span, "a memberOf rule cannot be negated")
                                .with_help("memberOf rules cannot be combined with other expressions or operators (Microsoft Learn)"),
                        );
                        return None;
                    }
                }
                hir::ExprKind::Not(Box::new(self.expr(x, scope)?))
            }
            ExprKind::Paren(x) => return self.expr(x, scope),
            ExprKind::Compare(c) => return self.compare(c, e.span, scope),
            ExprKind::Quantified(q) => return self.quantified(q, e.span, scope),
            ExprKind::DirectReports(_) => {
                self.error(
                    Diagnostic::new(
                        Code::MustStandAlone,
                        e.span,
                        "a Direct Reports rule cannot be combined with other expressions",
                    )
                    .with_help(
                        "make it the whole rule; combine it with others through a second group",
                    ),
                );
                return None;
            }
        };
        Some(hir::Expr { kind, span: e.span })
    }

    fn resolve(&mut self, o: &ast::Operand, scope: Scope) -> Option<Attr> {
        let segs = match &o.kind {
            OperandKind::Element => {
                return match scope {
                    Scope::Strings(_) => Some(Attr::Element),
                    _ => {
                        self.error(
                            Diagnostic::new(Code::WrongPropertyApplied, o.span, "`_` is only valid inside `-any`/`-all` over a string collection")
                                .with_help("`_` stands for each element: `user.proxyAddresses -any (_ -startsWith \"smtp:\")`"),
                        );
                        None
                    }
                };
            }
            OperandKind::Path(segs) => segs,
        };
        match segs.as_slice() {
            [name] => {
                let help = if schema::lookup(ObjectType::Device, name).is_some()
                    && schema::lookup(ObjectType::User, name).is_none()
                {
                    format!("write `device.{name}`")
                } else {
                    format!("write `user.{name}` or `device.{name}`")
                };
                self.error(
                    Diagnostic::new(
                        Code::InvalidObjectType,
                        o.span,
                        format!("`{name}` has no object type"),
                    )
                    .with_help(help),
                );
                None
            }
            [object, name] if object.eq_ignore_ascii_case("assignedPlan") => {
                if scope != Scope::Plans {
                    self.error(
                        Diagnostic::new(Code::WrongPropertyApplied, o.span, format!("`{}` is only valid inside `user.assignedPlans -any/-all (…)`", self.text(o.span)))
                            .with_help("`user.assignedPlans -any (assignedPlan.servicePlanId -eq \"…\" -and assignedPlan.capabilityStatus -eq \"Enabled\")`"),
                    );
                    return None;
                }
                let field = [
                    PlanField::ServicePlanId,
                    PlanField::Service,
                    PlanField::CapabilityStatus,
                ]
                .into_iter()
                .find(|f| f.as_str().eq_ignore_ascii_case(name));
                if field.is_none() {
                    self.error(
                        Diagnostic::new(
                            Code::AttributeNotSupported,
                            o.span,
                            format!("`assignedPlan` has no field `{name}`"),
                        )
                        .with_help("fields: `servicePlanId`, `service`, `capabilityStatus`"),
                    );
                }
                field.map(Attr::Plan)
            }
            [object, name] if object.eq_ignore_ascii_case("group") => {
                self.error(
                    Diagnostic::new(Code::WrongPropertyApplied, o.span, format!("property '{}' cannot be applied to object 'Group' here", name.to_ascii_lowercase()))
                        .with_help("`group.objectId` is only valid in a memberOf rule: `user.memberOf -any (group.objectId -in [...])`"),
                );
                None
            }
            [object, name] => {
                let Some(ot) = ObjectType::from_prefix(object) else {
                    let guess = ["user", "device"]
                        .into_iter()
                        .find(|k| strsim::jaro_winkler(k, &object.to_ascii_lowercase()) > 0.8);
                    let d = Diagnostic::new(
                        Code::InvalidObjectType,
                        o.span,
                        format!("unknown object type `{object}`"),
                    );
                    let plan_field = ["servicePlanId", "service", "capabilityStatus"]
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(name));
                    self.error(match guess {
                        Some(g) => d.with_help(format!("did you mean `{g}.{name}`?")),
                        None if *object == "_" && plan_field => d.with_help(format!(
                            "inside `user.assignedPlans -any (…)` a plan's fields are `assignedPlan.{name}`; `_` stands for a string collection's element itself (`user.proxyAddresses -any (_ -contains \"x\")`)"
                        )),
                        None if *object == "_" => d.with_help(
                            "`_` stands for a string collection's element itself and has no properties: `user.proxyAddresses -any (_ -contains \"x\")`",
                        ),
                        None => d.with_help("rules read `user.<property>` or `device.<property>`"),
                    });
                    return None;
                };
                self.set_object(ot, o.span);
                if scope != Scope::Top {
                    self.error(
                        Diagnostic::new(Code::WrongPropertyApplied, o.span, format!("`{}` inside `-any`/`-all`", self.text(o.span)))
                            .with_help("inside `-any`/`-all` compare the element: `_` for string collections, `assignedPlan.<field>` for assignedPlans"),
                    );
                    return None;
                }
                self.property(ot, name, o.span)
            }
            _ => {
                self.error(Diagnostic::new(
                    Code::AttributeNotSupported,
                    o.span,
                    format!("`{}` is not a property", self.text(o.span)),
                ));
                None
            }
        }
    }

    fn property(&mut self, ot: ObjectType, name: &str, span: Span) -> Option<Attr> {
        if let Some(p) = schema::lookup(ot, name) {
            if let Status::Deprecated(why) = p.status {
                self.diags.push(
                    Diagnostic::new(
                        Code::DeprecatedProperty,
                        span,
                        format!("`{}.{}` is deprecated: {why}", ot.as_str(), p.name),
                    )
                    .with_help(
                        "the rule is accepted, but the property is unlikely to be populated",
                    ),
                );
            }
            return Some(Attr::Prop(p));
        }
        if ot == ObjectType::User && schema::is_directory_extension(name) {
            return Some(Attr::Extension(name.to_string()));
        }
        let mut d = Diagnostic::new(
            Code::AttributeNotSupported,
            span,
            format!("`{}.{name}` is not a supported property", ot.as_str()),
        );
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("extension_") {
            d = d.with_help(if ot == ObjectType::Device {
                "directory extensions are documented for user rules only; devices have `extensionAttribute1`…`15`".to_string()
            } else {
                "directory extension names read `extension_<application id, 32 hex digits without dashes>_<attribute>`".to_string()
            });
        } else if let Some((_, _, why)) = schema::UNSUPPORTED_SEEN
            .iter()
            .find(|(o, n, _)| *o == ot && n.eq_ignore_ascii_case(name))
        {
            d = d.with_help(format!("`{name}` is {why}"));
        } else if let Some(s) = schema::suggest(ot, name) {
            d = d.with_help(format!("did you mean `{}.{s}`?", ot.as_str()));
        } else {
            let other = if ot == ObjectType::User {
                ObjectType::Device
            } else {
                ObjectType::User
            };
            if let Some(p) = schema::lookup(other, name) {
                d = d.with_help(format!(
                    "`{}` is a {} property; a rule reads either user or device properties",
                    p.name,
                    other.as_str()
                ));
            }
        }
        self.error(d);
        None
    }

    fn quantified(&mut self, q: &ast::Quantified, span: Span, scope: Scope) -> Option<hir::Expr> {
        if self.is_member_of(&q.collection) {
            self.error(
                Diagnostic::new(
                    Code::MustStandAlone,
                    span,
                    "a memberOf rule cannot be combined with other expressions",
                )
                .with_help(
                    "memberOf must be the whole rule (Microsoft Learn, memberOf limitations)",
                ),
            );
            return None;
        }
        let attr = self.resolve(&q.collection, scope)?;
        if !matches!(q.predicate.kind, ExprKind::Paren(_)) {
            self.diags.push(
                Diagnostic::new(Code::UnparenthesizedLambda, q.predicate.span, "`-any`/`-all` predicate without parentheses")
                    .with_help(format!(
                        "accepted, but this form was reported to fail with \"Invalid operands found for operator\" (azure-docs#81987): write `{} {} ({})`",
                        self.text(q.collection.span),
                        q.quantifier.as_str(),
                        print_expr(&q.predicate)
                    )),
            );
        }
        let (collection, inner_scope) = match &attr {
            Attr::Prop(p) if p.ty == PropType::StringCollection => {
                (Collection::Strings(p), Scope::Strings(p))
            }
            Attr::Prop(p) if p.ty == PropType::AssignedPlans => {
                (Collection::AssignedPlans, Scope::Plans)
            }
            other => {
                self.error(
                    Diagnostic::new(Code::OperatorNotSupported, q.quantifier_span, format!("`{}` is not supported on `{}`, which is not multi-valued", q.quantifier.as_str(), other.name()))
                        .with_help("`-any`/`-all` apply to `proxyAddresses`, `otherMails`, `devicePhysicalIds`, `systemLabels` and `assignedPlans`"),
                );
                return None;
            }
        };
        let pred = self.expr(&q.predicate, inner_scope)?;
        let kind = match q.quantifier {
            ast::Quantifier::Any => hir::ExprKind::Any(collection, Box::new(pred)),
            ast::Quantifier::All => hir::ExprKind::All(collection, Box::new(pred)),
        };
        Some(hir::Expr { kind, span })
    }

    fn compare(&mut self, c: &ast::Compare, span: Span, scope: Scope) -> Option<hir::Expr> {
        let attr = self.resolve(&c.lhs, scope);
        let Some(attr) = attr else {
            // Still report value errors that do not depend on the property.
            self.value_shape(c);
            return None;
        };
        let ty = match &attr {
            Attr::Prop(p) => p.ty,
            Attr::Extension(_) | Attr::Element | Attr::Plan(_) => PropType::String,
        };
        let cmp = match ty {
            PropType::Bool => self.bool_cmp(attr, c)?,
            PropType::DateTime => self.date_cmp(attr, c)?,
            PropType::String => self.string_cmp(attr, c)?,
            PropType::StringCollection => {
                let Attr::Prop(p) = attr else { return None };
                let inner = self.string_cmp(Attr::Element, c)?;
                self.diags.push(
                    Diagnostic::new(Code::CollectionWithoutAny, c.op.span, format!("`{}` applied directly to `{}`, a multi-valued property", c.op.kind.as_str(), p.name))
                        .with_help(format!(
                            "read as `{} -any (_ {} {})`: true when any element matches, as current documentation rewrites it; write that form to be explicit",
                            self.text(c.lhs.span),
                            c.op.kind.as_str(),
                            self.text(c.rhs.span)
                        )),
                );
                let inner = hir::Expr {
                    kind: hir::ExprKind::Cmp(inner),
                    span,
                };
                return Some(hir::Expr {
                    kind: hir::ExprKind::Any(Collection::Strings(p), Box::new(inner)),
                    span,
                });
            }
            PropType::AssignedPlans | PropType::MemberOf => {
                self.error(
                    Diagnostic::new(Code::OperatorNotSupported, c.op.span, format!("`{}` is not supported on `{}`, a collection of objects", c.op.kind.as_str(), attr.name()))
                        .with_help(if ty == PropType::MemberOf {
                            "write `user.memberOf -any (group.objectId -in [...])`"
                        } else {
                            "use `-any`/`-all`: `user.assignedPlans -any (assignedPlan.servicePlanId -eq \"…\")`"
                        }),
                );
                return None;
            }
        };
        Some(hir::Expr {
            kind: hir::ExprKind::Cmp(cmp),
            span,
        })
    }

    /// Errors in the value alone (unquoted words, GUIDs), reported even when the property is
    /// unknown.
    fn value_shape(&mut self, c: &ast::Compare) {
        if matches!(c.rhs.kind, ValueKind::Bare(_) | ValueKind::Guid(_)) {
            self.bad_value(c, "a value");
        }
    }

    fn bad_value(&mut self, c: &ast::Compare, expected: &str) {
        let v = &c.rhs;
        let d = match &v.kind {
            ValueKind::Bare(w) if w.contains('.') && !w.eq_ignore_ascii_case("system.now") => {
                Diagnostic::new(Code::InvalidOperands, v.span, format!("`{w}` on the right of `{}`: only constants can be compared", c.op.kind.as_str()))
                    .with_help("rules compare a property with a constant; comparing two properties is not supported")
            }
            ValueKind::Bare(w) | ValueKind::Guid(w) | ValueKind::Number(w) => {
                Diagnostic::new(Code::InvalidOperands, v.span, format!("unquoted value `{w}`; expected {expected}"))
                    .with_help(format!("string values must be quoted: {}", quote(w)))
            }
            ValueKind::DateTime(d) => Diagnostic::new(Code::InvalidOperands, v.span, format!("date `{d}` compared with a string property"))
                .with_help(format!("quote it to compare text: {}", quote(d))),
            ValueKind::Bool(b) => Diagnostic::new(Code::InvalidOperands, v.span, format!("`{b}` is a boolean, expected {expected}"))
                .with_help(format!("quote it to compare text: \"{b}\"")),
            ValueKind::Now(_) => Diagnostic::new(Code::InvalidOperands, v.span, format!("`system.now` compared with a non-date; expected {expected}")),
            ValueKind::List(_) => {
                let d = Diagnostic::new(Code::ValueNotApplicable, v.span, format!("a list cannot be used with `{}`", c.op.kind.as_str()));
                match c.op.kind {
                    CmpOp::Eq => d.with_help(format!("to match any of several values write `{} -in {}`", self.text(c.lhs.span), self.text(v.span))),
                    CmpOp::Ne => d.with_help(format!("to exclude several values write `{} -notIn {}`", self.text(c.lhs.span), self.text(v.span))),
                    _ => d.with_help("lists go only with `-in`/`-notIn`; combine several tests with `-or`"),
                }
            }
            ValueKind::Null => Diagnostic::new(Code::NullNotAllowed, v.span, format!("`null` cannot be used with `{}`", c.op.kind.as_str()))
                .with_help("`null` goes only with `-eq`/`-ne`"),
            ValueKind::Str(s) => Diagnostic::new(Code::InvalidOperands, v.span, format!("{s:?} is a string; expected {expected}")),
        };
        self.error(d);
    }

    fn op_not_supported(&mut self, c: &ast::Compare, attr: &Attr, ty: &str, help: &str) {
        let what = match c.op.kind {
            CmpOp::Gt | CmpOp::Lt => format!(
                "`{}` is not an operator of the rule language",
                c.op.kind.as_str()
            ),
            op => format!(
                "`{}` is not supported on `{}` ({ty})",
                op.as_str(),
                attr.name()
            ),
        };
        self.error(
            Diagnostic::new(Code::OperatorNotSupported, c.op.span, what)
                .with_help(help.to_string()),
        );
    }

    fn bool_cmp(&mut self, attr: Attr, c: &ast::Compare) -> Option<Cmp> {
        let negated = match c.op.kind {
            CmpOp::Eq => false,
            CmpOp::Ne => true,
            _ => {
                self.op_not_supported(
                    c,
                    &attr,
                    "a boolean",
                    "booleans support only `-eq` and `-ne` with `true`/`false`",
                );
                return None;
            }
        };
        let test = match &c.rhs.kind {
            ValueKind::Bool(b) => Test::Bool(*b),
            ValueKind::Null => Test::IsNull,
            ValueKind::Str(s)
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                self.error(
                    Diagnostic::new(
                        Code::InvalidOperands,
                        c.rhs.span,
                        format!("quoted boolean {s:?}"),
                    )
                    .with_help(format!("write `{}` without quotes", s.to_ascii_lowercase())),
                );
                return None;
            }
            _ => {
                self.bad_value(c, "`true` or `false`");
                return None;
            }
        };
        Some(Cmp {
            attr,
            test,
            negated,
        })
    }

    fn date_cmp(&mut self, attr: Attr, c: &ast::Compare) -> Option<Cmp> {
        let op = c.op.kind;
        if !matches!(op, CmpOp::Eq | CmpOp::Ne | CmpOp::Ge | CmpOp::Le) {
            self.op_not_supported(
                c,
                &attr,
                "a date",
                "dates support `-eq`, `-ne`, `-ge` and `-le`",
            );
            return None;
        }
        let value = match &c.rhs.kind {
            ValueKind::Null if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
                return Some(Cmp {
                    attr,
                    test: Test::IsNull,
                    negated: op == CmpOp::Ne,
                });
            }
            ValueKind::DateTime(s) | ValueKind::Str(s) => {
                let Some((ts, had_offset)) = parse_date(s) else {
                    self.error(
                        Diagnostic::new(Code::InvalidDateTime, c.rhs.span, format!("{s:?} is not a date"))
                            .with_help("write an ISO 8601 date-time such as `2020-06-10T18:13:20Z`, or `system.now -minus P30D`"),
                    );
                    return None;
                };
                if !had_offset {
                    self.diags.push(
                        Diagnostic::new(Code::DateWithoutOffset, c.rhs.span, format!("`{s}` has no time-zone offset; read as UTC"))
                            .with_help("add `Z` (UTC) or an offset such as `+02:00` to make the instant explicit"),
                    );
                }
                DateValue::At(ts)
            }
            ValueKind::Now(offset) => {
                if !matches!(op, CmpOp::Ge | CmpOp::Le) {
                    self.error(
                        Diagnostic::new(Code::InvalidOperands, c.rhs.span, format!("`system.now` cannot be used with `{}`", op.as_str()))
                            .with_help("`system.now` goes with `-ge`/`-le` (Microsoft Learn, employeeHireDate); equality with a moving instant never holds"),
                    );
                    return None;
                }
                if let Some((_, d)) = offset {
                    if parse_duration(d).is_none() {
                        self.error(
                            Diagnostic::new(
                                Code::InvalidDuration,
                                c.rhs.span,
                                format!("`{d}` is not an ISO 8601 duration"),
                            )
                            .with_help("durations read `P30D` (30 days), `P1Y2M`, `PT12H`"),
                        );
                        return None;
                    }
                }
                DateValue::Now(offset.clone())
            }
            _ => {
                self.bad_value(c, "a date");
                return None;
            }
        };
        let (test, negated) = match op {
            CmpOp::Eq => (Test::DateEq(value), false),
            CmpOp::Ne => (Test::DateEq(value), true),
            CmpOp::Ge => (Test::DateGe(value), false),
            _ => (Test::DateLe(value), false),
        };
        Some(Cmp {
            attr,
            test,
            negated,
        })
    }

    fn string_cmp(&mut self, attr: Attr, c: &ast::Compare) -> Option<Cmp> {
        let op = c.op.kind;
        let negated = op.positive().is_some();
        let positive = op.positive().unwrap_or(op);
        match positive {
            CmpOp::Ge | CmpOp::Le | CmpOp::Gt | CmpOp::Lt => {
                let help = if matches!(&attr, Attr::Prop(p) if p.name == "deviceOSVersion") {
                    "`-ge`/`-le` work only on dates (`employeeHireDate`); compare versions with `-startsWith` or `-match`"
                } else {
                    "`-ge`/`-le` work only on dates (`employeeHireDate`)"
                };
                self.op_not_supported(c, &attr, "a string", help);
                return None;
            }
            CmpOp::In => {
                let ValueKind::List(items) = &c.rhs.kind else {
                    if let ValueKind::Str(s) = &c.rhs.kind {
                        self.error(
                            Diagnostic::new(
                                Code::ValueNotApplicable,
                                c.rhs.span,
                                format!("`{}` takes a list", op.as_str()),
                            )
                            .with_help(format!("write [{}]", quote(s))),
                        );
                    } else {
                        self.bad_value(c, "a list of strings");
                    }
                    return None;
                };
                let mut values = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match &item.kind {
                        ValueKind::Str(s) => values.push(s.clone()),
                        ValueKind::Null => {
                            self.error(
                                Diagnostic::new(Code::NullNotAllowed, item.span, "`null` inside a list")
                                    .with_help("test for a missing value separately: `(user.x -eq null) -or (user.x -in [...])`"),
                            );
                            ok = false;
                        }
                        _ => {
                            let text = self.text(item.span).to_string();
                            self.error(
                                Diagnostic::new(
                                    Code::InvalidOperands,
                                    item.span,
                                    format!("list item `{text}` is not a quoted string"),
                                )
                                .with_help(format!("write {}", quote(&text))),
                            );
                            ok = false;
                        }
                    }
                }
                return ok.then_some(Cmp {
                    attr,
                    test: Test::In(values),
                    negated,
                });
            }
            _ => {}
        }
        let value = match &c.rhs.kind {
            ValueKind::Str(s) => s.clone(),
            ValueKind::Null if positive == CmpOp::Eq => {
                return Some(Cmp {
                    attr,
                    test: Test::IsNull,
                    negated,
                });
            }
            _ => {
                self.bad_value(c, "a quoted string");
                return None;
            }
        };
        let test = match positive {
            CmpOp::Eq => Test::Eq(value),
            CmpOp::StartsWith => Test::StartsWith(value),
            CmpOp::EndsWith => Test::EndsWith(value),
            CmpOp::Contains => Test::Contains(value),
            _ => {
                if let Err(e) = Pattern::new(&value) {
                    let help = if value.starts_with('*') {
                        "a leading `*` repeats nothing: `-match` is unanchored already, so drop it (or write `.*`); for a suffix test prefer `-endsWith`"
                    } else {
                        "`-match` takes a regular expression, case-insensitive and unanchored"
                    };
                    self.error(
                        Diagnostic::new(
                            Code::InvalidRegex,
                            c.rhs.span,
                            format!("invalid regular expression: {e}"),
                        )
                        .with_help(help),
                    );
                    return None;
                }
                Test::Match(value)
            }
        };
        Some(Cmp {
            attr,
            test,
            negated,
        })
    }
}
