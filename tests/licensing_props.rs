//! Property tests of group-based licensing over random small tenants (random groups, rules,
//! licences with disabled plans, seats, usage locations, duplicate proxy addresses, snapshot
//! states): it never panics, and the documented invariants hold for every user, group and SKU.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

use dynrule::licensing::{self, StateKind};
use dynrule::load::table_from_values;
use dynrule::recompute::{self, RecomputeOptions};
use dynrule::schema::ObjectType;
use dynrule::tenant::{Objects, Parts, Tenant, UserRecords};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// (skuId, a few of its service plans).
const SKUS: &[(&str, &[&str])] = &[
    (
        "6fd2c87f-b296-42f0-b197-1e91e994b900", // ENTERPRISEPACK
        &[
            "efb87545-963c-4e0d-99df-69c6916d9eb0",
            "5dbe027f-2339-4123-9542-606e4d348a72",
            "7547a3fe-08ee-4ccb-b430-5077c5041653",
            "0feaeb32-d00e-4d66-bd5a-43b5b83db82c",
            "57ff2da0-773e-42df-b2af-ffb7a2317929",
        ],
    ),
    (
        "efccb6f7-5641-4e0e-bd10-b4976e1bf68e",
        &["c1ec4a95-1f05-45b3-a911-aa3fa01094f5"],
    ), // EMS
    (
        "18181a46-0d4e-45cd-891e-60aabd171b4e",
        &["c7699d2e-19aa-44de-8edf-1736da088ca1"],
    ), // E1
    (
        "0c266dff-15dd-4b49-8397-2bb16070ed52",
        &["3e26ee1f-8a5f-4d52-aee2-b81ce45c8f40"],
    ), // audio
];

const DEPTS: &[&str] = &["Sales", "HR", "IT"];

fn gid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{:012x}", 0x100 + i)
}

fn uid(i: usize) -> String {
    format!("00000000-0000-4000-9000-{:012x}", i)
}

/// A user: department, usageLocation, proxy address pool index, snapshot states
/// (sku, group or direct, active).
type UserSpec = (
    usize,
    Option<&'static str>,
    usize,
    Vec<(usize, Option<usize>, bool)>,
);
/// A group: rule on a department (or static), licences (sku, disabled plan indexes),
/// securityEnabled, paused, static members.
type GroupSpec = (
    Option<usize>,
    Vec<(usize, Vec<usize>)>,
    bool,
    bool,
    Vec<usize>,
);

#[derive(Debug, Clone)]
struct Spec {
    users: Vec<UserSpec>,
    groups: Vec<GroupSpec>,
    seats: Vec<(u64, u64)>,
    country: bool,
}

/// Seat counts: small, or absurd ones from a hostile export (no overflow may panic).
fn seat() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..6u64, 1 => Just(u64::MAX), 1 => Just(i64::MAX as u64 + 1)]
}

fn spec() -> impl Strategy<Value = Spec> {
    let user = (
        0..DEPTS.len(),
        prop_oneof![Just(Some("US")), Just(Some("CU")), Just(None)],
        0..4usize, // proxy address pool index (collisions make duplicates)
        prop::collection::vec(
            (0..SKUS.len(), prop::option::of(0..4usize), any::<bool>()),
            0..3,
        ),
    );
    let group = (
        prop::option::of(0..DEPTS.len()), // rule on a department, or static
        prop::collection::vec(
            (0..SKUS.len(), prop::collection::vec(0..5usize, 0..2)),
            0..3,
        ), // licences
        any::<bool>(),                    // securityEnabled
        prop::bool::weighted(0.2),        // paused
        prop::collection::vec(0..12usize, 0..6), // static members
    );
    (
        prop::collection::vec(user, 1..12),
        prop::collection::vec(group, 1..5),
        prop::collection::vec((seat(), seat()), SKUS.len()),
        any::<bool>(),
    )
        .prop_map(|(users, groups, seats, country)| Spec {
            users,
            groups,
            seats,
            country,
        })
}

fn tenant(s: &Spec) -> Tenant {
    tenant_with(s, None)
}

