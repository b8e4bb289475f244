//! Groups as code: proposed group changes read from a Terraform plan (`terraform show -json`,
//! [`terraform`]) or from the ARM JSON that `bicep build` writes ([`arm`]), turned into
//! [`whatif`](crate::whatif) changes against a snapshot.
//!
//! Reading is in two stages, so the snapshot load can keep the columns the new rules read:
//! [`read`] turns the file into a [`Plan`] (no tenant needed), and [`Plan::changes`] matches its
//! groups to the tenant's and writes [`Change`]s. A planned value is "after apply": a group whose
//! planned rule equals the snapshot's is not changed, whatever the plan's own `before` says (the
//! snapshot is what the what-if compares with). Values not known until apply are carried as
//! such (D77), never guessed.

pub mod arm;
pub mod terraform;

use crate::tenant::{GroupLicense, Severity, Tenant, TenantIssue};
use crate::whatif::{Action, Change};

/// A planned value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Planned<T> {
    /// The plan does not set it (or leaves it as it is).
    #[default]
    Unset,
    /// Known: the value after apply.
    Set(T),
    /// Not known until apply (Terraform's `after_unknown`, an ARM expression).
    Unknown,
}

impl<T> Planned<T> {
    /// The value when known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Planned::Set(v) => Some(v),
            _ => None,
        }
    }
}

/// A planned group resource (`azuread_group`, `msgraph_resource` on `groups`,
/// `microsoft365_graph_beta_groups_group`, `Microsoft.Graph/groups`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlannedGroup {
    /// The resource's address (`azuread_group.sales`, `module.x.azuread_group.y`; for ARM the
    /// symbolic name or `name`).
    pub address: String,
    /// What happens to it. ARM templates, which state what should exist, give
    /// [`Action::Update`] and let [`Plan::changes`] find out whether the group exists.
    pub action: Action,
    /// The object id the plan knows (from `before`, else `after`).
    pub object_id: Option<String>,
    /// `uniqueName` (Bicep).
    pub unique_name: Option<String>,
    /// `displayName` after (else before).
    pub display_name: Option<String>,
    /// `membershipRule` after. `Set(None)`-like states are expressed by [`PlannedGroup::dynamic`].
    pub membership_rule: Planned<String>,
    /// Whether the group is dynamic after (`DynamicMembership` in its types, or a
    /// `dynamic_membership` block).
    pub dynamic: Planned<bool>,
    /// `membershipRuleProcessingState` after (`On` or `Paused`).
    pub processing_state: Planned<String>,
    /// Set for a desired-state source (ARM): a group not found in the snapshot is created.
    pub desired_state: bool,
}

/// Where a licence resource's group is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRef {
    /// A known object id.
    ObjectId(String),
    /// The address of a group resource in the same plan (its id not known until apply).
    Address(String),
    /// Not known until apply, and not traced to a resource in the plan.
    Unknown,
}

/// A planned group licence resource (`azuread_group_license`,
/// `microsoft365_graph_beta_groups_license_assignment`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedLicence {
    /// The resource's address.
    pub address: String,
    /// Create adds the SKU to the group, delete removes it, update sets its `disabledPlans`,
    /// replace removes and adds it again.
    pub action: Action,
    /// The group it assigns to.
    pub group: GroupRef,
    /// `skuId` after (before, for a delete).
    pub sku_id: Planned<String>,
    /// `disabledPlans` after.
    pub disabled_plans: Planned<Vec<String>>,
}

/// Which tool wrote the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `terraform show -json`, with its `format_version`.
    Terraform(String),
    /// ARM JSON (`bicep build`, or an ARM template).
    Arm,
}

/// A plan as read: its group and licence resources, and what it held that dynrule leaves alone.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Which tool wrote it.
    pub source: Source,
    /// Group resources that change (or, for ARM, that the template states).
    pub groups: Vec<PlannedGroup>,
    /// Group licence resources that change.
    pub licences: Vec<PlannedLicence>,
    /// Notes on resources read but not modelled (static `members`), as warnings.
    pub notes: Vec<String>,
}

/// Reads a plan: Terraform's JSON plan (`format_version` and `resource_changes`) or an ARM
/// template (`resources`, as `bicep build` writes it).
///
/// Errors: invalid JSON (line and column), a Terraform `format_version` of another major than
/// 1, a file that is neither, a `.bicep` source (build it first).
pub fn read(text: &str) -> Result<Plan, String> {
    let v: serde_json::Value =
        serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| {
            let hint = if text.trim_start().starts_with("resource ")
                || text.trim_start().starts_with("extension ")
                || text.trim_start().starts_with("param ")
            {
                " (a .bicep file? build it to ARM JSON first: `bicep build main.bicep`)"
            } else {
                ""
            };
            format!("line {}, column {}: {e}{hint}", e.line(), e.column())
        })?;
    if v.get("format_version").is_some() || v.get("resource_changes").is_some() {
        terraform::read(&v)
    } else if v.get("resources").is_some() {
        arm::read(&v)
    } else {
        Err("neither a Terraform JSON plan (`terraform show -json tfplan`: format_version, resource_changes) nor an ARM template (`bicep build`: resources)".into())
    }
}

