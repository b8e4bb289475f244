//! `dynrule fuzz probe`: Microsoft's own answer for rules, from Graph's
//! `evaluateDynamicMembership` (beta: `POST /beta/groups/evaluateDynamicMembership` with a
//! `memberId` and a `membershipRule`; learn.microsoft.com "group: evaluateDynamicMembership").
//! The service accepts the rule and says whether the member satisfies it, or refuses it with its
//! error text. Recorded beside dynrule's verdict, each answer can settle a row of
//! `grammar/DECISIONS.md` or an `unknown` corpus rule; a disagreement is data, never folded
//! into the checker by itself (D76).

use super::client::{Client, GraphError};
use serde_json::{Value, json};

/// A rule to ask about, and the decision it bears on (when known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRule {
    /// The rule text.
    pub rule: String,
    /// The `DECISIONS.md` row it settles (`D17`).
    pub decision: Option<String>,
}

/// Probes for the rule-language decisions neither file below covers (`DECISIONS.md` D8–D29;
/// D30 on are about exports, which the service cannot answer).
fn language_probes() -> Vec<(String, &'static str)> {
    let nested = |n: usize| {
        format!(
            "{}user.department -eq \"Sales\"{}",
            "(".repeat(n),
            ")".repeat(n)
        )
    };
    // A rule of `n` characters, padded with a non-ASCII letter (D14 counts characters).
    let long = |n: usize| {
        let head = "user.department -eq \"";
        let fill = n.saturating_sub(head.chars().count() + 1);
        format!("{head}{}\"", "é".repeat(fill))
    };
    vec![
        ("-not (user.proxyAddresses -any (_ -contains \"contoso\"))".into(), "D8"),
        ("-not (user.memberOf -any (group.objectId -in [\"62e19b97-8b3d-4d4a-a106-4ce66896a863\"]))".into(), "D8"),
        (nested(100), "D10"),
        (nested(101), "D10"),
        ("user.department -eq 5".into(), "D13"),
        (long(3072), "D14"),
        (long(3073), "D14"),
        ("user.department -eq \"Sales\" -and user.city -eq \"Oslo\" -and -not (user.country -eq \"NO\")".into(), "D16"),
        ("user.department -in [\"Sales\", null]".into(), "D18"),
        ("user.department -in [\"Sales\", \"sales\"]".into(), "D18"),
        ("(department -eq \"Sales\")".into(), "D27"),
        ("user.accountEnabled -eq \"True\"".into(), "D28"),
        ("user.proxyAddresses -any (user.department -eq \"Sales\")".into(), "D29"),
    ]
}

/// The built-in probe set: every `unknown` corpus rule with the decision that rules on it
/// (`grammar/corpus-decisions.jsonl`), every case of the semantics table
/// (`corpus/semantics.jsonl`, each naming its decision), and a probe for each other
/// rule-language decision; once each.
pub fn builtin() -> Vec<ProbeRule> {
    let mut out: Vec<ProbeRule> = language_probes()
        .into_iter()
        .map(|(rule, d)| ProbeRule {
            rule,
            decision: Some(d.to_string()),
        })
        .collect();
    for text in [
        include_str!("../../grammar/corpus-decisions.jsonl"),
        include_str!("../../corpus/semantics.jsonl"),
    ] {
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(rule) = v.get("rule").and_then(Value::as_str) else {
                continue;
            };
            let decision = v
                .get("decision")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    // The semantics table names its decisions in prose: "null semantics (D1)".
                    let about = v.get("about").and_then(Value::as_str)?;
                    let at = about.find("(D")?;
                    let id: String = about
                        .get(at + 1..)?
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .collect();
                    Some(id)
                });
            if !out.iter().any(|p| p.rule == rule) {
                out.push(ProbeRule {
                    rule: rule.to_string(),
                    decision,
                });
            }
        }
    }
    out
}

/// The service's answer about one rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// The service accepted the rule.
    pub accepted: bool,
    /// Whether the member satisfies it (`membershipRuleEvaluationResult`), when accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<bool>,
    /// The service's error text, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `membershipRuleEvaluationDetails`, the service's clause-by-clause tree (D16), when
    /// accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// Asks the service about `rule` for member `member_id`.
///
/// Errors: anything but an answer or a refusal of the rule (HTTP 400): the token, throttling
/// beyond the retries, the service failing ([`GraphError`]).
pub fn evaluate(client: &Client, member_id: &str, rule: &str) -> Result<Answer, GraphError> {
    let url = client.beta_url("/groups/evaluateDynamicMembership");
    match client.post(
        &url,
        &json!({"memberId": member_id, "membershipRule": rule}),
    ) {
        Ok(v) => Ok(Answer {
            accepted: true,
            member: v
                .get("membershipRuleEvaluationResult")
                .and_then(Value::as_bool),
            error: None,
            details: v.get("membershipRuleEvaluationDetails").cloned(),
        }),
        Err(GraphError::Status {
            status: 400,
            message,
            code,
            ..
        }) => Ok(Answer {
            accepted: false,
            member: None,
            error: Some(match code {
                Some(c) => format!("{c}: {message}"),
                None => message,
            }),
            details: None,
        }),
        Err(e) => Err(e),
    }
}
