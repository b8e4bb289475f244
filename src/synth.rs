//! A deterministic, realistic synthetic tenant in Graph JSON Lines (`dynrule gen-tenant`): for
//! tests, benches, and trying rules without a real export.
//!
//! The same `(users, seed)` gives byte-identical output (ChaCha8 from `seed`). Shape: skewed
//! (Zipf) departments, titles per department, cities with their country and `usageLocation`
//! (about 2% null), 5% guests, 7% disabled accounts, `extensionAttribute1` licence tags such as
//! `EMS;E5_baseservices;`, `proxyAddresses` (primary `SMTP:`, secondary `smtp:`, some `sip:`),
//! a management chain (`manager` as `$expand=manager` returns it), a directory extension
//! `costCenter`, and `assignedLicenses` + `assignedPlans` from real SKUs and service plans of
//! Microsoft's "Product names and service plan identifiers for licensing" CSV
//! (`data/` holds a copy, with its source in `data/README.md`). Each SKU lists a representative subset of its plans (a real
//! E5 has about 90), which keeps files small; plan sets per user still vary with disabled and
//! suspended plans.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;

/// The directory extension's application id (`extension_<appId>_costCenter`).
pub const EXTENSION_APP_ID: &str = "b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5";

const DEPARTMENTS: &[(&str, &[&str])] = &[
    (
        "Sales",
        &[
            "Account Executive",
            "Sales Manager",
            "Sales Representative",
            "Inside Sales",
        ],
    ),
    (
        "Engineering",
        &[
            "Software Engineer",
            "Senior Software Engineer",
            "Engineering Manager",
            "SRE",
        ],
    ),
    (
        "Operations",
        &[
            "Operations Analyst",
            "Warehouse Associate",
            "Shift Lead",
            "Logistics Coordinator",
        ],
    ),
    (
        "Customer Support",
        &[
            "Support Engineer",
            "Support Lead",
            "Customer Success Manager",
        ],
    ),
    (
        "Marketing",
        &["Marketing Manager", "Content Strategist", "Brand Designer"],
    ),
    (
        "Finance",
        &["Accountant", "Financial Analyst", "Controller"],
    ),
    (
        "Human Resources",
        &["HR Business Partner", "Recruiter", "HR Generalist"],
    ),
    (
        "IT",
        &[
            "IT Administrator",
            "Service Desk Analyst",
            "Cloud Architect",
        ],
    ),
    ("Legal", &["Counsel", "Paralegal", "Compliance Officer"]),
    (
        "Retail",
        &[
            "Store Associate",
            "Store Manager",
            "Cashier",
            "Retail Assistant",
        ],
    ),
    (
        "Research",
        &["Research Scientist", "Lab Technician", "Data Scientist"],
    ),
    (
        "Executive",
        &["Chief Executive Officer", "Vice President", "Director"],
    ),
    ("Procurement", &["Buyer", "Procurement Manager"]),
    (
        "Facilities",
        &["Facilities Coordinator", "Security Officer"],
    ),
    (
        "Product",
        &["Product Manager", "UX Designer", "Product Owner"],
    ),
];

/// (city, state, country, usageLocation)
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Seattle", "WA", "United States", "US"),
    ("New York", "NY", "United States", "US"),
    ("Chicago", "IL", "United States", "US"),
    ("Austin", "TX", "United States", "US"),
    ("London", "", "United Kingdom", "GB"),
    ("Manchester", "", "United Kingdom", "GB"),
    ("Berlin", "", "Germany", "DE"),
    ("München", "BY", "Germany", "DE"),
    ("Paris", "", "France", "FR"),
    ("Oslo", "", "Norway", "NO"),
    ("Stockholm", "", "Sweden", "SE"),
    ("Amsterdam", "", "Netherlands", "NL"),
    ("Madrid", "", "Spain", "ES"),
    ("Toronto", "ON", "Canada", "CA"),
    ("Bengaluru", "KA", "India", "IN"),
    ("Singapore", "", "Singapore", "SG"),
    ("Sydney", "NSW", "Australia", "AU"),
    ("Tokyo", "", "Japan", "JP"),
    ("São Paulo", "SP", "Brazil", "BR"),
    ("Zürich", "ZH", "Switzerland", "CH"),
];

const GIVEN: &[&str] = &[
    "Adele",
    "Alex",
    "Allan",
    "Bianca",
    "Brian",
    "Cameron",
    "Christie",
    "Debra",
    "Diego",
    "Emily",
    "Enrico",
    "Grady",
    "Henrietta",
    "Irvin",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Raul",
    "Sanjay",
    "Søren",
    "Zoë",
    "Åsa",
    "José",
    "Mei",
    "Yuki",
    "Olga",
    "Fatima",
    "Kwame",
    "Ingrid",
    "Lars",
    "Priya",
    "Chen",
];

const SURNAMES: &[&str] = &[
    "Vance",
    "Wilber",
    "Deyoung",
    "Pila",
    "Johnson",
    "White",
    "Cline",
    "Berger",
    "Siciliani",
    "Gibson",
    "Bowen",
    "Archie",
    "Mueller",
    "Sampson",
    "Holt",
    "Lambert",
    "Patterson",
    "Wilkins",
    "Gonzalez",
    "Gupta",
    "Varma",
    "Müller",
    "Østergaard",
    "García",
    "Nakamura",
    "Ivanova",
    "Okafor",
    "Andersson",
    "Rossi",
    "Kowalski",
    "Dubois",
    "Li",
    "Smith",
    "Brown",
    "Taylor",
];

