//! The property schema: every user and device property the rule language documents, its type,
//! canonical casing, and the Microsoft Graph JSON key the loaders read it from.
//!
//! Source: Microsoft Learn, "Dynamic membership rules for groups in Microsoft Entra ID"
//! (2016–2026 versions; `research/rule-language.md` §3). Names resolve case-insensitively (our
//! decision D4 in `grammar/DECISIONS.md`: the docs say "case sensitive" but their own examples use
//! `user.employeehiredate`, `user.objectid`, `device.devicePhysicalIDs`).

/// Whether a rule is about users or devices. A rule names exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    /// `user.…` rules.
    User,
    /// `device.…` rules.
    Device,
}

impl ObjectType {
    /// `user` / `device`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::User => "user",
            ObjectType::Device => "device",
        }
    }

    /// Parses an object prefix case-insensitively.
    pub fn from_prefix(s: &str) -> Option<ObjectType> {
        if s.eq_ignore_ascii_case("user") {
            Some(ObjectType::User)
        } else if s.eq_ignore_ascii_case("device") {
            Some(ObjectType::Device)
        } else {
            None
        }
    }
}

/// Property types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PropType {
    /// `true`/`false`; operators `-eq`, `-ne`.
    Bool,
    /// Single string; the string operators.
    String,
    /// Several strings (`proxyAddresses`, `otherMails`, `devicePhysicalIds`, `systemLabels`):
    /// `-any`/`-all` with `_`.
    StringCollection,
    /// A date-time (`employeeHireDate`): `-eq`, `-ne`, `-ge`, `-le`.
    DateTime,
    /// `assignedPlans`: `-any`/`-all` with `assignedPlan.servicePlanId`, `.service`,
    /// `.capabilityStatus`.
    AssignedPlans,
    /// `memberOf` (preview): only `-any (group.objectId -in [...])`.
    MemberOf,
}

/// Where a property's value comes from in a Graph object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphKey {
    /// A top-level key: `department`.
    Field(&'static str),
    /// A key inside an object: `onPremisesExtensionAttributes.extensionAttribute1`.
    Nested(&'static str, &'static str),
    /// The first element of a string array: `businessPhones[0]`.
    First(&'static str),
    /// Not stored on the object: `memberOf` comes from group memberships.
    Derived,
}

/// Documentation status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// In the current property tables.
    Documented,
    /// Documented as preview.
    Preview,
    /// Listed by older docs only; the text says what happened to it.
    Deprecated(&'static str),
}

/// One property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property {
    /// Canonical name, as Microsoft's table spells it.
    pub name: &'static str,
    /// User or device.
    pub object: ObjectType,
    /// Type.
    pub ty: PropType,
    /// Graph JSON key.
    pub graph: GraphKey,
    /// Documentation status.
    pub status: Status,
    /// The documented set of values, when there is one (compared case-insensitively), for lints.
    pub values: &'static [&'static str],
}

const fn p(name: &'static str, object: ObjectType, ty: PropType, graph: GraphKey) -> Property {
    Property {
        name,
        object,
        ty,
        graph,
        status: Status::Documented,
        values: &[],
    }
}

use GraphKey::{Field as F, First, Nested as N};
use ObjectType::{Device as D, User as U};
use PropType::{Bool, DateTime, String as S, StringCollection as SC};

