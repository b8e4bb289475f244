//! What the licensing step knows about products and service plans: the [`Catalog`] (SKUs, their
//! service plans, names) and the [`LicensingRules`] (plan dependencies, mutually exclusive
//! plans, usage locations where a plan is prohibited, plans that hold user data).
//!
//! Defaults are embedded in the binary (sources in `data/README.md`):
//! - the catalog from Microsoft's "Product names and service plan identifiers for licensing" CSV
//!   (<https://learn.microsoft.com/entra/identity/users/licensing-service-plan-reference>); a
//!   tenant's `subscribedSkus.servicePlans` replaces a SKU's plan list, since Microsoft adds plans
//!   to products over time and the tenant's list is authoritative;
//! - dependencies from the MIT-licensed community database `jpawlowski/Azure-AD-Licensing-DB`
//!   (`ServicePlansDb.json`, `RequiredServicePlans`), plus dynrule's own
//!   `data/licensing-rules.json` (conflicts, data-holding plans, mailbox plans, each entry with
//!   its source).
//!
//! Microsoft publishes no table of conflicts or dependencies and no list of plans prohibited per
//! country (research note `licensing.md` §4.2): outcomes derived from these rules are
//! predictions, and a tenant can replace or extend them with its own `licensingRules.json`.
//!
//! Everything is keyed on GUIDs (lower case), never on names: the CSV spells some plan names in
//! more than one way.

use crate::formats::is_guid;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};

/// Microsoft's product and service-plan identifier CSV (see `data/README.md`).
pub const MICROSOFT_CSV: &str =
    include_str!("../data/ms-product-names-service-plan-identifiers.csv");

/// `ServicePlansDb.json` of `jpawlowski/Azure-AD-Licensing-DB` (MIT, 2019-12-12).
pub const COMMUNITY_SERVICE_PLANS: &str =
    include_str!("../data/azure-ad-licensing-db/ServicePlansDb.json");

/// dynrule's default rules file (same format as a tenant's `licensingRules.json`).
pub const DEFAULT_RULES: &str = include_str!("../data/licensing-rules.json");

/// Index of a service plan in a [`Catalog`].
pub type PlanIx = u32;

/// A service plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanInfo {
    /// `servicePlanId` (lower case).
    pub service_plan_id: String,
    /// `servicePlanName`, e.g. `EXCHANGE_S_ENTERPRISE` (the first spelling seen; empty if unknown).
    pub service_plan_name: String,
    /// Microsoft's friendly name, e.g. "Exchange Online (Plan 2)" (may be empty).
    pub friendly_name: String,
    /// True when the tenant's `subscribedSkus` says the plan applies to the company, not to
    /// users (such plans are not part of a user's effective plans).
    pub company: bool,
}

/// Where a SKU's plan list came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SkuSource {
    /// Microsoft's identifier CSV.
    MicrosoftCsv,
    /// The tenant's `subscribedSkus.json`.
    SubscribedSkus,
}

/// A product (SKU).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkuInfo {
    /// `skuId` (lower case).
    pub sku_id: String,
    /// `skuPartNumber`, e.g. `ENTERPRISEPACK` (empty if unknown).
    pub sku_part_number: String,
    /// Product display name, e.g. "Office 365 E3" (may be empty).
    pub display_name: String,
    /// Service plans, sorted, deduplicated.
    pub plans: Vec<PlanIx>,
    /// Where `plans` came from.
    pub source: SkuSource,
}

/// SKUs and service plans, by GUID.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    skus: Vec<SkuInfo>,
    sku_index: HashMap<String, usize>,
    sku_by_part: HashMap<String, usize>,
    plans: Vec<PlanInfo>,
    plan_index: HashMap<String, PlanIx>,
    plan_by_name: HashMap<String, PlanIx>,
}

/// Trims spaces, tabs and no-break spaces (the CSV has all three at cell ends).
fn clean(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{a0}')
}