impl Plan {
    /// The rules the plan sets (for the snapshot load to keep the columns they read).
    pub fn rules(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter_map(|g| g.membership_rule.known().cloned())
            .collect()
    }

    /// The plan as what-if changes on `tenant`, with warnings about what it does not model.
    /// Groups are matched by object id, else `uniqueName`, else `displayName`; a planned group
    /// that changes nothing the what-if reads is left out.
    ///
    /// Errors: an update or delete of a group the snapshot does not have (an id not in the
    /// export, or a name that matches no group or several), an unknown SKU or plan.
    pub fn changes(&self, tenant: &Tenant) -> Result<(Vec<Change>, Vec<TenantIssue>), String> {
        let mut out: Vec<Change> = Vec::new();
        let mut notes: Vec<TenantIssue> = self.notes.iter().map(|n| note(n.clone())).collect();
        let mut created = 0;
        // Group resource address → group index, for licences on groups of the same plan.
        let mut by_address: Vec<(String, usize)> = Vec::new();
        for g in &self.groups {
            let found = match_group(tenant, g)?;
            let (action, group) = match (g.action, found) {
                (Action::Create, _) | (Action::Update, None)
                    if g.action == Action::Create || g.desired_state =>
                {
                    created += 1;
                    (Action::Create, tenant.groups.len() + created - 1)
                }
                (a, Some(i)) => (a, i),
                (_, None) => {
                    return Err(format!(
                        "{}: no group {} in the snapshot (pull the snapshot again, or check the resource's object_id)",
                        g.address,
                        describe(g)
                    ));
                }
            };
            by_address.push((g.address.clone(), group));
            let c = group_change(tenant, g, action, group, &mut notes);
            if !c.is_empty() {
                out.push(c);
            }
        }
        for l in &self.licences {
            licence_change(tenant, l, &mut out, &by_address, &mut notes)?;
        }
        Ok((out, notes))
    }
}

/// A warning about the plan, as a tenant issue (it does not undermine the answer).
fn note(message: String) -> TenantIssue {
    TenantIssue {
        kind: crate::tenant::IssueKind::ExportWarning,
        severity: Severity::Warning,
        file: None,
        line: 0,
        object: None,
        message,
    }
}

fn describe(g: &PlannedGroup) -> String {
    match (&g.object_id, &g.unique_name, &g.display_name) {
        (Some(id), _, _) => format!("with id {id}"),
        (None, Some(u), _) => format!("with uniqueName {u:?}"),
        (None, None, Some(n)) => format!("named {n:?}"),
        _ => "(the resource names none)".into(),
    }
}

/// The snapshot group a planned group is: by object id, else `uniqueName`, else `displayName`
/// (exactly one). A create is matched too, only so a desired-state source knows it exists.
///
/// Errors: a name several groups have.
fn match_group(tenant: &Tenant, g: &PlannedGroup) -> Result<Option<usize>, String> {
    if g.action == Action::Create && !g.desired_state {
        return Ok(None);
    }
    if let Some(id) = &g.object_id {
        let id = id.trim().trim_start_matches("/groups/");
        return Ok(tenant
            .groups
            .iter()
            .position(|x| x.id.eq_ignore_ascii_case(id)));
    }
    if let Some(u) = &g.unique_name {
        if let Some(i) = tenant
            .groups
            .iter()
            .position(|x| x.unique_name.as_deref() == Some(u.as_str()))
        {
            return Ok(Some(i));
        }
    }
    let Some(name) = &g.display_name else {
        return Ok(None);
    };
    let hits: Vec<usize> = tenant
        .groups
        .iter()
        .enumerate()
        .filter(|(_, x)| x.display_name == *name)
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [] => Ok(None),
        [i] => Ok(Some(*i)),
        many => Err(format!(
            "{}: {} groups are named {name:?}; give the resource's object id (or uniqueName)",
            g.address,
            many.len()
        )),
    }
}