/// Every documented property (plus the deprecated ones, flagged).
pub static PROPERTIES: &[Property] = &[
    // User, boolean
    p("accountEnabled", U, Bool, F("accountEnabled")),
    p("dirSyncEnabled", U, Bool, F("onPremisesSyncEnabled")),
    // User, dateTime
    Property {
        status: Status::Preview,
        ..p("employeeHireDate", U, DateTime, F("employeeHireDate"))
    },
    // User, string
    p("city", U, S, F("city")),
    p("country", U, S, F("country")),
    p("companyName", U, S, F("companyName")),
    p("department", U, S, F("department")),
    p("displayName", U, S, F("displayName")),
    p("employeeId", U, S, F("employeeId")),
    p("facsimileTelephoneNumber", U, S, F("faxNumber")),
    p("givenName", U, S, F("givenName")),
    p("jobTitle", U, S, F("jobTitle")),
    p("mail", U, S, F("mail")),
    p("mailNickName", U, S, F("mailNickname")),
    p("mobile", U, S, F("mobilePhone")),
    p("objectId", U, S, F("id")),
    p(
        "onPremisesDistinguishedName",
        U,
        S,
        F("onPremisesDistinguishedName"),
    ),
    p(
        "onPremisesSecurityIdentifier",
        U,
        S,
        F("onPremisesSecurityIdentifier"),
    ),
    Property {
        values: &[
            "None",
            "DisableStrongPassword",
            "DisablePasswordExpiration",
            "DisablePasswordExpiration, DisableStrongPassword",
        ],
        ..p("passwordPolicies", U, S, F("passwordPolicies"))
    },
    p("physicalDeliveryOfficeName", U, S, F("officeLocation")),
    p("postalCode", U, S, F("postalCode")),
    p("preferredLanguage", U, S, F("preferredLanguage")),
    p("sipProxyAddress", U, S, F("sipProxyAddress")),
    p("state", U, S, F("state")),
    p("streetAddress", U, S, F("streetAddress")),
    p("surname", U, S, F("surname")),
    p("telephoneNumber", U, S, First("businessPhones")),
    p("usageLocation", U, S, F("usageLocation")),
    p("userPrincipalName", U, S, F("userPrincipalName")),
    Property {
        values: &["Member", "Guest"],
        ..p("userType", U, S, F("userType"))
    },
    p(
        "extensionAttribute1",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute1"),
    ),
    p(
        "extensionAttribute2",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute2"),
    ),
    p(
        "extensionAttribute3",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute3"),
    ),
    p(
        "extensionAttribute4",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute4"),
    ),
    p(
        "extensionAttribute5",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute5"),
    ),
    p(
        "extensionAttribute6",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute6"),
    ),
    p(
        "extensionAttribute7",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute7"),
    ),
    p(
        "extensionAttribute8",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute8"),
    ),
    p(
        "extensionAttribute9",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute9"),
    ),
    p(
        "extensionAttribute10",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute10"),
    ),
    p(
        "extensionAttribute11",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute11"),
    ),
    p(
        "extensionAttribute12",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute12"),
    ),
    p(
        "extensionAttribute13",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute13"),
    ),
    p(
        "extensionAttribute14",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute14"),
    ),
    p(
        "extensionAttribute15",
        U,
        S,
        N("onPremisesExtensionAttributes", "extensionAttribute15"),
    ),
    // User, collections
    p("otherMails", U, SC, F("otherMails")),
    p("proxyAddresses", U, SC, F("proxyAddresses")),
    p(
        "assignedPlans",
        U,
        PropType::AssignedPlans,
        F("assignedPlans"),
    ),
    Property {
        status: Status::Preview,
        ..p("memberOf", U, PropType::MemberOf, GraphKey::Derived)
    },
    // Device
    p("accountEnabled", D, Bool, F("accountEnabled")),
    p("deviceCategory", D, S, F("deviceCategory")),
    p("deviceId", D, S, F("deviceId")),
    // Graph's device resource (v1.0 and beta) calls it `mdmAppId`; Microsoft's Intune example
    // rule `device.deviceManagementAppId -eq "0000000a-…"` matches on that key.
    p("deviceManagementAppId", D, S, F("mdmAppId")),
    p("deviceManufacturer", D, S, F("manufacturer")),
    p("deviceModel", D, S, F("model")),
    p("displayName", D, S, F("displayName")),
    p("deviceOSType", D, S, F("operatingSystem")),
    p("deviceOSVersion", D, S, F("operatingSystemVersion")),
    Property {
        values: &["Personal", "Company", "Unknown"],
        ..p("deviceOwnership", D, S, F("deviceOwnership"))
    },
    p("devicePhysicalIds", D, SC, F("physicalIds")),
    Property {
        values: &["AzureAD", "ServerAD", "Workplace"],
        ..p("deviceTrustType", D, S, F("trustType"))
    },
    p("enrollmentProfileName", D, S, F("enrollmentProfileName")),
    p(
        "extensionAttribute1",
        D,
        S,
        N("extensionAttributes", "extensionAttribute1"),
    ),
    p(
        "extensionAttribute2",
        D,
        S,
        N("extensionAttributes", "extensionAttribute2"),
    ),
    p(
        "extensionAttribute3",
        D,
        S,
        N("extensionAttributes", "extensionAttribute3"),
    ),
    p(
        "extensionAttribute4",
        D,
        S,
        N("extensionAttributes", "extensionAttribute4"),
    ),
    p(
        "extensionAttribute5",
        D,
        S,
        N("extensionAttributes", "extensionAttribute5"),
    ),
    p(
        "extensionAttribute6",
        D,
        S,
        N("extensionAttributes", "extensionAttribute6"),
    ),
    p(
        "extensionAttribute7",
        D,
        S,
        N("extensionAttributes", "extensionAttribute7"),
    ),
    p(
        "extensionAttribute8",
        D,
        S,
        N("extensionAttributes", "extensionAttribute8"),
    ),
    p(
        "extensionAttribute9",
        D,
        S,
        N("extensionAttributes", "extensionAttribute9"),
    ),
    p(
        "extensionAttribute10",
        D,
        S,
        N("extensionAttributes", "extensionAttribute10"),
    ),
    p(
        "extensionAttribute11",
        D,
        S,
        N("extensionAttributes", "extensionAttribute11"),
    ),
    p(
        "extensionAttribute12",
        D,
        S,
        N("extensionAttributes", "extensionAttribute12"),
    ),
    p(
        "extensionAttribute13",
        D,
        S,
        N("extensionAttributes", "extensionAttribute13"),
    ),
    p(
        "extensionAttribute14",
        D,
        S,
        N("extensionAttributes", "extensionAttribute14"),
    ),
    p(
        "extensionAttribute15",
        D,
        S,
        N("extensionAttributes", "extensionAttribute15"),
    ),
    p("isRooted", D, Bool, F("isRooted")),
    p("managementType", D, S, F("managementType")),
    Property {
        status: Status::Preview,
        ..p("memberOf", D, PropType::MemberOf, GraphKey::Derived)
    },
    p("objectId", D, S, F("id")),
    p("profileType", D, S, F("profileType")),
    p("systemLabels", D, SC, F("systemLabels")),
    Property {
        status: Status::Deprecated("listed in the 2017 documentation only, later removed"),
        ..p("domainName", D, S, F("domainName"))
    },
    Property {
        status: Status::Deprecated(
            "no longer listed; Microsoft says it should not be used and no devices are added by it",
        ),
        ..p("organizationalUnit", D, S, F("organizationalUnit"))
    },
];

