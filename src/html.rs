//! Self-contained HTML reports (`--format html`) for `whatif`, `plan` and `recompute`: one file
//! with inline CSS and script and no network access, the report's JSON embedded
//! (`<script type="application/json" id="report-json">`), tables that can be searched and
//! sorted, and a print style. The artefact a change board approves.
//!
//! A report is first turned into a [`Page`] (sections of text, tables and lists, every cell a
//! string), which one askama template (`templates/report.html`) renders; HTML escaping is
//! askama's. Every number a reader acts on carries `data-check="<JSON pointer>"` (with `#len`
//! for an array's length), so a browser test can hold the rendered page to the JSON.

use crate::report::{RecomputeReport, VerdictLevel};
use crate::whatif::WhatIf;
use askama::Template;
use serde::Serialize;

/// One table cell: its text and, for a number, the JSON pointer it shows.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    /// The text shown.
    pub text: String,
    /// A JSON pointer into the embedded report (`/groups/0/before`, `/groups/0/left#len`), or
    /// empty.
    pub check: String,
    /// The whole text when `text` is shortened (a tooltip), or empty.
    pub full: String,
}

impl Cell {
    fn text(t: impl Into<String>) -> Cell {
        Cell {
            text: t.into(),
            ..Cell::default()
        }
    }

    fn number(n: impl ToString, pointer: String) -> Cell {
        Cell {
            text: n.to_string(),
            check: pointer,
            ..Cell::default()
        }
    }
}

/// A table: headers (right-aligned when numeric) and rows; `searchable` adds a filter box.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// A unique element id.
    pub id: String,
    /// Column headers and whether each is numeric.
    pub headers: Vec<(String, bool)>,
    /// Rows of cells.
    pub rows: Vec<Vec<Cell>>,
    /// Whether the table gets a search box.
    pub searchable: bool,
}

/// A list item with a level (for its marker and colour).
#[derive(Clone, Debug)]
pub struct Item {
    /// `untrusted`, `breach`, `attention`, `clear` or `info`.
    pub class: &'static str,
    /// The text.
    pub text: String,
}

/// A sub-block of a section with its own heading (one change).
#[derive(Clone, Debug, Default)]
pub struct Block {
    /// Heading.
    pub title: String,
    /// Paragraphs.
    pub paragraphs: Vec<String>,
    /// Labelled code blocks (rules before and after).
    pub code: Vec<(String, String)>,
}

/// A titled block of the page.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// Element id (for links).
    pub id: String,
    /// Heading.
    pub title: String,
    /// Paragraphs.
    pub paragraphs: Vec<String>,
    /// Sub-blocks with headings (the changes).
    pub blocks: Vec<Block>,
    /// List items.
    pub items: Vec<Item>,
    /// Tables.
    pub tables: Vec<Table>,
    /// Collapsible sub-blocks (a member list, an explanation): summary and section.
    pub details: Vec<(String, Section)>,
}

/// A whole report page.
#[derive(Clone, Debug, Template)]
#[template(path = "report.html")]
pub struct Page {
    /// The document title.
    pub title: String,
    /// The verdict's CSS class (`untrusted`, `breach`, `attention`, `clear`).
    pub verdict_class: &'static str,
    /// The verdict line.
    pub headline: String,
    /// The sentence under it.
    pub summary: String,
    /// The sections, in order.
    pub sections: Vec<Section>,
    /// The report as JSON, with `<`, `>` and `&` escaped so it cannot close its script element.
    pub json: String,
}