impl Catalog {
    /// The catalog of Microsoft's identifier CSV ([`MICROSOFT_CSV`]), parsed once per process.
    pub fn microsoft() -> Catalog {
        static PARSED: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        PARSED
            .get_or_init(|| {
                let mut c = Catalog::default();
                // `add_csv` skips any row it cannot read.
                c.add_csv(MICROSOFT_CSV);
                c
            })
            .clone()
    }

    /// Adds the rows of a CSV in the shape of Microsoft's identifier file (header
    /// `Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,
    /// Service_Plans_Included_Friendly_Names`; `String_ Id` with a space, as older copies spell
    /// it, also works; a BOM is skipped; cells are trimmed; duplicate rows collapse). Returns the
    /// number of rows read; rows without a valid GUID are skipped.
    pub fn add_csv(&mut self, text: &str) -> usize {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let Ok(headers) = r.headers().cloned() else {
            return 0;
        };
        let col = |name: &str| {
            headers.iter().position(|h| {
                h.chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .eq_ignore_ascii_case(name)
            })
        };
        let (Some(display), Some(part), Some(guid), Some(pname), Some(pid)) = (
            col("ProductDisplayName"),
            col("StringId"),
            col("GUID"),
            col("ServicePlanName"),
            col("ServicePlanId"),
        ) else {
            return 0;
        };
        let friendly = col("ServicePlansIncludedFriendlyNames");
        let mut n = 0;
        for row in r.records().flatten() {
            let get = |i: usize| clean(row.get(i).unwrap_or(""));
            let (sku_id, plan_id) = (get(guid), get(pid));
            if !is_guid(sku_id) || !is_guid(plan_id) {
                continue;
            }
            let p = self.plan(plan_id, get(pname), friendly.map_or("", get));
            let s = self.sku(sku_id, get(part), get(display), SkuSource::MicrosoftCsv);
            if let Some(sku) = self.skus.get_mut(s) {
                if let Err(at) = sku.plans.binary_search(&p) {
                    sku.plans.insert(at, p);
                }
            }
            n += 1;
        }
        n
    }

    /// Interns a plan by id, filling in its names if they were unknown.
    pub fn plan(&mut self, id: &str, name: &str, friendly: &str) -> PlanIx {
        let id = id.trim().to_ascii_lowercase();
        if let Some(&p) = self.plan_index.get(&id) {
            if let Some(info) = self.plans.get_mut(p as usize) {
                if info.service_plan_name.is_empty() && !name.is_empty() {
                    info.service_plan_name = name.to_string();
                }
                if info.friendly_name.is_empty() && !friendly.is_empty() {
                    info.friendly_name = friendly.to_string();
                }
            }
            if !name.is_empty() {
                self.plan_by_name
                    .entry(name.to_ascii_uppercase())
                    .or_insert(p);
            }
            return p;
        }
        let p = self.plans.len() as PlanIx;
        self.plans.push(PlanInfo {
            service_plan_id: id.clone(),
            service_plan_name: name.to_string(),
            friendly_name: friendly.to_string(),
            company: false,
        });
        self.plan_index.insert(id, p);
        if !name.is_empty() {
            self.plan_by_name
                .entry(name.to_ascii_uppercase())
                .or_insert(p);
        }
        p
    }

    fn sku(&mut self, id: &str, part: &str, display: &str, source: SkuSource) -> usize {
        let id = id.trim().to_ascii_lowercase();
        if let Some(&s) = self.sku_index.get(&id) {
            if let Some(info) = self.skus.get_mut(s) {
                if info.sku_part_number.is_empty() && !part.is_empty() {
                    info.sku_part_number = part.to_string();
                    self.sku_by_part
                        .entry(part.to_ascii_uppercase())
                        .or_insert(s);
                }
                if info.display_name.is_empty() && !display.is_empty() {
                    info.display_name = display.to_string();
                }
            }
            return s;
        }
        let s = self.skus.len();
        self.skus.push(SkuInfo {
            sku_id: id.clone(),
            sku_part_number: part.to_string(),
            display_name: display.to_string(),
            plans: Vec::new(),
            source,
        });
        self.sku_index.insert(id, s);
        if !part.is_empty() {
            self.sku_by_part
                .entry(part.to_ascii_uppercase())
                .or_insert(s);
        }
        s
    }

