//! `dynrule plan` on the plans of `corpus/plans/` (shaped as `terraform show -json` and
//! `bicep build` write them) against `corpus/whatif/contoso`: each plan with a `.changes.json`
//! beside it gives the report `whatif --changes` gives for the same change, plus each change's
//! resource address; values not known until apply, a plan without group changes, another
//! format major and a Bicep source are handled as the README says.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use serde_json::Value;
use std::path::Path;

const TENANT: &str = "corpus/whatif/contoso";
const NOW: &str = "2026-11-01T00:00:00Z";
const PLANS: &str = "corpus/plans";

/// Runs `args` and returns the exit code and the JSON report without its timings.
fn json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["--tenant", TENANT, "--now", NOW, "--format", "json"]);
    let o = common::dynrule(&all);
    let mut v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&o.stderr)));
    if let Some(m) = v.as_object_mut() {
        m.remove("timings");
    }
    (o.status.code().unwrap_or(-1), v)
}

fn plan(name: &str) -> (i32, Value) {
    json(&["plan", &format!("{PLANS}/{name}")])
}

#[test]
fn each_plan_reports_what_whatif_reports_for_the_same_changes() {
    let mut seen = 0;
    for entry in std::fs::read_dir(PLANS).expect("corpus/plans") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".tfplan.json") else {
            continue;
        };
        let changes = Path::new(PLANS).join(format!("{stem}.changes.json"));
        if !changes.exists() {
            continue;
        }
        let (pc, mut p) = plan(&name);
        let (wc, w) = json(&["whatif", "--changes", &changes.to_string_lossy()]);
        assert_eq!(pc, wc, "{stem}: exit codes");
        // Each change names its resource address; nothing else differs.
        for c in p["changes"].as_array_mut().expect("changes") {
            let address = c.as_object_mut().unwrap().remove("address");
            assert!(
                address.is_some_and(|a| a.as_str().is_some_and(|a| a.starts_with("azuread_"))),
                "{stem}: {c}"
            );
        }
        assert_eq!(p, w, "{stem}: plan and whatif differ");
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} plans with a changes file");
}

#[test]
fn a_licence_on_a_group_created_in_the_same_plan_follows_the_reference() {
    let (code, v) = plan("create-with-licence.tfplan.json");
    assert_eq!(code, 0, "{v}");
    let c = &v["changes"][0];
    assert_eq!(c["action"], "create");
    assert_eq!(c["address"], "azuread_group.seattle_e3");
    assert_eq!(
        c["assignedLicenses"][0]["skuId"],
        "6fd2c87f-b296-42f0-b197-1e91e994b900"
    );
    assert_eq!(v["groups"][0]["displayName"], "Seattle E3");
    assert_eq!(v["groups"][0]["before"], 0);
    let gained = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["skusGained"] == serde_json::json!(["ENTERPRISEPACK"]))
        .count();
    assert!(gained > 0, "{v}");
}

#[test]
fn a_rule_not_known_until_apply_is_never_guessed() {
    let (code, v) = plan("unknown-rule.tfplan.json");
    assert_eq!(code, 4, "{v}");
    assert_eq!(
        v["changes"][0]["unknownUntilApply"],
        serde_json::json!(["membershipRule"])
    );
    assert_eq!(v["groups"][0]["after"], Value::Null);
    assert_eq!(v["trust"]["trusted"], false);
    assert_eq!(v["trust"]["underminedBy"][0]["kind"], "unknownUntilApply");
    // A licence whose group is unknown and not traced to a resource of the plan.
    let dir = common::temp_dir("plan", "licence-unknown-group");
    let text = std::fs::read_to_string(format!("{PLANS}/create-with-licence.tfplan.json"))
        .expect("plan")
        .replace("\"references\"", "\"unrelated\"");
    let path = dir.join("plan.json");
    std::fs::write(&path, text).expect("write");
    let (code, v) = json(&["plan", &path.to_string_lossy()]);
    assert_eq!(code, 4, "{v}");
    let why = v["trust"]["underminedBy"].to_string();
    assert!(why.contains("azuread_group_license.seattle_e3"), "{why}");
}

#[test]
fn a_plan_without_group_changes_is_clear() {
    let (code, v) = plan("no-group-changes.tfplan.json");
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changes"], serde_json::json!([]));
    assert_eq!(v["groups"], serde_json::json!([]));
    assert_eq!(v["trust"]["trusted"], true);
}

#[test]
fn plans_dynrule_cannot_read_are_refused_with_the_fix() {
    let o = common::dynrule(&["plan", &format!("{PLANS}/format-2.tfplan.json")]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("format_version 2.0 is not supported"), "{err}");
    let dir = common::temp_dir("plan", "bicep-source");
    let path = dir.join("main.bicep");
    std::fs::write(
        &path,
        "extension microsoftGraphV1\nresource g 'Microsoft.Graph/groups@v1.0' = {\n}\n",
    )
    .expect("write");
    let o = common::dynrule(&["plan", &path.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bicep build"), "{err}");
    // An update of a group the snapshot does not have.
    let text = std::fs::read_to_string(format!("{PLANS}/update.tfplan.json"))
        .expect("plan")
        .replace(
            "e4e51fbc-548f-c5c5-aa2e-b52cfdb0e616",
            "00000000-0000-0000-0000-000000000001",
        );
    let path = dir.join("other-tenant.json");
    std::fs::write(&path, text).expect("write");
    let o = common::dynrule(&["plan", "--tenant", TENANT, &path.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "azuread_group.sales_e3: no group with id 00000000-0000-0000-0000-000000000001"
        ),
        "{err}"
    );
}

#[test]
fn bicep_groups_match_by_unique_name_or_display_name() {
    let (code, v) = plan("bicep-build.arm.json");
    assert_eq!(code, 4, "the pilot rule is an ARM expression: {v}");
    let by_address = |a: &str| {
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["address"] == a)
            .cloned()
            .unwrap_or_else(|| panic!("no change from {a}: {v}"))
    };
    assert_eq!(by_address("salesE3")["displayName"], "Sales E3");
    assert!(by_address("salesE3").get("action").is_none(), "an update");
    assert_eq!(by_address("seattle")["action"], "create");
    assert_eq!(
        by_address("pilot")["unknownUntilApply"],
        serde_json::json!(["membershipRule"])
    );
    let sales = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["displayName"] == "Sales E3")
        .unwrap();
    assert_eq!(
        (sales["before"].as_u64(), sales["after"].as_u64()),
        (Some(5), Some(2))
    );
}

#[test]
fn plan_markdown_for_a_pull_request() {
    let o = common::dynrule(&[
        "plan",
        "--tenant",
        TENANT,
        "--now",
        NOW,
        "--format",
        "markdown",
        &format!("{PLANS}/create-with-licence.tfplan.json"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!(
        "create_with_licence_markdown",
        String::from_utf8_lossy(&o.stdout)
    );
}
