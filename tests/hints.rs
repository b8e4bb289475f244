//! The hints for what admins really paste (issue #2, item 6), as data: each rule must draw the
//! code, and its help must say the fix.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

const CASES: &[(&str, &str, &str)] = &[
    // Issue #14: what admins bring from PowerShell and web pages.
    (
        "user.department -like \"Sales*\"",
        "DR014",
        "PowerShell's wildcard match",
    ),
    (
        "user.department -eq \"Sales*\"",
        "DR313",
        "`user.department -startsWith \"Sales\"`",
    ),
    (
        "user.department -eq \"Sa\u{200b}les\"",
        "DR314",
        "delete the character",
    ),
    (
        "user.assignedPlans -any (assignedPlan.servicePlanId -eq \"EXCHANGE_S_ENTERPRISE\")",
        "DR308",
        "efb87545-963c-4e0d-99df-69c6916d9eb0",
    ),
    (
        "user.assignedPlans -any (_.servicePlanId -eq \"x\")",
        "DR105",
        "`assignedPlan.servicePlanId`",
    ),
    ("user.mail –ne null", "DR004", "replace it with `-ne`"),
    ("user.mail —ne null", "DR004", "replace it with `-ne`"),
    (
        "user.department -eq “Sales”",
        "DR003",
        "use straight quotes",
    ),
    (
        "device.displayName -eq \"Rob Iphone”",
        "DR003",
        "use a straight quote",
    ),
    (
        "user.department -eq [\"Sales\", \"HR\"]",
        "DR104",
        "`user.department -in [\"Sales\", \"HR\"]`",
    ),
    (
        "user.department -ne [\"Sales\"]",
        "DR104",
        "`user.department -notIn [\"Sales\"]`",
    ),
    (
        "user.displayName -match [\"a\"]",
        "DR104",
        "lists go only with `-in`/`-notIn`",
    ),
    (
        r#"user.department -eq \"Sales\""#,
        "DR001",
        "markdown escape",
    ),
    (
        r#"user.jobTitle -eq "say \"hi\" now""#,
        "DR005",
        "`` `\" ``",
    ),
    (
        "(user.accountEnabled-bevat waar)",
        "DR014",
        "translation of `-contains`",
    ),
    ("user.department -like \"S*\"", "DR014", "`-match`"),
    ("user.department -eqq \"S\"", "DR014", "did you mean `-eq`?"),
    ("user.employeeId -ne *null*", "DR001", "markdown emphasis"),
    (
        "(user.proxyAddresses -any (\\_ -startsWith \"contoso\"))",
        "DR001",
        "markdown escape",
    ),
    (
        "user.department -eq `\"Sales`\"",
        "DR006",
        "\"`\"Sales`\"\"",
    ),
    (
        "device.deviceOSType -eq $siteName",
        "DR007",
        "substitute its value",
    ),
    ("user.mail -not null", "DR016", "`-ne null`"),
    (
        "user.accountEnabled -eq \"True\"",
        "DR103",
        "write `true` without quotes",
    ),
    ("user.department -eq Sales", "DR103", "\"Sales\""),
    (
        "deviceOSType -eq \"Windows\"",
        "DR105",
        "write `device.deviceOSType`",
    ),
    (
        "device.operatingSystem -eq \"Windows\"",
        "DR101",
        "did you mean `device.deviceOSType`?",
    ),
    (
        "user.deviceOSType -eq \"Windows\"",
        "DR101",
        "is a device property",
    ),
    (
        "user.employeeType -eq \"Employee\"",
        "DR101",
        "not in Microsoft's list",
    ),
    (
        "user.userPrincipalName -match \"*@contoso.com\"",
        "DR020",
        "a leading `*` repeats nothing",
    ),
    (
        "(user.department -eq \"Sales\") (user.city -eq \"Oslo\")",
        "DR011",
        "join expressions with `-and` or `-or`",
    ),
    (
        "(user.department -eq \"Sales\"",
        "DR012",
        "add the missing `)`",
    ),
    (
        "device.deviceOSVersion -ge \"10.0\"",
        "DR102",
        "compare versions with `-startsWith` or `-match`",
    ),
    (
        "user.employeeHireDate -ge system.now -minus \"P30D\"",
        "DR021",
        "without quotes",
    ),
    (
        "user.employeeHireDate -eq system.now",
        "DR103",
        "`-ge`/`-le`",
    ),
    (
        "Direct Reports for \"{objectID_of_manager}\"",
        "DR108",
        "placeholders from documentation must be replaced",
    ),
    (
        "user.memberOf -all (group.objectId -in ['62e19b97-8b3d-4d4a-a106-4ce66896a863'])",
        "DR107",
        "entra-docs#102",
    ),
    (
        "device.deviceOwnership -eq \"Corporate\"",
        "DR306",
        "\"Company\"",
    ),
    ("user.employeeId -ne \"null\"", "DR307", "without quotes"),
    (
        "user.displayName -match \"^Da.*\"",
        "DR301",
        "`user.displayName -startsWith \"Da\"`",
    ),
    (
        "user.city -eq \"a\" -or user.city -eq \"b\"",
        "DR303",
        "`user.city -in [\"a\", \"b\"]`",
    ),
    (
        "user.city -ne \"a\" -and user.city -ne \"b\"",
        "DR304",
        "`user.city -notIn [\"a\", \"b\"]`",
    ),
    (
        "user.city -eq \"a\" -or user.city -eq \"b\" -and user.country -eq \"NO\"",
        "DR305",
        "binds tighter",
    ),
];

#[test]
fn paste_hints() {
    let mut failures = Vec::new();
    for (rule, code, help) in CASES {
        let checked = dynrule::check(rule);
        let hit = checked
            .diagnostics
            .iter()
            .find(|d| d.code.as_str() == *code);
        match hit {
            None => failures.push(format!(
                "{rule:?}: no {code}, got {:?}",
                checked
                    .diagnostics
                    .iter()
                    .map(|d| d.code.as_str())
                    .collect::<Vec<_>>()
            )),
            Some(d) if !d.help.as_deref().unwrap_or("").contains(help) => {
                failures.push(format!("{rule:?}: {code} help {:?} lacks {help:?}", d.help))
            }
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