    /// Sets a SKU's plan list from the tenant's `subscribedSkus` (authoritative over the CSV).
    /// `plans` are `(servicePlanId, servicePlanName, appliesTo)`.
    pub fn set_subscribed(&mut self, sku_id: &str, part: &str, plans: &[(String, String, String)]) {
        let s = self.sku(sku_id, part, "", SkuSource::SubscribedSkus);
        let mut ix: Vec<PlanIx> = plans
            .iter()
            .filter(|(id, _, _)| is_guid(id))
            .map(|(id, name, applies)| {
                let p = self.plan(id, name, "");
                if let Some(info) = self.plans.get_mut(p as usize) {
                    info.company = applies.eq_ignore_ascii_case("Company");
                }
                p
            })
            .collect();
        ix.sort_unstable();
        ix.dedup();
        if let Some(sku) = self.skus.get_mut(s) {
            if !part.is_empty() {
                sku.sku_part_number = part.to_string();
            }
            sku.plans = ix;
            sku.source = SkuSource::SubscribedSkus;
        }
    }

    /// The SKU with this `skuId` (any case).
    pub fn sku_by_id(&self, sku_id: &str) -> Option<&SkuInfo> {
        self.sku_index
            .get(&sku_id.trim().to_ascii_lowercase())
            .and_then(|&s| self.skus.get(s))
    }

    /// The SKU with this `skuPartNumber` (any case).
    pub fn sku_by_part_number(&self, part: &str) -> Option<&SkuInfo> {
        self.sku_by_part
            .get(&part.trim().to_ascii_uppercase())
            .and_then(|&s| self.skus.get(s))
    }

    /// A plan by index.
    pub fn plan_info(&self, p: PlanIx) -> Option<&PlanInfo> {
        self.plans.get(p as usize)
    }

    /// A plan by `servicePlanId` (any case).
    pub fn plan_by_id(&self, id: &str) -> Option<PlanIx> {
        self.plan_index
            .get(&id.trim().to_ascii_lowercase())
            .copied()
    }

    /// A plan by GUID or by `servicePlanName` (any case).
    pub fn resolve_plan(&self, id_or_name: &str) -> Option<PlanIx> {
        let s = id_or_name.trim();
        if is_guid(s) {
            return self.plan_by_id(s);
        }
        self.plan_by_name.get(&s.to_ascii_uppercase()).copied()
    }

    /// A plan's display label: its `servicePlanName`, else its id.
    pub fn plan_label(&self, p: PlanIx) -> &str {
        match self.plan_info(p) {
            Some(i) if !i.service_plan_name.is_empty() => &i.service_plan_name,
            Some(i) => &i.service_plan_id,
            None => "?",
        }
    }

    /// A SKU's display label: its `skuPartNumber`, else its id.
    pub fn sku_label<'a>(&'a self, sku_id: &'a str) -> &'a str {
        match self.sku_by_id(sku_id) {
            Some(s) if !s.sku_part_number.is_empty() => &s.sku_part_number,
            _ => sku_id,
        }
    }

    /// Number of SKUs.
    pub fn sku_count(&self) -> usize {
        self.skus.len()
    }
}

/// A prerequisite: `plan` needs every plan of at least one of `requires` (OR of ANDs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The dependent plan.
    pub plan: PlanIx,
    /// Alternatives; each is a set of plans that must all be enabled.
    pub requires: Vec<Vec<PlanIx>>,
    /// Where the rule comes from.
    pub source: String,
}