/// JSON of `value` that is safe inside a `<script>` element.
fn embedded_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    Ok(serde_json::to_string(value)?
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

fn count(n: Option<usize>) -> String {
    n.map_or_else(|| "?".to_string(), |n| n.to_string())
}

/// The HTML report of a what-if (or a plan: `title` says which).
///
/// Errors: rendering failed (a template error, or the report's JSON could not be written).
pub fn whatif(w: &WhatIf, title: &str) -> Result<String, String> {
    let (level, headline) = crate::report::whatif_verdict(w);
    let mut sections = vec![changes(w)];
    if !w.trust.trusted {
        sections.push(Section {
            id: "trust".into(),
            title: "Trust".into(),
            paragraphs: vec![
                "The answer cannot be trusted (exit 4): the groups it rests on have these issues."
                    .into(),
            ],
            items: w
                .trust
                .undermined_by
                .iter()
                .map(|i| Item {
                    class: "untrusted",
                    text: i.to_string(),
                })
                .collect(),
            ..Section::default()
        });
    }
    sections.push(Section {
        id: "risks".into(),
        title: "Risks".into(),
        items: crate::report::whatif_risk_items(w)
            .into_iter()
            .map(|(l, text)| Item {
                class: l.class(),
                text,
            })
            .collect(),
        ..Section::default()
    });
    sections.push(memberships(w));
    sections.push(seats(w));
    sections.push(users(w));
    if !w.explanations.is_empty() {
        sections.push(explanations(w));
    }
    sections.push(issues(w.issues.iter().map(ToString::to_string).collect()));
    Page {
        title: title.to_string(),
        verdict_class: level.class(),
        headline,
        summary: crate::report::whatif_summary(w, &w.tenant),
        sections,
        json: embedded_json(w).map_err(|e| e.to_string())?,
    }
    .render()
    .map_err(|e| e.to_string())
}

fn changes(w: &WhatIf) -> Section {
    let mut s = Section {
        id: "changes".into(),
        title: "Changes".into(),
        ..Section::default()
    };
    if let (Some(g), Some(n)) = (&w.test_group, w.test_group_members) {
        s.paragraphs.push(format!(
            "Test group {g} ({n} members): the changes apply to its members only."
        ));
    }
    if w.changes.is_empty() {
        s.paragraphs
            .push("No group changes that move memberships or licences.".into());
    }
    for c in &w.changes {
        let g = crate::report::change_group(w, c);
        let mut b = Block {
            title: format!(
                "{}{}",
                c.display_name,
                crate::report::action_note(c.change.action)
            ),
            ..Block::default()
        };
        if let Some(a) = &c.change.address {
            b.paragraphs.push(format!("From {a}."));
        }
        if !c.group.is_empty() {
            b.paragraphs.push(format!("Group id {}.", c.group));
        }
        if let Some(rule) = &c.change.membership_rule {
            b.code.push((
                "membershipRule before".into(),
                crate::report::rule_before(c, g),
            ));
            b.code.push(("membershipRule after".into(), rule.clone()));
        }
        for u in &c.change.unknown_until_apply {
            b.paragraphs.push(format!("{u} is not known until apply."));
        }
        if let Some((before, after)) =
            g.and_then(|g| g.licenses_before.as_ref().zip(g.licenses_after.as_ref()))
        {
            b.paragraphs.push(format!(
                "assignedLicenses: {} → {}",
                crate::report::skus_or_none(before),
                crate::report::skus_or_none(after)
            ));
        }
        if let Some(p) = &c.change.membership_rule_processing_state {
            b.paragraphs
                .push(format!("membershipRuleProcessingState → {p}"));
        }
        s.blocks.push(b);
    }
    s
}

fn memberships(w: &WhatIf) -> Section {
    let mut t = Table {
        id: "groups".into(),
        headers: ["Group", "Before", "After", "Joined", "Left", "Unchanged"]
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_string(), i > 0))
            .collect(),
        searchable: true,
        ..Table::default()
    };
    let mut details = Vec::new();
    for (i, g) in w.groups.iter().enumerate() {
        let name = crate::report::group_title(g);
        let p = |k: &str| format!("/groups/{i}/{k}");
        t.rows.push(vec![
            Cell::text(name.clone()),
            Cell::number(count(g.before), p("before")),
            Cell::number(count(g.after), p("after")),
            Cell::number(g.joined.len(), p("joined#len")),
            Cell::number(g.left.len(), p("left#len")),
            Cell::number(g.unchanged, p("unchanged")),
        ]);
        for (what, list) in [("joins", &g.joined), ("leaves", &g.left)] {
            if list.is_empty() {
                continue;
            }
            details.push((
                format!("{name} {what}: {}", list.len()),
                Section {
                    tables: vec![Table {
                        id: format!("group-{i}-{what}"),
                        headers: vec![("Member".into(), false)],
                        rows: list.iter().map(|m| vec![Cell::text(m.clone())]).collect(),
                        searchable: list.len() > 10,
                    }],
                    ..Section::default()
                },
            ));
        }
    }
    Section {
        id: "memberships".into(),
        title: "Memberships".into(),
        tables: vec![t],
        details,
        ..Section::default()
    }
}