/// The fields of an `assignedPlan` element (Graph `assignedPlan` resource; the rule docs use
/// these three).
pub const ASSIGNED_PLAN_FIELDS: &[&str] = &["servicePlanId", "service", "capabilityStatus"];

/// Looks a documented property up, case-insensitively.
pub fn lookup(object: ObjectType, name: &str) -> Option<&'static Property> {
    PROPERTIES
        .iter()
        .find(|p| p.object == object && p.name.eq_ignore_ascii_case(name))
}

/// True for a directory extension property name: `extension_<32 hex digits>_<name>`, the
/// form Microsoft Graph gives schema extensions registered by an application (the app id with
/// its dashes removed).
pub fn is_directory_extension(name: &str) -> bool {
    let Some(rest) = name
        .get(..10)
        .filter(|p| p.eq_ignore_ascii_case("extension_"))
        .and(name.get(10..))
    else {
        return false;
    };
    let (app, attr) = match rest.split_once('_') {
        Some(x) => x,
        None => return false,
    };
    app.len() == 32
        && app.bytes().all(|b| b.is_ascii_hexdigit())
        && !attr.is_empty()
        && !attr.starts_with('_')
}

/// Names people write for a property that has another name in rules: Graph's own key
/// (`mobilePhone`, `operatingSystem`), Intune filter names (`model`, `deviceName`) and old typos
/// (`OSVersion`). Used for "did you mean".
pub static ALIASES: &[(ObjectType, &str, &str)] = &[
    (U, "mobilePhone", "mobile"),
    (U, "officeLocation", "physicalDeliveryOfficeName"),
    (U, "faxNumber", "facsimileTelephoneNumber"),
    (U, "businessPhones", "telephoneNumber"),
    (U, "onPremisesSyncEnabled", "dirSyncEnabled"),
    (U, "id", "objectId"),
    (U, "lastName", "surname"),
    (U, "firstName", "givenName"),
    (U, "title", "jobTitle"),
    (U, "upn", "userPrincipalName"),
    (U, "transitiveMemberOf", "memberOf"),
    (D, "operatingSystem", "deviceOSType"),
    (D, "operatingSystemVersion", "deviceOSVersion"),
    (D, "OSVersion", "deviceOSVersion"),
    (D, "osVersion", "deviceOSVersion"),
    (D, "manufacturer", "deviceManufacturer"),
    (D, "model", "deviceModel"),
    (D, "trustType", "deviceTrustType"),
    (D, "physicalIds", "devicePhysicalIds"),
    (D, "deviceName", "displayName"),
    (D, "id", "objectId"),
    (D, "transitiveMemberOf", "memberOf"),
];