/// A SKU: `(skuPartNumber, skuId, plans as (servicePlanId, service))`.
type Sku = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// SKUs and representative plans (ids from Microsoft's licensing CSV).
pub const SKUS: &[Sku] = &[
    (
        "SPE_E5",
        "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
        &[
            ("efb87545-963c-4e0d-99df-69c6916d9eb0", "exchange"),
            ("5dbe027f-2339-4123-9542-606e4d348a72", "SharePoint"),
            ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TeamspaceAPI"),
            (
                "0feaeb32-d00e-4d66-bd5a-43b5b83db82c",
                "MicrosoftCommunicationsOnline",
            ),
            (
                "4828c8ec-dc2e-4779-b502-87ac9ce28ab7",
                "MicrosoftCommunicationsOnline",
            ),
            ("43de0ff5-c92c-492b-9116-175376d08c38", "MicrosoftOffice"),
            ("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AADPremiumService"),
            ("eec0eb4f-6444-4f95-aba0-50c24d67f998", "AADPremiumService"),
            ("8a256a2b-b617-496d-b51b-e76466e88db0", "MultiFactorService"),
            ("c1ec4a95-1f05-45b3-a911-aa3fa01094f5", "SCO"),
            ("bea4c11e-220a-4e6d-8eb8-8ea15d019f90", "RMSOnline"),
            ("70d33638-9c74-4d01-bfd3-562de28bd4ba", "PowerBI"),
        ],
    ),
    (
        "SPE_E3",
        "05e9a617-0261-4cee-bb44-138d3ef5d965",
        &[
            ("efb87545-963c-4e0d-99df-69c6916d9eb0", "exchange"),
            ("5dbe027f-2339-4123-9542-606e4d348a72", "SharePoint"),
            ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TeamspaceAPI"),
            (
                "0feaeb32-d00e-4d66-bd5a-43b5b83db82c",
                "MicrosoftCommunicationsOnline",
            ),
            ("43de0ff5-c92c-492b-9116-175376d08c38", "MicrosoftOffice"),
            ("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AADPremiumService"),
            ("8a256a2b-b617-496d-b51b-e76466e88db0", "MultiFactorService"),
            ("c1ec4a95-1f05-45b3-a911-aa3fa01094f5", "SCO"),
            ("bea4c11e-220a-4e6d-8eb8-8ea15d019f90", "RMSOnline"),
        ],
    ),
    (
        "SPE_F1",
        "66b55226-6b4f-492c-910c-a3b7a3c9d993",
        &[
            ("4a82b400-a79f-41a4-b4e2-e94f5787b113", "exchange"),
            ("902b47e5-dcb2-4fdc-858b-c63a90a2bdb9", "SharePoint"),
            ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TeamspaceAPI"),
            ("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AADPremiumService"),
            ("c1ec4a95-1f05-45b3-a911-aa3fa01094f5", "SCO"),
            ("bea4c11e-220a-4e6d-8eb8-8ea15d019f90", "RMSOnline"),
        ],
    ),
    (
        "EMS",
        "efccb6f7-5641-4e0e-bd10-b4976e1bf68e",
        &[
            ("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AADPremiumService"),
            ("8a256a2b-b617-496d-b51b-e76466e88db0", "MultiFactorService"),
            ("c1ec4a95-1f05-45b3-a911-aa3fa01094f5", "SCO"),
            ("6c57d4b6-3b23-47a5-9bc9-69f17b4947b3", "RMSOnline"),
        ],
    ),
    (
        "POWER_BI_PRO",
        "f8a1db68-be16-40ed-86d5-cb42ce701560",
        &[
            ("113feb6c-3fe4-4440-bddc-54d774bf0318", "exchange"),
            ("70d33638-9c74-4d01-bfd3-562de28bd4ba", "PowerBI"),
        ],
    ),
];

/// The id of the group that licenses SKU `s` of [`SKUS`] in a generated snapshot.
pub fn license_group_id(s: usize) -> String {
    format!("1ce9b0a1-5e0d-4c3e-9a11-{:012x}", 0xc0ffee000 + s)
}

/// The `extensionAttribute1` tag of SKU `s` of [`SKUS`].
pub const TAGS: &[&str] = &["E5_baseservices", "E3;", "F3;", "EMS", "PBI"];

struct Gen {
    rng: ChaCha8Rng,
    dept: Zipf<f64>,
    city: Zipf<f64>,
    upns: HashMap<String, u32>,
    managers: Vec<String>,
}

