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
//! (`../shared/research/data/`). Each SKU lists a representative subset of its plans (a real
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

struct Gen {
    rng: ChaCha8Rng,
    dept: Zipf<f64>,
    city: Zipf<f64>,
    upns: HashMap<String, u32>,
    managers: Vec<String>,
}

impl Gen {
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
        // Licences: tags in extensionAttribute1 drive group-based licensing in many tenants.
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
            licenses.push(json!({"disabledPlans": disabled, "skuId": sku_id}));
        }
        let alias = local.to_lowercase();
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

/// Writes `users` Graph user objects as JSON Lines to `out`, deterministically from `seed`.
///
/// Errors: the writer's I/O errors.
pub fn write_tenant(users: usize, seed: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed),
        dept: Zipf::new(DEPARTMENTS.len() as f64, 1.1).map_err(std::io::Error::other)?,
        city: Zipf::new(CITIES.len() as f64, 0.9).map_err(std::io::Error::other)?,
        upns: HashMap::new(),
        managers: Vec::new(),
    };
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