/// Two plans that cannot be assigned to one user from different products.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The two plans.
    pub plans: [PlanIx; 2],
    /// Where the rule comes from.
    pub source: String,
}

/// Usage locations where a plan may not be assigned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prohibition {
    /// ISO 3166 alpha-2 codes, upper case.
    pub usage_locations: BTreeSet<String>,
    /// Where the rule comes from.
    pub source: String,
}

/// The licensing rules the engine applies beyond plain arithmetic. See the module docs for the
/// defaults and their sources.
#[derive(Clone, Debug, Default)]
pub struct LicensingRules {
    /// Plan prerequisites (behind `DependencyViolation`).
    pub dependencies: Vec<Dependency>,
    /// Mutually exclusive plans (behind `MutuallyExclusiveViolation`).
    pub conflicts: Vec<Conflict>,
    /// Plan → usage locations (ISO 3166 alpha-2, upper case) where it is prohibited (behind
    /// `ProhibitedInUsageLocationViolation`). Empty by default: Microsoft publishes no such list.
    pub prohibited: HashMap<PlanIx, Prohibition>,
    /// Exchange mailbox plans: a user who newly gets one has their proxy addresses checked for
    /// duplicates (`UniquenessViolation`).
    pub mailbox_plans: BTreeSet<PlanIx>,
    /// Plans that hold user data (mailboxes, SharePoint/OneDrive, Teams): losing one is a data
    /// risk.
    pub data_plans: BTreeSet<PlanIx>,
}

