//! `dynrule groups`: a snapshot's groups as dynrule reads them, to find the names and ids the
//! other commands take.

use dynrule::tenant::{Group, Tenant};
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct GroupsArgs {
    /// The tenant snapshot folder, or `sample` (the default) for the built-in sample tenant.
    #[arg(long, default_value = "sample")]
    tenant: String,
    /// A readable table, or JSON (one object per group).
    #[arg(long, value_enum, default_value_t = super::Format::Text)]
    format: super::Format,
}

/// One group as listed.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    id: String,
    display_name: String,
    /// `dynamic`, `paused` (dynamic, `membershipRuleProcessingState` Paused) or `static`.
    kind: &'static str,
    membership_rule: Option<String>,
    /// `skuPartNumber` (else `skuId`) of each assigned licence.
    licenses: Vec<String>,
    /// Members in the snapshot; null when the export does not hold them.
    members: Option<usize>,
}

fn listed(tenant: &Tenant, g: &Group) -> Listed {
    let kind = match (g.is_dynamic(), g.is_paused()) {
        (true, true) => "paused",
        (true, false) => "dynamic",
        _ => "static",
    };
    let licenses = g
        .assigned_licenses
        .iter()
        .map(|l| {
            let subscribed = tenant
                .skus
                .iter()
                .flatten()
                .find(|s| s.sku_id == l.sku_id)
                .map(|s| s.sku_part_number.clone());
            subscribed
                .or_else(|| {
                    tenant
                        .catalog
                        .sku_by_id(&l.sku_id)
                        .map(|s| s.sku_part_number.clone())
                })
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| l.sku_id.clone())
        })
        .collect();
    Listed {
        id: g.id.clone(),
        display_name: g.display_name.clone(),
        kind,
        membership_rule: g.membership_rule.clone(),
        licenses,
        members: g.members.as_ref().map(Vec::len),
    }
}

pub fn groups(args: GroupsArgs) -> ExitCode {
    let tenant = match super::recompute::tenant_or_sample(
        &args.tenant,
        &super::recompute::quiet_options(),
    ) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let list: Vec<Listed> = tenant.groups.iter().map(|g| listed(&tenant, g)).collect();
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        super::Format::Json => serde_json::to_writer_pretty(&mut out, &list)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n")),
        super::Format::Text => (|| {
            writeln!(
                out,
                "{:<38}  {:<30}  {:<7}  {:>7}  {:<20}  RULE",
                "ID", "NAME", "KIND", "MEMBERS", "LICENCES"
            )?;
            for g in &list {
                writeln!(
                    out,
                    "{:<38}  {:<30}  {:<7}  {:>7}  {:<20}  {}",
                    g.id,
                    g.display_name,
                    g.kind,
                    g.members.map_or_else(|| "?".to_string(), |n| n.to_string()),
                    if g.licenses.is_empty() {
                        "-".to_string()
                    } else {
                        g.licenses.join(",")
                    },
                    g.membership_rule.as_deref().unwrap_or("-")
                )?;
            }
            Ok(())
        })(),
    };
    if written.is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