impl Gen {
    fn new(seed: u64) -> std::io::Result<Gen> {
        Ok(Gen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            dept: Zipf::new(DEPARTMENTS.len() as f64, 1.1).map_err(std::io::Error::other)?,
            city: Zipf::new(CITIES.len() as f64, 0.9).map_err(std::io::Error::other)?,
            upns: HashMap::new(),
            managers: Vec::new(),
        })
    }

    fn guid(&mut self) -> String {
        let v: u128 = self.rng.random();
        // A version-4 layout: the 13th hex digit is 4.
        let v = (v & !(0xF << 76)) | (0x4 << 76);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            v >> 96,
            (v >> 80) & 0xFFFF,
            (v >> 64) & 0xFFFF,
            (v >> 48) & 0xFFFF,
            v & 0xFFFF_FFFF_FFFF
        )
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs.choose(&mut self.rng).copied().unwrap_or("")
    }

    fn ascii(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                'ø' | 'Ø' => 'o',
                'å' | 'Å' | 'ä' | 'Ä' | 'á' => 'a',
                'ö' | 'Ö' => 'o',
                'ü' | 'Ü' => 'u',
                'é' | 'ë' => 'e',
                'í' => 'i',
                c => c,
            })
            .filter(char::is_ascii_alphanumeric)
            .collect()
    }

    /// A user's licences: the SKUs drawn (none for a guest), their tags for
    /// `extensionAttribute1` (which drive group-based licensing in many tenants),
    /// `assignedLicenses`, `licenseAssignmentStates` and `assignedPlans`.
    fn licenses(&mut self, guest: bool, enabled: bool) -> UserLicenses {
        let roll: f64 = self.rng.random();
        let mut skus: Vec<usize> = Vec::new();
        if !guest {
            if roll < 0.25 {
                skus.push(0);
            } else if roll < 0.70 {
                skus.push(1);
            } else if roll < 0.85 {
                skus.push(2);
            }
            if skus.first() != Some(&0) && self.chance(0.2) {
                skus.push(3);
            }
            if self.chance(0.1) {
                skus.push(4);
            }
        }
        let tags: String = skus
            .iter()
            .map(|&s| match s {
                0 => "E5_baseservices;",
                1 => "E3;",
                2 => "F3;",
                3 => "EMS;",
                _ => "PBI;",
            })
            .collect();
        let mut licenses = Vec::new();
        let mut states = Vec::new();
        let mut plans = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for &s in &skus {
            let Some((_, sku_id, sku_plans)) = SKUS.get(s) else {
                continue;
            };
            let mut disabled = Vec::new();
            for (pid, service) in *sku_plans {
                let off = self.chance(0.03);
                if off {
                    disabled.push(*pid);
                }
                if !seen.insert(*pid) {
                    continue;
                }
                let status = if off {
                    "Deleted"
                } else if !enabled && self.chance(0.5) {
                    "Suspended"
                } else {
                    "Enabled"
                };
                plans.push(json!({
                    "assignedDateTime": "2024-03-01T10:00:00Z",
                    "capabilityStatus": status,
                    "service": service,
                    "servicePlanId": pid,
                }));
            }
            // Group-based licensing from the tag's group; a user with plans turned off also
            // keeps a direct assignment (a migration leftover), so the union enables all.
            licenses.push(json!({"disabledPlans": [], "skuId": sku_id}));
            states.push(json!({
                "assignedByGroup": license_group_id(s),
                "disabledPlans": [],
                "error": "None",
                "lastUpdatedDateTime": "2026-01-05T08:00:00Z",
                "skuId": sku_id,
                "state": "Active",
            }));
            if !disabled.is_empty() {
                states.push(json!({
                    "assignedByGroup": null,
                    "disabledPlans": disabled,
                    "error": "None",
                    "lastUpdatedDateTime": "2024-03-01T10:00:00Z",
                    "skuId": sku_id,
                    "state": "Active",
                }));
            }
        }
        UserLicenses {
            tags,
            licenses,
            states,
            plans,
        }
    }

    /// `proxyAddresses`: the primary SMTP address, the onmicrosoft.com alias, and sometimes a
    /// SIP address and a legacy domain.
    fn proxies(&mut self, mail: &str, alias: &str) -> Vec<String> {
        let mut proxies = vec![
            format!("SMTP:{mail}"),
            format!("smtp:{alias}@contoso.onmicrosoft.com"),
        ];
        if self.chance(0.3) {
            proxies.push(format!("sip:{alias}@contoso.com"));
        }
        if self.chance(0.1) {
            proxies.push(format!("smtp:{alias}@contoso-legacy.com"));
        }
        proxies
    }

    fn user(&mut self, i: usize) -> Value {
        let id = self.guid();
        let given = self.pick(GIVEN).to_string();
        let surname = self.pick(SURNAMES).to_string();
        let guest = self.chance(0.05);
        let base = format!("{}.{}", Self::ascii(&given), Self::ascii(&surname));
        let n = self.upns.entry(base.to_lowercase()).or_insert(0);
        *n += 1;
        let local = if *n == 1 {
            base.clone()
        } else {
            format!("{base}{n}")
        };
        let (upn, mail) = if guest {
            let m = format!("{}@fabrikam.com", local.to_lowercase());
            (
                format!(
                    "{}_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                    local.to_lowercase()
                ),
                m,
            )
        } else {
            (
                format!("{local}@contoso.com"),
                format!("{local}@contoso.com"),
            )
        };
        let d = (self.dept.sample(&mut self.rng) as usize).saturating_sub(1);
        let (dept, titles) = DEPARTMENTS.get(d).copied().unwrap_or(("Sales", &[]));
        let title = self.pick(titles).to_string();
        let c = (self.city.sample(&mut self.rng) as usize).saturating_sub(1);
        let (city, state, country, usage) =
            CITIES
                .get(c)
                .copied()
                .unwrap_or(("Seattle", "WA", "United States", "US"));
        let usage_location = if self.chance(0.02) {
            Value::Null
        } else {
            json!(usage)
        };
        let enabled = !self.chance(0.07);
        let synced = !guest && self.chance(0.7);
        let UserLicenses {
            tags,
            licenses,
            states,
            plans,
        } = self.licenses(guest, enabled);
        let alias = local.to_lowercase();
        let proxies = self.proxies(&mail, &alias);
        let manager = if i > 0 && !self.managers.is_empty() && !guest {
            let m = self.rng.random_range(0..self.managers.len());
            self.managers
                .get(m)
                .map_or(Value::Null, |m| json!({"id": m}))
        } else {
            Value::Null
        };
        if self.managers.len() < 50 || self.chance(0.08) {
            self.managers.push(id.clone());
        }
        let hire = if self.chance(0.7) {
            let days = self.rng.random_range(0..365 * 15);
            let t = jiff::Timestamp::from_second(1_420_070_400 + days * 86_400)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            json!(t.to_string())
        } else {
            Value::Null
        };
        let employee_id = if guest || self.chance(0.15) {
            Value::Null
        } else {
            json!(format!("E{:07}", i + 1000))
        };
        let phone = if self.chance(0.6) {
            vec![format!("+1 425 555 {:04}", i % 10_000)]
        } else {
            vec![]
        };
        let mobile = if self.chance(0.4) {
            json!(format!("+1 206 555 {:04}", (i * 7) % 10_000))
        } else {
            Value::Null
        };
        let cost_center = if self.chance(0.5) {
            json!(format!(
                "CC-{}",
                100 + d * 10 + self.rng.random_range(0..10)
            ))
        } else {
            Value::Null
        };
        let company = if guest {
            json!("Fabrikam")
        } else if self.chance(0.9) {
            json!("Contoso")
        } else {
            json!("Contoso Retail")
        };
        let ext2 = if synced {
            json!(format!("OU={dept},DC=contoso,DC=com"))
        } else {
            Value::Null
        };
        let mut u = json!({
            "id": id,
            "accountEnabled": enabled,
            "businessPhones": phone,
            "city": city,
            "companyName": company,
            "country": country,
            "department": dept,
            "displayName": format!("{given} {surname}"),
            "employeeHireDate": hire,
            "employeeId": employee_id,
            "givenName": given,
            "jobTitle": title,
            "mail": mail,
            "mailNickname": alias,
            "mobilePhone": mobile,
            "officeLocation": format!("{city} {}", 1 + (i % 7)),
            "onPremisesExtensionAttributes": {
                "extensionAttribute1": if tags.is_empty() { Value::Null } else { json!(tags) },
                "extensionAttribute2": ext2,
                "extensionAttribute10": if guest { "Guest" } else if self.chance(0.1) { "Contractor" } else { "Employee" },
            },
            "onPremisesSyncEnabled": if synced { json!(true) } else { Value::Null },
            "preferredLanguage": if self.chance(0.8) { json!("en-US") } else { json!("de-DE") },
            "proxyAddresses": proxies,
            "state": if state.is_empty() { Value::Null } else { json!(state) },
            "surname": surname,
            "usageLocation": usage_location,
            "userPrincipalName": upn,
            "userType": if guest { "Guest" } else { "Member" },
            "assignedLicenses": licenses,
            "licenseAssignmentStates": states,
            "assignedPlans": plans,
            "manager": manager,
        });
        if let (Value::Object(o), false) = (&mut u, cost_center.is_null()) {
            o.insert(
                format!("extension_{EXTENSION_APP_ID}_costCenter"),
                cost_center,
            );
        }
        u
    }
}