/// A problem in a rules file: an entry that names an unknown plan, or a file that is not in the
/// expected shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesIssue {
    /// Which file (`built-in` for the embedded defaults).
    pub file: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RulesFile {
    #[serde(default, rename = "$comment")]
    _comment: Option<serde_json::Value>,
    #[serde(default)]
    replace_defaults: bool,
    #[serde(default)]
    dependencies: Vec<DependencyEntry>,
    #[serde(default)]
    conflicts: Vec<ConflictEntry>,
    #[serde(default)]
    prohibited_in_usage_location: Vec<ProhibitedEntry>,
    #[serde(default)]
    mailbox_plans: Vec<String>,
    #[serde(default)]
    data_plans: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DependencyEntry {
    service_plan: String,
    requires: Vec<Vec<String>>,
    #[serde(default)]
    source: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConflictEntry {
    service_plans: [String; 2],
    #[serde(default)]
    source: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProhibitedEntry {
    service_plan: String,
    usage_locations: Vec<String>,
    #[serde(default)]
    source: String,
}

#[derive(Deserialize)]
struct CommunityDb {
    items: Vec<CommunityPlan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommunityPlan {
    guid: String,
    string_id: String,
    #[serde(default)]
    required_service_plans: Vec<Vec<String>>,
}

impl LicensingRules {
    /// The built-in rules: dependencies from the community database, then
    /// [`DEFAULT_RULES`]. Plans they name that the catalog lacks are added to it by id.
    pub fn defaults(catalog: &mut Catalog) -> (LicensingRules, Vec<RulesIssue>) {
        let mut rules = LicensingRules::default();
        let mut issues = Vec::new();
        rules.add_community(catalog, &mut issues);
        if let Err(e) = rules.add_file(catalog, "built-in", DEFAULT_RULES, &mut issues) {
            issues.push(e);
        }
        (rules, issues)
    }

    fn add_community(&mut self, catalog: &mut Catalog, issues: &mut Vec<RulesIssue>) {
        let text = COMMUNITY_SERVICE_PLANS.trim_start_matches('\u{feff}');
        let db: CommunityDb = match serde_json::from_str(text) {
            Ok(db) => db,
            Err(e) => {
                issues.push(RulesIssue {
                    file: "azure-ad-licensing-db/ServicePlansDb.json".into(),
                    message: e.to_string(),
                });
                return;
            }
        };
        // The database names prerequisites by StringId; its own items give their GUIDs.
        let by_name: HashMap<String, &str> = db
            .items
            .iter()
            .map(|p| (p.string_id.to_ascii_uppercase(), p.guid.as_str()))
            .collect();
        for p in &db.items {
            if p.required_service_plans.is_empty() || !is_guid(&p.guid) {
                continue;
            }
            let plan = catalog.plan(&p.guid, &p.string_id, "");
            let mut requires = Vec::new();
            // An alternative naming something that is not a service plan (the database lists
            // `EXCHANGEDESKLESS`, a product, once) cannot be checked and is left out.
            for alt in &p.required_service_plans {
                let set: Option<Vec<PlanIx>> = alt
                    .iter()
                    .map(|name| {
                        by_name
                            .get(&name.to_ascii_uppercase())
                            .map(|g| catalog.plan(g, name, ""))
                            .or_else(|| catalog.resolve_plan(name))
                    })
                    .collect();
                if let Some(set) = set.filter(|s| !s.is_empty()) {
                    requires.push(set);
                }
            }
            if !requires.is_empty() {
                self.dependencies.push(Dependency {
                    plan,
                    requires,
                    source: "jpawlowski/Azure-AD-Licensing-DB ServicePlansDb.json (MIT, 2019)"
                        .into(),
                });
            }
        }
    }

    /// Adds (or, with `"replaceDefaults": true`, replaces everything with) the rules of a
    /// `licensingRules.json` text. Entries naming plans the catalog does not know (by GUID or
    /// `servicePlanName`) are skipped and reported in `issues`; a file that is not valid JSON in
    /// this shape is an error.
    pub fn add_file(
        &mut self,
        catalog: &mut Catalog,
        file: &str,
        text: &str,
        issues: &mut Vec<RulesIssue>,
    ) -> Result<(), RulesIssue> {
        let f: RulesFile =
            serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| RulesIssue {
                file: file.to_string(),
                message: format!("line {}, column {}: {e}", e.line(), e.column()),
            })?;
        if f.replace_defaults {
            *self = LicensingRules::default();
        }
        let resolve = |name: &str, catalog: &mut Catalog, issues: &mut Vec<RulesIssue>| {
            let r = catalog
                .resolve_plan(name)
                .or_else(|| is_guid(name.trim()).then(|| catalog.plan(name, "", "")));
            if r.is_none() {
                issues.push(RulesIssue {
                    file: file.to_string(),
                    message: format!("unknown service plan `{name}` (use a servicePlanId or a servicePlanName from Microsoft's CSV); entry skipped"),
                });
            }
            r
        };
        for d in f.dependencies {
            let Some(plan) = resolve(&d.service_plan, catalog, issues) else {
                continue;
            };
            let mut requires = Vec::new();
            let mut ok = true;
            for alt in &d.requires {
                let mut set = Vec::new();
                for n in alt {
                    match resolve(n, catalog, issues) {
                        Some(p) => set.push(p),
                        None => ok = false,
                    }
                }
                requires.push(set);
            }
            if ok && !requires.is_empty() {
                self.dependencies.push(Dependency {
                    plan,
                    requires,
                    source: source_or(&d.source, file),
                });
            }
        }
        for c in f.conflicts {
            let [a, b] = &c.service_plans;
            if let (Some(a), Some(b)) = (resolve(a, catalog, issues), resolve(b, catalog, issues)) {
                self.conflicts.push(Conflict {
                    plans: [a, b],
                    source: source_or(&c.source, file),
                });
            }
        }
        for p in f.prohibited_in_usage_location {
            if let Some(plan) = resolve(&p.service_plan, catalog, issues) {
                let e = self.prohibited.entry(plan).or_default();
                e.usage_locations.extend(
                    p.usage_locations
                        .iter()
                        .map(|l| l.trim().to_ascii_uppercase()),
                );
                e.source = source_or(&p.source, file);
            }
        }
        for n in &f.mailbox_plans {
            if let Some(p) = resolve(n, catalog, issues) {
                self.mailbox_plans.insert(p);
            }
        }
        for n in &f.data_plans {
            if let Some(p) = resolve(n, catalog, issues) {
                self.data_plans.insert(p);
            }
        }
        Ok(())
    }

    /// The first dependency of `plan` that `enabled` does not satisfy (`None` when satisfied or
    /// when the plan has no prerequisite).
    pub fn unmet(&self, plan: PlanIx, enabled: &BTreeSet<PlanIx>) -> Option<&Dependency> {
        self.dependencies.iter().find(|d| {
            d.plan == plan
                && !d
                    .requires
                    .iter()
                    .any(|alt| alt.iter().all(|p| enabled.contains(p)))
        })
    }

    /// The plan of `other` (sorted) that conflicts with `plan`, with the rule.
    pub fn conflict_with(&self, plan: PlanIx, other: &[PlanIx]) -> Option<(PlanIx, &Conflict)> {
        self.conflicts.iter().find_map(|c| {
            let [a, b] = c.plans;
            if a == plan && other.binary_search(&b).is_ok() {
                Some((b, c))
            } else if b == plan && other.binary_search(&a).is_ok() {
                Some((a, c))
            } else {
                None
            }
        })
    }
}

fn source_or(source: &str, file: &str) -> String {
    if source.is_empty() {
        file.to_string()
    } else {
        source.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_csv_is_read_by_guid() {
        let c = Catalog::microsoft();
        assert!(c.sku_count() > 500, "{}", c.sku_count());
        let e3 = c
            .sku_by_part_number("ENTERPRISEPACK")
            .map(|s| s.sku_id.clone());
        assert_eq!(e3.as_deref(), Some("6fd2c87f-b296-42f0-b197-1e91e994b900"));
        let exo = c.resolve_plan("exchange_s_enterprise");
        assert_eq!(exo, c.plan_by_id("EFB87545-963C-4E0D-99DF-69C6916D9EB0"));
        let sku = c
            .sku_by_part_number("ENTERPRISEPACK")
            .map(|s| s.plans.clone());
        assert!(sku.is_some_and(|p| exo.is_some_and(|e| p.contains(&e))));
        // Trailing spaces and NBSPs are trimmed.
        assert!(c.sku_by_part_number("AAD_PREMIUM_USGOV_GCCHIGH").is_some());
    }

    #[test]
    fn defaults_resolve_without_issues() {
        let mut c = Catalog::microsoft();
        let (rules, issues) = LicensingRules::defaults(&mut c);
        assert!(issues.is_empty(), "{issues:?}");
        assert!(rules.dependencies.len() >= 13);
        assert!(!rules.conflicts.is_empty());
        let meet = c.resolve_plan("MCOMEETADV").unwrap_or(u32::MAX);
        let std = c.resolve_plan("MCOSTANDARD").unwrap_or(u32::MAX);
        let teams = c.resolve_plan("TEAMS1").unwrap_or(u32::MAX);
        let have: BTreeSet<PlanIx> = [std].into();
        assert!(rules.unmet(meet, &have).is_some());
        let have: BTreeSet<PlanIx> = [std, teams].into();
        assert!(rules.unmet(meet, &have).is_none());
    }

    #[test]
    fn rules_file_errors_are_data() {
        let mut c = Catalog::microsoft();
        let mut r = LicensingRules::default();
        let mut issues = Vec::new();
        let bad = r.add_file(&mut c, "x.json", "{\"conflicts\": 3}", &mut issues);
        assert!(bad.is_err());
        let ok = r.add_file(
            &mut c,
            "x.json",
            r#"{"conflicts": [{"servicePlans": ["NOPE", "TEAMS1"]}]}"#,
            &mut issues,
        );
        assert!(ok.is_ok());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(r.conflicts.is_empty());
    }
}