/// The spec's tenant; with `after`, users' licence states and SKU consumption are replaced by
/// a licensing result (the tenant as it would be once that result is applied).
fn tenant_with(s: &Spec, after: Option<&licensing::Assignments>) -> Tenant {
    let users: Vec<Value> = s
        .users
        .iter()
        .enumerate()
        .map(|(i, (d, loc, proxy, states))| {
            let mut seen = BTreeSet::new();
            let st: Vec<Value> = states
                .iter()
                .filter(|(sku, g, _)| seen.insert((*sku, *g)))
                .map(|(sku, g, active)| {
                    json!({
                        "skuId": SKUS[*sku].0,
                        "assignedByGroup": g.map(gid),
                        "disabledPlans": [],
                        "state": if *active { "Active" } else { "Error" },
                        "error": if *active { "None" } else { "CountViolation" },
                    })
                })
                .collect();
            let st: Vec<Value> = match after {
                None => st,
                Some(a) => a
                    .states(i)
                    .iter()
                    .map(|x| {
                        json!({
                            "skuId": a.sku_id(x.sku),
                            "assignedByGroup": a.source_id(x),
                            "disabledPlans": a.disabled_plans(x.disabled),
                            "state": x.state.as_str(),
                            "error": x.error.map_or("None", |e| e.as_str()),
                        })
                    })
                    .collect(),
            };
            json!({
                "id": uid(i),
                "userPrincipalName": format!("u{i}@contoso.com"),
                "department": DEPTS[*d],
                "usageLocation": loc,
                "proxyAddresses": [format!("SMTP:shared{proxy}@contoso.com")],
                "licenseAssignmentStates": st,
            })
        })
        .collect();
    let groups: Objects = s
        .groups
        .iter()
        .enumerate()
        .map(|(i, (rule, lic, sec, paused, members))| {
            let lic: Vec<Value> = lic
                .iter()
                .map(|(sku, off)| {
                    let plans = SKUS[*sku].1;
                    let d: Vec<&str> = off.iter().filter_map(|p| plans.get(*p).copied()).collect();
                    json!({"skuId": SKUS[*sku].0, "disabledPlans": d})
                })
                .collect();
            let mut g = json!({
                "id": gid(i),
                "displayName": format!("g{i}"),
                "securityEnabled": sec,
                "assignedLicenses": lic,
                "groupTypes": if rule.is_some() { json!(["DynamicMembership"]) } else { json!([]) },
            });
            if let (Some(d), Some(o)) = (rule, g.as_object_mut()) {
                o.insert(
                    "membershipRule".into(),
                    json!(format!("user.department -eq \"{}\"", DEPTS[*d])),
                );
                o.insert(
                    "membershipRuleProcessingState".into(),
                    json!(if *paused { "Paused" } else { "On" }),
                );
            }
            if let Some(o) = g.as_object_mut() {
                let m: Vec<Value> = members
                    .iter()
                    .filter(|m| **m < s.users.len())
                    .map(|m| json!({"id": uid(*m)}))
                    .collect();
                o.insert("members".into(), json!(m));
            }
            (PathBuf::from("groups.json"), i + 1, g)
        })
        .collect();
    let skus: Objects = SKUS
        .iter()
        .zip(&s.seats)
        .enumerate()
        .map(|(i, ((id, _), (enabled, consumed)))| {
            let consumed = after
                .and_then(|a| a.skus.iter().find(|k| k.sku_id == *id))
                .map_or(*consumed, |k| k.consumed_after);
            (
                PathBuf::from("subscribedSkus.json"),
                i + 1,
                json!({"skuId": id, "consumedUnits": consumed, "prepaidUnits": {"enabled": enabled, "warning": 0}}),
            )
        })
        .collect();
    let org = s.country.then(|| {
        Ok(vec![(
            PathBuf::from("organization.json"),
            1,
            json!({"countryLetterCode": "US"}),
        )])
    });
    Tenant::assemble(Parts {
        dir: PathBuf::from("prop"),
        groups_path: PathBuf::from("groups.json"),
        users: table_from_values(&users, ObjectType::User).unwrap_or_else(|e| panic!("{e}")),
        user_bytes: 0,
        user_records: UserRecords::Values(std::sync::Arc::new(users)),
        devices: None,
        groups,
        skus: Some(Ok(skus)),
        organization: org,
        licensing_rules: Some((
            PathBuf::from("licensingRules.json"),
            Ok(r#"{"prohibitedInUsageLocation": [{"servicePlan": "EXCHANGE_S_ENTERPRISE", "usageLocations": ["CU"]}]}"#.to_string()),
        )),
        issues: Vec::new(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// Applying a licensing result and recomputing changes nothing: the result is a fixpoint
    /// (established assignments come first, failures fail again). The reason may change: a user
    /// who lost a mailbox in the first run trips a duplicate proxy address before the seat
    /// count in the second.
    #[test]
    fn licensing_is_a_fixpoint(s in spec()) {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let t = tenant(&s);
        let (m, _) = recompute::memberships(&t, &t.groups, &t.users, &RecomputeOptions { now });
        let (a, _) = licensing::assign(&t, &t.groups, &m);
        let t2 = tenant_with(&s, Some(&a));
        let (m2, _) = recompute::memberships(&t2, &t2.groups, &t2.users, &RecomputeOptions { now });
        let (a2, _) = licensing::assign(&t2, &t2.groups, &m2);
        let key = |a: &licensing::Assignments, row: usize| -> BTreeSet<String> {
            a.states(row)
                .iter()
                .map(|x| format!("{}/{:?}/{:?}/{}/{}", a.sku_id(x.sku), a.source_id(x), a.disabled_plans(x.disabled), x.state.as_str(), x.error.is_some()))
                .collect()
        };
        for row in 0..t.users.len() {
            prop_assert_eq!(key(&a, row), key(&a2, row), "row {}", row);
        }
    }

    #[test]
    fn licensing_invariants(s in spec()) {
        let t = tenant(&s);
        let now = jiff::Timestamp::UNIX_EPOCH;
        let (m, _) = recompute::memberships(&t, &t.groups, &t.users, &RecomputeOptions { now });
        let (a, _) = licensing::assign(&t, &t.groups, &m);
        let snap = t.users.licenses(dynrule::table::ColumnKey::LicenseStates);
        for row in 0..t.users.len() {
            let states = a.states(row);
            // Direct assignments are never touched.
            let before_direct: BTreeSet<String> = snap
                .and_then(|c| c.get(row))
                .unwrap_or(&[])
                .iter()
                .filter(|e| e.assigned_by_group.is_none())
                .map(|e| format!("{}/{:?}", e.sku_id, e.state))
                .collect();
            let after_direct: BTreeSet<String> = states
                .iter()
                .filter(|s| s.source.is_none())
                .map(|s| format!("{}/{:?}", a.sku_id(s.sku), Some(s.state.as_str())))
                .collect();
            prop_assert_eq!(before_direct, after_direct, "row {}", row);
            for (gi, g) in t.groups.iter().enumerate() {
                let mine: Vec<_> = states.iter().filter(|s| s.source.map(|g| g.index()) == Some(gi)).collect();
                // All or nothing per (user, group): never one SKU applied and another failed
                // for the first time.
                let active = mine.iter().any(|s| s.state == StateKind::Active);
                let failed = mine.iter().any(|s| s.state == StateKind::Error);
                if a.groups[gi].processed {
                    prop_assert!(!(active && failed), "row {} group {}: {:?}", row, gi, mine);
                }
                // A processed group gives a member a state for each of its SKUs.
                let member = m.groups[gi].members.get(row);
                if member && a.groups[gi].processed {
                    let skus: BTreeSet<&str> = g.assigned_licenses.iter().map(|l| l.sku_id.as_str()).collect();
                    let got: BTreeSet<&str> = mine.iter().map(|s| a.sku_id(s.sku)).collect();
                    prop_assert!(skus.is_subset(&got), "row {} group {}", row, gi);
                    // A SKU the group no longer assigns stays only when a dependency holds it.
                    for s in &mine {
                        if !skus.contains(a.sku_id(s.sku)) {
                            prop_assert_eq!(s.error, Some(licensing::LicenseError::DependencyViolation));
                        }
                    }
                }
                // Not a member any more: only a dependency can keep the group's licence.
                if !member && a.groups[gi].processed {
                    for s in &mine {
                        prop_assert_eq!(s.error, Some(licensing::LicenseError::DependencyViolation));
                    }
                }
            }
        }
        // Seats: a SKU within its seats before stays within them.
        for k in &a.skus {
            if let Some(cap) = k.assignable {
                if k.consumed_before <= cap {
                    prop_assert!(k.consumed_after <= cap, "{:?}", k);
                }
            }
        }
    }
}