fn seats(w: &WhatIf) -> Section {
    let headers = [
        "SKU",
        "Assignable",
        "Used before",
        "Used after",
        "Needed after",
        "Shortfall",
        "Short before",
    ];
    let rows = w
        .skus
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = |k: &str| format!("/skus/{i}/{k}");
            vec![
                Cell::text(s.sku_part_number.clone()),
                s.assignable.map_or_else(
                    || Cell::text("unlimited"),
                    |a| Cell::number(a, p("assignable")),
                ),
                Cell::number(s.used_before, p("usedBefore")),
                Cell::number(s.used_after, p("usedAfter")),
                Cell::number(s.needed_after, p("neededAfter")),
                Cell::number(s.shortfall, p("shortfall")),
                Cell::number(s.shortfall_before, p("shortfallBefore")),
            ]
        })
        .collect();
    Section {
        id: "seats".into(),
        title: "Seats per SKU".into(),
        paragraphs: if w.skus.is_empty() {
            vec!["No SKU's seats change.".into()]
        } else {
            Vec::new()
        },
        tables: vec![Table {
            id: "skus".into(),
            headers: headers
                .iter()
                .enumerate()
                .map(|(i, h)| (h.to_string(), i > 0))
                .collect(),
            rows,
            searchable: false,
        }],
        ..Section::default()
    }
}

fn users(w: &WhatIf) -> Section {
    let headers = [
        "User",
        "Groups joined",
        "Groups left",
        "SKUs gained",
        "SKUs lost",
        "Data plans lost",
        "Plans lost",
        "New errors",
    ];
    let rows = w
        .users
        .iter()
        .map(|u| {
            let [mut name, gained, lost, plans_lost, errors] = crate::report::user_row(u);
            if u.loses_every_license {
                name.push_str(" (loses every licence)");
            }
            let mut plans = Cell::text(plans_lost);
            if u.plans_lost.len() > 3 {
                plans.full = u.plans_lost.join(", ");
            }
            vec![
                Cell::text(name),
                Cell::text(u.groups_joined.join(", ")),
                Cell::text(u.groups_left.join(", ")),
                Cell::text(gained),
                Cell::text(lost),
                Cell::text(u.data_plans_lost.join(", ")),
                plans,
                Cell::text(errors),
            ]
        })
        .collect();
    Section {
        id: "users".into(),
        title: "Users whose licences or groups change".into(),
        paragraphs: vec![format!(
            "{} users (hover a shortened plan list for all of it).",
            w.users.len()
        )],
        tables: vec![Table {
            id: "users-table".into(),
            headers: headers.iter().map(|h| (h.to_string(), false)).collect(),
            rows,
            searchable: true,
        }],
        ..Section::default()
    }
}

/// One evaluation tree as rows: the clause (indented by depth), its result, the value read.
fn clause_rows(d: &crate::oracle::ExpressionDetails, depth: usize, out: &mut Vec<Vec<Cell>>) {
    let value = d
        .property_to_evaluate
        .as_ref()
        .map(|p| serde_json::to_string(p).unwrap_or_default())
        .unwrap_or_default();
    out.push(vec![
        Cell::text(format!("{}{}", "\u{a0}\u{a0}".repeat(depth), d.expression)),
        Cell::text(if d.expression_result { "true" } else { "false" }),
        Cell::text(value),
    ]);
    for c in &d.expression_evaluation_details {
        clause_rows(c, depth + 1, out);
    }
}

fn explanations(w: &WhatIf) -> Section {
    let mut details = Vec::new();
    for (i, e) in w.explanations.iter().enumerate() {
        let mut tables = Vec::new();
        for (side, r) in [("before", &e.before), ("after", &e.after)] {
            let mut rows = Vec::new();
            if let Some(r) = r {
                clause_rows(&r.membership_rule_evaluation_details, 0, &mut rows);
            }
            tables.push(Table {
                id: format!("explain-{i}-{side}"),
                headers: vec![
                    (format!("Clause ({side})"), false),
                    ("Result".into(), false),
                    ("Value read".into(), false),
                ],
                rows,
                searchable: false,
            });
        }
        details.push((
            format!(
                "{} in {}: member {} → {}",
                e.user_principal_name, e.group, e.member_before, e.member_after
            ),
            Section {
                tables,
                ..Section::default()
            },
        ));
    }
    Section {
        id: "explanations".into(),
        title: "Explanations (test group)".into(),
        paragraphs: vec![
            "Each test-group member whose result changes, clause by clause under the old and the new rule."
                .into(),
        ],
        details,
        ..Section::default()
    }
}