/// The change a planned group makes to snapshot group `group` (or to a new one).
fn group_change(
    tenant: &Tenant,
    g: &PlannedGroup,
    action: Action,
    group: usize,
    notes: &mut Vec<TenantIssue>,
) -> Change {
    let mut c = Change {
        group,
        action,
        address: Some(g.address.clone()),
        ..Change::default()
    };
    if action == Action::Delete {
        return c;
    }
    let existing = tenant
        .groups
        .get(group)
        .filter(|_| action != Action::Create);
    if action == Action::Create {
        c.display_name = Some(
            g.display_name
                .clone()
                .or_else(|| g.unique_name.clone())
                .unwrap_or_else(|| g.address.clone()),
        );
    }
    let dynamic_now = existing.is_some_and(crate::tenant::Group::is_dynamic);
    match (&g.membership_rule, &g.dynamic) {
        (_, Planned::Set(false)) if dynamic_now => {
            // Converted to static: Entra keeps the members as they are, as a paused rule does.
            c.membership_rule_processing_state = Some("Paused".into());
            notes.push(note(format!(
                "{}: the group turns static; its members stay as they are (reported as Paused)",
                g.address
            )));
            return c;
        }
        (_, Planned::Set(false)) => {}
        (Planned::Set(rule), _) => {
            if existing.and_then(|e| e.membership_rule.as_ref()) != Some(rule) || !dynamic_now {
                c.membership_rule = Some(rule.clone());
            }
        }
        (Planned::Unknown, _) => c.unknown_until_apply.push("membershipRule".into()),
        (Planned::Unset, _) => {}
    }
    match &g.processing_state {
        Planned::Set(s) => {
            // A new group's rule is On unless the plan pauses it.
            let now = existing
                .and_then(|e| e.processing_state.as_deref())
                .unwrap_or("On");
            if !now.eq_ignore_ascii_case(s) {
                c.membership_rule_processing_state = Some(s.clone());
            }
        }
        Planned::Unknown => c
            .unknown_until_apply
            .push("membershipRuleProcessingState".into()),
        Planned::Unset => {}
    }
    if action == Action::Create && c.membership_rule.is_none() && c.unknown_until_apply.is_empty() {
        notes.push(note(format!(
            "{}: a new static group; dynrule does not model its members (nobody is counted as joining)",
            g.address
        )));
    }
    c
}

/// Applies a licence resource to the change of its group (made when the group has none yet):
/// the group's `assignedLicenses` after are the snapshot's with this SKU added, removed or
/// its `disabledPlans` replaced.
///
/// Errors: a group id not in the snapshot, an unknown SKU or plan.
fn licence_change(
    tenant: &Tenant,
    l: &PlannedLicence,
    out: &mut Vec<Change>,
    by_address: &[(String, usize)],
    notes: &mut Vec<TenantIssue>,
) -> Result<(), String> {
    let at = |m: String| format!("{}: {m}", l.address);
    let gi = match &l.group {
        GroupRef::ObjectId(id) => {
            let id = id.trim().trim_start_matches("/groups/");
            Some(
                tenant
                    .groups
                    .iter()
                    .position(|g| g.id.eq_ignore_ascii_case(id))
                    .ok_or_else(|| at(format!("no group with id {id} in the snapshot")))?,
            )
        }
        GroupRef::Address(a) => by_address.iter().find(|(x, _)| x == a).map(|&(_, gi)| gi),
        GroupRef::Unknown => None,
    };
    let Some(gi) = gi else {
        notes.push(TenantIssue {
            kind: crate::tenant::IssueKind::UnknownUntilApply,
            severity: Severity::Error,
            file: None,
            line: 0,
            object: None,
            message: format!(
                "{}: the group it licenses is not known until apply; its members' licences after are unknown",
                l.address
            ),
        });
        return Ok(());
    };
    let slot = match out.iter().position(|c| c.group == gi) {
        Some(i) => i,
        None => {
            out.push(Change {
                group: gi,
                address: Some(l.address.clone()),
                ..Change::default()
            });
            out.len() - 1
        }
    };
    let Some(c) = out.get_mut(slot) else {
        return Ok(());
    };
    let sku = match &l.sku_id {
        Planned::Set(s) => s.clone(),
        _ => {
            c.unknown_until_apply.push("assignedLicenses".into());
            return Ok(());
        }
    };
    let disabled = match &l.disabled_plans {
        Planned::Set(d) => d.clone(),
        Planned::Unset => Vec::new(),
        Planned::Unknown => {
            c.unknown_until_apply.push("assignedLicenses".into());
            return Ok(());
        }
    };
    let current: Vec<GroupLicense> = match &c.assigned_licenses {
        Some(l) => l.clone(),
        None => tenant
            .groups
            .get(c.group)
            .filter(|_| c.action != Action::Create)
            .map(|g| g.assigned_licenses.clone())
            .unwrap_or_default(),
    };
    let lic = crate::whatif::license(tenant, &sku, &disabled).map_err(at)?;
    let mut next: Vec<GroupLicense> = current
        .into_iter()
        .filter(|x| x.sku_id != lic.sku_id)
        .collect();
    if l.action != Action::Delete {
        next.push(lic);
    }
    if l.action == Action::Replace {
        notes.push(note(format!(
            "{}: replaced; Entra removes the licence from the group and adds it again, and members may lose it briefly",
            l.address
        )));
    }
    c.assigned_licenses = Some(next);
    Ok(())
}

/// Adds a plan's notes (from [`Plan::changes`]) to a what-if's issues; a note that undermines
/// the answer (a licence whose group is not known until apply) also goes under its trust,
/// which then is not trusted.
pub fn add_notes(result: &mut crate::whatif::WhatIf, notes: Vec<TenantIssue>) {
    for n in notes {
        if n.kind.undermines() {
            result.trust.trusted = false;
            result.trust.undermined_by.push(n.clone());
        }
        if !result.issues.contains(&n) {
            result.issues.push(n);
        }
    }
}