/// What [`Gen::licenses`] draws for one user.
struct UserLicenses {
    tags: String,
    licenses: Vec<Value>,
    states: Vec<Value>,
    plans: Vec<Value>,
}

/// Writes `users` Graph user objects as JSON Lines to `out`, deterministically from `seed`.
///
/// Errors: the writer's I/O errors.
pub fn write_tenant(users: usize, seed: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut g = Gen::new(seed)?;
    for i in 0..users {
        let u = g.user(i);
        serde_json::to_writer(&mut *out, &u)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The generated users as values (tests).
pub fn tenant_values(users: usize, seed: u64) -> Vec<Value> {
    let mut buf = Vec::new();
    if write_tenant(users, seed, &mut buf).is_err() {
        return Vec::new();
    }
    buf.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

/// A `subscribedSku` object as `GET /subscribedSkus` returns it, with the SKU's plans from the
/// catalog.
fn subscribed_sku(
    catalog: &crate::catalog::Catalog,
    part: &str,
    sku_id: &str,
    consumed: u64,
    prepaid: u64,
) -> Value {
    let plans: Vec<Value> = catalog
        .sku_by_id(sku_id)
        .map(|k| k.plans.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| catalog.plan_info(p))
        .map(|p| json!({"servicePlanId": p.service_plan_id, "servicePlanName": p.service_plan_name, "provisioningStatus": "Success", "appliesTo": "User"}))
        .collect();
    json!({
        "id": format!("00000000-0000-0000-0000-00000000c0de_{sku_id}"),
        "skuId": sku_id, "skuPartNumber": part, "appliesTo": "User",
        "capabilityStatus": "Enabled", "consumedUnits": consumed,
        "prepaidUnits": {"enabled": prepaid, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": plans,
    })
}

fn put(v: &mut Value, key: &str, x: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), x);
    }
}

/// Writes a generated tenant snapshot into `dir` (created if missing), in the layout
/// [`crate::tenant::Tenant::load`] reads: `users.jsonl` (as [`write_tenant`]),
/// `groups.json`, `subscribedSkus.json` and `organization.json` (country `US`).
///
/// Groups (a few hundred): one licence group per SKU on its `extensionAttribute1` tag (the
/// users' `licenseAssignmentStates` name them), a dynamic group per department, per city and
/// per department and top-10 city, a handful of rules over other properties (guests,
/// contractors, proxyAddresses, hire date, assignedPlans, a directory extension), a paused
/// group, a Microsoft 365 group that is not security-enabled, and a static group with members.
/// Dynamic groups are written without `members`, as a plain `GET /groups` returns them. Seats:
/// each SKU has its holders plus some headroom, except EMS, which has none.
///
/// Errors: I/O errors.
pub fn write_snapshot(users: usize, seed: u64, dir: &std::path::Path) -> std::io::Result<()> {
    write_snapshot_with(users, seed, 0, dir)
}

/// [`write_snapshot`], its groups topped up to `group_count` by the dynamic groups of
/// [`extra_groups`] (none when the generated groups are as many or more): a tenant at Entra's
/// limit of 15,000 dynamic groups. Deterministic for the same arguments.
///
/// Errors: I/O errors.
pub fn write_snapshot_with(
    users: usize,
    seed: u64,
    group_count: usize,
    dir: &std::path::Path,
) -> std::io::Result<()> {
    let mut folder = crate::output::OutputDir::open(dir, None)?;
    let mut g = Gen::new(seed)?;
    let mut holders = vec![0u64; SKUS.len()];
    let mut project: Vec<Value> = Vec::new();
    folder.stage("users.jsonl", |out| {
        for i in 0..users {
            let u = g.user(i);
            for l in u
                .get("assignedLicenses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(s) = SKUS
                    .iter()
                    .position(|(_, id, _)| l.get("skuId") == Some(&json!(id)))
                {
                    if let Some(h) = holders.get_mut(s) {
                        *h += 1;
                    }
                }
            }
            if i % 97 == 5 && project.len() < 10_000 {
                project.push(json!({"@odata.type": "#microsoft.graph.user", "id": u.get("id")}));
            }
            serde_json::to_writer(&mut *out, &u)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })?;

    let mut groups = snapshot_groups(seed, project);
    groups.extend(extra_groups(seed, groups.len(), group_count));
    folder.stage("groups.json", |f| {
        serde_json::to_writer_pretty(f, &json!({"value": groups})).map_err(std::io::Error::from)
    })?;

    let catalog = crate::catalog::Catalog::microsoft();
    let headroom = [1.05, 1.03, 1.10, 1.0, 1.2];
    let skus: Vec<Value> = SKUS
        .iter()
        .enumerate()
        .map(|(s, (part, sku_id, _))| {
            let h = holders.get(s).copied().unwrap_or(0);
            let extra = headroom.get(s).copied().unwrap_or(1.0);
            subscribed_sku(
                &catalog,
                part,
                sku_id,
                h,
                ((h as f64) * extra).ceil() as u64,
            )
        })
        .collect();
    folder.stage("subscribedSkus.json", |f| {
        serde_json::to_writer_pretty(f, &json!({"value": skus})).map_err(std::io::Error::from)
    })?;
    folder.stage("organization.json", |f| {
        serde_json::to_writer_pretty(
            f,
            &json!({"value": [{"id": "00000000-0000-0000-0000-00000000c0de", "displayName": "Contoso", "countryLetterCode": "US"}]}),
        )
        .map_err(std::io::Error::from)
    })?;
    folder.commit()
}

/// Dynamic groups numbered `from..to` (none when `to <= from`), for tenants at Entra's scale
/// (15,000 dynamic groups): rules drawn from the generated users' own values — `-eq`, `-ne`,
/// `-in`, `-startsWith`, `-contains` on department, city, job title and usage location, and
/// `-any` on `proxyAddresses` — one to four clauses joined by `-and` (one in five by `-or`), half
/// of them also requiring `accountEnabled`. Deterministic for a seed.
pub fn extra_groups(seed: u64, from: usize, to: usize) -> Vec<Value> {
    use rand::Rng;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    use rand::seq::IndexedRandom;
    let pick = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| rng.random_range(0..n.max(1));
    let one = |rng: &mut rand_chacha::ChaCha8Rng, xs: &[&'static str]| -> &'static str {
        xs.choose(rng).copied().unwrap_or("")
    };
    let depts: Vec<&str> = DEPARTMENTS.iter().map(|(d, _)| *d).collect();
    let titles: Vec<&str> = DEPARTMENTS
        .iter()
        .flat_map(|(_, t)| t.iter().copied())
        .collect();
    let cities: Vec<&str> = CITIES.iter().map(|c| c.0).collect();
    let locations: Vec<&str> = CITIES.iter().map(|c| c.3).collect();
    let quote = |v: &str| format!("\"{v}\"");
    let list = |rng: &mut rand_chacha::ChaCha8Rng, xs: &[&'static str]| {
        let n = 2 + pick(rng, 3);
        let items: Vec<String> = (0..n).map(|_| quote(one(rng, xs))).collect();
        format!("[{}]", items.join(", "))
    };
    let clause = |rng: &mut rand_chacha::ChaCha8Rng| -> String {
        match pick(rng, 10) {
            0 => format!("user.department -eq {}", quote(one(rng, &depts))),
            1 => format!("user.department -ne {}", quote(one(rng, &depts))),
            2 => format!("user.department -in {}", list(rng, &depts)),
            3 => format!("user.city -eq {}", quote(one(rng, &cities))),
            4 => {
                let c = one(rng, &cities);
                let prefix: String = c.chars().take(3).collect();
                format!("user.city -startsWith {}", quote(&prefix))
            }
            5 => {
                let t = one(rng, &titles);
                let word = t.split(' ').next_back().unwrap_or(t);
                format!("user.jobTitle -contains {}", quote(word))
            }
            6 => format!("user.jobTitle -eq {}", quote(one(rng, &titles))),
            7 => format!("user.usageLocation -in {}", list(rng, &locations)),
            8 => {
                let needle = one(rng, &["contoso-legacy.com", "sip:", "onmicrosoft.com"]);
                if needle.ends_with(':') {
                    format!("user.proxyAddresses -any (_ -startsWith {})", quote(needle))
                } else {
                    format!("user.proxyAddresses -any (_ -contains {})", quote(needle))
                }
            }
            _ => format!("user.usageLocation -eq {}", quote(one(rng, &locations))),
        }
    };
    (from..to)
        .map(|i| {
            let n = 1 + pick(&mut rng, 4);
            let join = if rng.random_bool(0.2) {
                " -or "
            } else {
                " -and "
            };
            let parts: Vec<String> = (0..n).map(|_| format!("({})", clause(&mut rng))).collect();
            let rule = parts.join(join);
            let rule = if rng.random_bool(0.5) {
                let body = if n > 1 { format!("({rule})") } else { rule };
                format!("{body} -and (user.accountEnabled -eq true)")
            } else {
                rule
            };
            group_value(seed, i, rule)
        })
        .collect()
}

fn group_value(seed: u64, i: usize, rule: String) -> Value {
    json!({
        "id": format!("5ca1e000-{:04x}-4d2b-8f00-{:012x}", seed & 0xffff, i),
        "displayName": format!("Generated group {i}"),
        "groupTypes": ["DynamicMembership"], "securityEnabled": true, "mailEnabled": false,
        "membershipRule": rule, "membershipRuleProcessingState": "On", "assignedLicenses": [],
    })
}

/// The generated snapshot's groups: one licensing group per SKU (its tag in
/// `extensionAttribute1`), groups per department, city and both, a few rule shapes admins
/// write, a paused group, a Microsoft 365 group and a static group with `project` as members.
fn snapshot_groups(seed: u64, project: Vec<Value>) -> Vec<Value> {
    let mut n = 0u64;
    let mut id = || {
        n += 1;
        format!("9a0c5e11-{:04x}-4d2b-8f00-{:012x}", seed & 0xffff, n)
    };
    let dynamic = |id: String, name: &str, rule: &str| {
        json!({
            "id": id, "displayName": name, "description": null,
            "groupTypes": ["DynamicMembership"], "securityEnabled": true, "mailEnabled": false,
            "membershipRule": rule, "membershipRuleProcessingState": "On", "assignedLicenses": [],
        })
    };
    let mut groups: Vec<Value> = Vec::new();
    for (s, (part, sku_id, _)) in SKUS.iter().enumerate() {
        let tag = TAGS.get(s).copied().unwrap_or("");
        let mut grp = dynamic(
            license_group_id(s),
            &format!("Licence {part}"),
            &format!("user.extensionAttribute1 -contains \"{tag}\""),
        );
        put(
            &mut grp,
            "assignedLicenses",
            json!([{"skuId": sku_id, "disabledPlans": []}]),
        );
        groups.push(grp);
    }
    for (d, _) in DEPARTMENTS {
        groups.push(dynamic(
            id(),
            &format!("Department {d}"),
            &format!("(user.department -eq \"{d}\") -and (user.accountEnabled -eq true)"),
        ));
    }
    for (c, _, _, _) in CITIES {
        groups.push(dynamic(
            id(),
            &format!("City {c}"),
            &format!("user.city -eq \"{c}\""),
        ));
    }
    for (d, _) in DEPARTMENTS {
        for (c, _, _, _) in CITIES.iter().take(10) {
            groups.push(dynamic(
                id(),
                &format!("{d} in {c}"),
                &format!("(user.department -eq \"{d}\") -and (user.city -eq \"{c}\") -and (user.userType -eq \"Member\")"),
            ));
        }
    }
    for (name, rule) in [
        ("All guests", "user.userType -eq \"Guest\""),
        (
            "Contractors",
            "user.extensionAttribute10 -eq \"Contractor\"",
        ),
        (
            "Legacy mail domain",
            "user.proxyAddresses -any (_ -contains \"@contoso-legacy.com\")",
        ),
        (
            "Hired since 2024",
            "user.employeeHireDate -ge 2024-01-01T00:00:00Z",
        ),
        (
            "Exchange Online users",
            "user.assignedPlans -any (assignedPlan.servicePlanId -eq \"efb87545-963c-4e0d-99df-69c6916d9eb0\" -and assignedPlan.capabilityStatus -eq \"Enabled\")",
        ),
        (
            "Cost centres 10x",
            &format!("user.extension_{EXTENSION_APP_ID}_costCenter -startsWith \"CC-10\""),
        ),
        ("Synced from AD", "user.dirSyncEnabled -eq true"),
        ("German speakers", "user.preferredLanguage -eq \"de-DE\""),
    ] {
        groups.push(dynamic(id(), name, rule));
    }
    let mut paused = dynamic(
        id(),
        "Old sales reorg (paused)",
        "user.department -eq \"Sales\"",
    );
    put(
        &mut paused,
        "membershipRuleProcessingState",
        json!("Paused"),
    );
    put(&mut paused, "members", json!([]));
    groups.push(paused);
    let mut m365 = dynamic(
        id(),
        "Sales team (Microsoft 365)",
        "user.department -eq \"Sales\"",
    );
    put(
        &mut m365,
        "groupTypes",
        json!(["Unified", "DynamicMembership"]),
    );
    put(&mut m365, "securityEnabled", json!(false));
    put(&mut m365, "mailEnabled", json!(true));
    groups.push(m365);
    groups.push(json!({
        "id": id(), "displayName": "Project Phoenix", "description": "static project team",
        "groupTypes": [], "securityEnabled": true, "mailEnabled": false,
        "assignedLicenses": [], "members": project,
    }));
    groups
}

/// `skuId`s of the sample tenant's products (Microsoft's identifier CSV).
pub mod sample_skus {
    /// Office 365 E3.
    pub const ENTERPRISEPACK: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
    /// Office 365 E5.
    pub const ENTERPRISEPREMIUM: &str = "c7df2760-2c81-4ef7-b578-5b5392b571df";
    /// Enterprise Mobility + Security E3.
    pub const EMS: &str = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e";
    /// Office 365 E1.
    pub const STANDARDPACK: &str = "18181a46-0d4e-45cd-891e-60aabd171b4e";
    /// Power BI Pro.
    pub const POWER_BI_PRO: &str = "f8a1db68-be16-40ed-86d5-cb42ce701560";
}

/// Users in the built-in sample tenant.
pub const SAMPLE_USERS: usize = 3_000;

/// The built-in sample tenant (`--tenant sample`, or no `--tenant`): [`SAMPLE_USERS`] generated
/// users (seed 2024) and the groups of Microsoft's group-based licensing docs — *HR Department*
/// (Office 365 E3 with Yammer Enterprise disabled, plus EMS E3), *Kiosk users* (static, Office
/// 365 E1; two HR people are in it too, so the docs' E1/E3 conflict shows), *O365 E3 base
/// services* and *O365 E3 extended services* (one product split across two groups), *EMS
/// users* and *E5 base services* on `extensionAttribute1` tags, *Power BI users*,
/// *Engineering* — plus groups without licences (all employees, guests, an `assignedPlans`
/// rule). Its licence states are what dynrule's own licensing gives those groups, so the
/// snapshot is consistent; seats: E5 has none to spare, EMS five, the others some.
///
/// Deterministic: the same every time.
///
/// Errors: only if the generated users could not be read back (a bug; reported, never a panic).
pub fn sample_tenant() -> Result<crate::tenant::Tenant, String> {
    use crate::tenant::{Parts, Tenant, UserRecords};
    use sample_skus::*;
    let mut users = tenant_values(SAMPLE_USERS, 2024);
    for u in &mut users {
        if let Some(o) = u.as_object_mut() {
            o.remove("assignedLicenses");
            o.remove("licenseAssignmentStates");
            o.remove("assignedPlans");
        }
    }
    let catalog = crate::catalog::Catalog::microsoft();
    let groups = sample_groups(&users, &catalog);
    let skus_of = |consumed: &[(String, u64)]| -> Vec<Value> {
        [
            ("ENTERPRISEPACK", ENTERPRISEPACK, 1.03, 0u64),
            ("ENTERPRISEPREMIUM", ENTERPRISEPREMIUM, 1.0, 0),
            ("EMS", EMS, 1.0, 5),
            ("STANDARDPACK", STANDARDPACK, 1.1, 0),
            ("POWER_BI_PRO", POWER_BI_PRO, 1.2, 0),
        ]
        .iter()
        .map(|(part, id, headroom, extra)| {
            let used = consumed.iter().find(|(s, _)| s == id).map_or(0, |c| c.1);
            let prepaid = if consumed.is_empty() {
                1_000_000
            } else {
                ((used as f64) * headroom).ceil() as u64 + extra
            };
            subscribed_sku(&catalog, part, id, used, prepaid)
        })
        .collect()
    };
    let objects = |vs: Vec<Value>, file: &str| -> crate::tenant::Objects {
        vs.into_iter()
            .enumerate()
            .map(|(i, v)| (std::path::PathBuf::from(file), i + 1, v))
            .collect()
    };
    let org = json!({"id": "00000000-0000-0000-0000-00000000c0de", "displayName": "Contoso (sample)", "countryLetterCode": "US"});
    let build = |users: &[Value], skus: Vec<Value>| -> Result<Tenant, String> {
        let table = crate::load::table_from_values(users, crate::schema::ObjectType::User)
            .map_err(|e| format!("the sample tenant: {e}"))?;
        Ok(Tenant::assemble(Parts {
            dir: std::path::PathBuf::from("sample"),
            groups_path: std::path::PathBuf::from("sample/groups.json"),
            users: table,
            user_bytes: 0,
            user_records: UserRecords::Values(std::sync::Arc::new(users.to_vec())),
            devices: None,
            groups: objects(groups.clone(), "sample/groups.json"),
            skus: Some(Ok(objects(skus, "sample/subscribedSkus.json"))),
            organization: Some(Ok(objects(vec![org.clone()], "sample/organization.json"))),
            licensing_rules: None,
            issues: Vec::new(),
        }))
    };
    // First pass: what licensing gives these groups with unlimited seats.
    let first = build(&users, skus_of(&[]))?;
    let now = jiff::Timestamp::from_second(1_793_491_200).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let a = crate::recompute::run(
        &first,
        &crate::recompute::Overlay::default(),
        &crate::recompute::RecomputeOptions { now },
    )
    .assignments;
    write_license_fields(&mut users, &a, &first.catalog);
    let consumed: Vec<(String, u64)> = a
        .skus
        .iter()
        .map(|s| (s.sku_id.clone(), s.holders_after))
        .collect();
    build(&users, skus_of(&consumed))
}

/// The sample tenant's groups: a static "Kiosk users" group (its members listed) and dynamic
/// groups with the licences and `disabledPlans` of a typical Microsoft 365 estate.
fn sample_groups(users: &[Value], catalog: &crate::catalog::Catalog) -> Vec<Value> {
    use sample_skus::*;
    let kiosk: Vec<Value> = users
        .iter()
        .filter(|u| {
            let t = u.get("jobTitle").and_then(Value::as_str).unwrap_or("");
            let d = u.get("department").and_then(Value::as_str).unwrap_or("");
            ["Warehouse Associate", "Shift Lead", "Store Associate"].contains(&t)
                || (d == "Human Resources" && t == "Recruiter")
        })
        .map(|u| json!({"@odata.type": "#microsoft.graph.user", "id": u.get("id")}))
        .collect();
    let plan = |name: &str| {
        catalog
            .resolve_plan(name)
            .and_then(|p| catalog.plan_info(p))
            .map(|i| i.service_plan_id.clone())
            .unwrap_or_default()
    };
    let base_off: Vec<String> = [
        "YAMMER_ENTERPRISE",
        "SWAY",
        "FORMS_PLAN_E3",
        "STREAM_O365_E3",
        "KAIZALA_O365_P3",
        "PROJECT_O365_P2",
        "WHITEBOARD_PLAN2",
    ]
    .iter()
    .map(|n| plan(n))
    .collect();
    let ext_off: Vec<String> = [
        "EXCHANGE_S_ENTERPRISE",
        "SHAREPOINTENTERPRISE",
        "SHAREPOINTWAC",
        "OFFICESUBSCRIPTION",
        "MCOSTANDARD",
        "TEAMS1",
    ]
    .iter()
    .map(|n| plan(n))
    .collect();
    let group = |id: &str, name: &str, rule: Option<&str>, lic: Value| {
        let mut g = json!({
            "id": id, "displayName": name, "groupTypes": if rule.is_some() { json!(["DynamicMembership"]) } else { json!([]) },
            "securityEnabled": true, "mailEnabled": false, "assignedLicenses": lic,
        });
        if let Some(r) = rule {
            put(&mut g, "membershipRule", json!(r));
            put(&mut g, "membershipRuleProcessingState", json!("On"));
        }
        g
    };
    let mut kiosk_group = group(
        "0a1e5c2b-7d3f-4e6a-9b1c-2d3e4f5a6b70",
        "Kiosk users",
        None,
        json!([{"skuId": STANDARDPACK, "disabledPlans": []}]),
    );
    put(&mut kiosk_group, "members", json!(kiosk));
    let groups = vec![
        kiosk_group,
        group(
            "4b2f6d3c-8e4a-4f7b-8c2d-3e4f5a6b7c81",
            "HR Department",
            Some("user.department -eq \"Human Resources\""),
            json!([{"skuId": ENTERPRISEPACK, "disabledPlans": [plan("YAMMER_ENTERPRISE")]}, {"skuId": EMS, "disabledPlans": []}]),
        ),
        group(
            "5c3a7e4d-9f5b-4a8c-9d3e-4f5a6b7c8d92",
            "O365 E3 base services",
            Some("user.department -in [\"Sales\", \"Marketing\", \"Customer Support\"]"),
            json!([{"skuId": ENTERPRISEPACK, "disabledPlans": base_off}]),
        ),
        group(
            "6d4b8f5e-a06c-4b9d-8e4f-5a6b7c8d9ea3",
            "O365 E3 extended services",
            Some(
                "(user.department -in [\"Sales\", \"Marketing\"]) -and (user.jobTitle -contains \"Manager\")",
            ),
            json!([{"skuId": ENTERPRISEPACK, "disabledPlans": ext_off}]),
        ),
        group(
            "7e5c9a6f-b17d-4cae-9f5a-6b7c8d9eafb4",
            "EMS users",
            Some("user.extensionAttribute1 -contains \"EMS\""),
            json!([{"skuId": EMS, "disabledPlans": []}]),
        ),
        group(
            "8f6dab7a-c28e-4dbf-8a6b-7c8d9eafb0c5",
            "E5 base services",
            Some("user.extensionAttribute1 -contains \"E5_baseservices\""),
            json!([{"skuId": ENTERPRISEPREMIUM, "disabledPlans": []}]),
        ),
        group(
            "9a7ebc8b-d39f-4ec0-9b7c-8d9eafb0c1d6",
            "Power BI users",
            Some("user.extensionAttribute1 -contains \"PBI\""),
            json!([{"skuId": POWER_BI_PRO, "disabledPlans": []}]),
        ),
        group(
            "ab8fcd9c-e4a0-4fd1-8c8d-9eafb0c1d2e7",
            "Engineering",
            Some("(user.department -eq \"Engineering\") -and (user.accountEnabled -eq true)"),
            json!([{"skuId": ENTERPRISEPACK, "disabledPlans": []}]),
        ),
        group(
            "bc90de0d-f5b1-4ae2-9d9e-afb0c1d2e3f8",
            "All employees",
            Some("(user.userType -eq \"Member\") -and (user.accountEnabled -eq true)"),
            json!([]),
        ),
        group(
            "cda1ef1e-06c2-4bf3-8eaf-b0c1d2e3f409",
            "Guests",
            Some("user.userType -eq \"Guest\""),
            json!([]),
        ),
        group(
            "deb2f02f-17d3-4c04-9fb0-c1d2e3f4051a",
            "Exchange Online users",
            Some(
                "user.assignedPlans -any (assignedPlan.servicePlanId -eq \"efb87545-963c-4e0d-99df-69c6916d9eb0\" -and assignedPlan.capabilityStatus -eq \"Enabled\")",
            ),
            json!([]),
        ),
        group(
            "efc30140-28e4-4d15-8ac1-d2e3f405162b",
            "Sales managers",
            Some("(user.department -eq \"Sales\") -and (user.jobTitle -eq \"Sales Manager\")"),
            json!([]),
        ),
    ];
    groups
}

/// Sets each user's `assignedLicenses`, `licenseAssignmentStates` and `assignedPlans` to what
/// licensing `a` gives them, so the sample's snapshot agrees with its own recomputation.
fn write_license_fields(
    users: &mut [Value],
    a: &crate::licensing::Assignments,
    catalog: &crate::catalog::Catalog,
) {
    for (row, u) in users.iter_mut().enumerate() {
        let states = a.states(row);
        if states.is_empty() {
            continue;
        }
        let sku_id = |s| a.sku_id(s);
        let lstates: Vec<Value> = states
            .iter()
            .map(|s| json!({"assignedByGroup": a.source_id(s), "disabledPlans": a.disabled_plans(s.disabled), "error": s.error.map_or("None", |e| e.as_str()), "lastUpdatedDateTime": "2026-10-01T08:00:00Z", "skuId": sku_id(s.sku), "state": s.state.as_str()}))
            .collect();
        let assigned: Vec<Value> = a
            .held(states)
            .into_iter()
            .map(|(s, d)| json!({"disabledPlans": d, "skuId": sku_id(s)}))
            .collect();
        let plans: Vec<Value> = a
            .effective_plans(states, catalog)
            .into_iter()
            .filter_map(|p| catalog.plan_info(p))
            .map(|p| json!({"assignedDateTime": "2026-10-01T08:00:00Z", "capabilityStatus": "Enabled", "service": null, "servicePlanId": p.service_plan_id}))
            .collect();
        if let Some(o) = u.as_object_mut() {
            o.insert("assignedLicenses".into(), json!(assigned));
            o.insert("licenseAssignmentStates".into(), json!(lstates));
            o.insert("assignedPlans".into(), json!(plans));
        }
    }
}