fn issues(list: Vec<String>) -> Section {
    Section {
        id: "issues".into(),
        title: format!("Issues ({})", list.len()),
        items: list
            .into_iter()
            .map(|text| Item {
                class: if text.starts_with("error") {
                    "breach"
                } else {
                    "info"
                },
                text,
            })
            .collect(),
        ..Section::default()
    }
}

/// The HTML report of a recompute: per group its members and licensing, seats per SKU, the
/// snapshot agreement and the issues.
///
/// Errors: rendering failed.
pub fn recompute(r: &RecomputeReport) -> Result<String, String> {
    let errors = r
        .issues
        .iter()
        .filter(|i| i.severity == crate::tenant::Severity::Error)
        .count();
    let (level, headline) = if errors > 0 {
        (
            VerdictLevel::Untrusted,
            format!("dynrule recompute: {errors} error(s) under Issues"),
        )
    } else {
        (
            VerdictLevel::Clear,
            "dynrule recompute: every group computed".to_string(),
        )
    };
    let groups = Table {
        id: "groups".into(),
        headers: [
            ("Group", false),
            ("Kind", false),
            ("Members", true),
            ("In snapshot", true),
            ("Joined", true),
            ("Left", true),
            ("Licences", false),
            ("Licensed", true),
            ("Failed", true),
        ]
        .iter()
        .map(|(h, n)| (h.to_string(), *n))
        .collect(),
        rows: r
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let p = |k: &str| format!("/groups/{i}/{k}");
                vec![
                    Cell::text(g.display_name.clone()),
                    Cell::text(format!("{:?}", g.processing)),
                    Cell::number(count(g.members), p("members")),
                    Cell::number(count(g.snapshot_members), p("snapshotMembers")),
                    Cell::number(g.joined, p("joined")),
                    Cell::number(g.left, p("left")),
                    Cell::text(g.licenses.join(", ")),
                    Cell::number(g.licensing.users_succeeded, p("licensing/usersSucceeded")),
                    Cell::number(g.licensing.users_failed, p("licensing/usersFailed")),
                ]
            })
            .collect(),
        searchable: true,
    };
    let skus = Table {
        id: "skus".into(),
        headers: [
            ("SKU", false),
            ("Assignable", true),
            ("Consumed before", true),
            ("Consumed after", true),
            ("Holders after", true),
            ("Count violations", true),
        ]
        .iter()
        .map(|(h, n)| (h.to_string(), *n))
        .collect(),
        rows: r
            .skus
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let p = |k: &str| format!("/skus/{i}/{k}");
                vec![
                    Cell::text(s.sku_part_number.clone()),
                    s.assignable.map_or_else(
                        || Cell::text("unlimited"),
                        |a| Cell::number(a, p("assignable")),
                    ),
                    Cell::number(s.consumed_before, p("consumedBefore")),
                    Cell::number(s.consumed_after, p("consumedAfter")),
                    Cell::number(s.holders_after, p("holdersAfter")),
                    Cell::number(s.count_violations, p("countViolations")),
                ]
            })
            .collect(),
        searchable: false,
    };
    let mut agreement = Vec::new();
    if let Some(a) = &r.snapshot_agreement {
        agreement.push(format!(
            "Licence states agree with the snapshot for {} of {} users compared.",
            a.users_matching, a.users_compared
        ));
    }
    let sections = vec![
        Section {
            id: "groups".into(),
            title: "Groups".into(),
            paragraphs: agreement,
            tables: vec![groups],
            ..Section::default()
        },
        Section {
            id: "seats".into(),
            title: "Seats per SKU".into(),
            tables: vec![skus],
            ..Section::default()
        },
        issues(r.issues.iter().map(ToString::to_string).collect()),
    ];
    Page {
        title: "dynrule recompute".into(),
        verdict_class: level.class(),
        headline,
        summary: format!(
            "Tenant {}: {} users, {} groups, {} SKUs.",
            r.tenant,
            r.users,
            r.groups.len(),
            r.skus.len()
        ),
        sections,
        json: embedded_json(r).map_err(|e| e.to_string())?,
    }
    .render()
    .map_err(|e| e.to_string())
}