/// Properties seen in community rules that Microsoft's list does not have, with why.
pub static UNSUPPORTED_SEEN: &[(ObjectType, &str, &str)] = &[
    (
        U,
        "employeeType",
        "not in Microsoft's list of supported user properties (seen in community rules)",
    ),
    (
        U,
        "onPremisesSamAccountName",
        "not in Microsoft's list of supported user properties (seen in community rules)",
    ),
    (
        U,
        "onPremisesUserPrincipalName",
        "not in Microsoft's list of supported user properties",
    ),
    (
        U,
        "onPremisesDomainName",
        "not in Microsoft's list of supported user properties",
    ),
    (
        U,
        "createdDateTime",
        "not a rule property; only `employeeHireDate` supports date comparisons",
    ),
    (
        U,
        "manager",
        "not a rule property; use `Direct Reports for \"<manager id>\"`",
    ),
    (
        D,
        "isCompliant",
        "not a dynamic-group property: compliance exists only in Conditional Access device filters",
    ),
    (D, "isManaged", "not a dynamic-group device property"),
    (
        D,
        "primaryUser",
        "not a device property: device rules cannot read user attributes, and there is no primary-user property",
    ),
];

/// The best "did you mean" for an unknown name, if any is close or a known alias.
pub fn suggest(object: ObjectType, name: &str) -> Option<&'static str> {
    if let Some((_, _, to)) = ALIASES
        .iter()
        .find(|(o, from, _)| *o == object && from.eq_ignore_ascii_case(name))
    {
        return Some(to);
    }
    let lower = name.to_ascii_lowercase();
    PROPERTIES
        .iter()
        .filter(|p| p.object == object && !matches!(p.status, Status::Deprecated(_)))
        .map(|p| {
            (
                strsim::jaro_winkler(&p.name.to_ascii_lowercase(), &lower),
                p.name,
            )
        })
        .filter(|(score, _)| *score >= 0.88)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(
            lookup(U, "employeehiredate").map(|p| p.name),
            Some("employeeHireDate")
        );
        assert_eq!(
            lookup(D, "devicePhysicalIDs").map(|p| p.name),
            Some("devicePhysicalIds")
        );
        assert!(lookup(U, "deviceOSType").is_none());
    }

    #[test]
    fn directory_extensions() {
        assert!(is_directory_extension(
            "extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber"
        ));
        assert!(!is_directory_extension(
            "extension_c272a57b722d4eb29bfe327874ae79cb__OfficeNumber"
        ));
        assert!(!is_directory_extension("extension_abc123_costCenter"));
        assert!(!is_directory_extension("extension_"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest(D, "operatingSystem"), Some("deviceOSType"));
        assert_eq!(suggest(U, "departmnt"), Some("department"));
        assert_eq!(suggest(U, "invalidProperty"), None);
    }

    #[test]
    fn names_are_unique_per_object() {
        for (i, a) in PROPERTIES.iter().enumerate() {
            for b in PROPERTIES.iter().skip(i + 1) {
                assert!(
                    !(a.object == b.object && a.name.eq_ignore_ascii_case(b.name)),
                    "{}",
                    a.name
                );
            }
        }
    }
}
