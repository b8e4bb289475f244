//! Value formats of Graph, of the exports admins make and of the rule language, in one leaf
//! module: GUIDs, ISO 8601 dates and durations, PowerShell's `/Date(ms)/` and the text it writes
//! in place of values, and JSON object keys matched as Graph matches them (case-insensitively).
//! Everything here is a pure function of its input; nothing imports back into the crate.

use serde_json::{Map, Value};

/// True for a GUID in the 8-4-4-4-12 hex form (any letter case), as Graph writes object ids,
/// `skuId` and `servicePlanId`.
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Parses a date literal: an RFC 3339 instant, or a date-time or date without offset (read as
/// UTC; the flag is `false` then). `None` when it is none of these.
pub fn parse_date(s: &str) -> Option<(jiff::Timestamp, bool)> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some((ts, true));
    }
    let utc = jiff::tz::TimeZone::UTC;
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt.to_zoned(utc).ok().map(|z| (z.timestamp(), false));
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d.to_zoned(utc).ok().map(|z| (z.timestamp(), false));
    }
    None
}

/// Parses an ISO 8601 duration (`P30D`, `p1d`, `PT12H`), case-insensitively.
pub fn parse_duration(s: &str) -> Option<jiff::Span> {
    s.to_ascii_uppercase().parse::<jiff::Span>().ok()
}

/// A key of a JSON object, matched case-insensitively as Graph matches property names (exact
/// match first).
pub fn get_ci<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Text PowerShell writes in place of a value it did not serialise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerShellText {
    /// `ConvertTo-Json` past its depth (default 2): `"@{id=…}"`, `"class AssignedPlan {…"`,
    /// `"Microsoft.Graph.PowerShell.Models.MicrosoftGraphAssignedPlan"`,
    /// `"System.Collections.Hashtable"`.
    Depth,
    /// `Export-Csv` of a collection: `System.String[]`, `System.Object[]`.
    TypeName,
}

/// Whether `s` is PowerShell's text for an object or collection rather than a value, and which.
pub fn powershell_text(s: &str) -> Option<PowerShellText> {
    let t = s.trim();
    if t.starts_with("System.") && t.ends_with("[]") && !t.contains(' ') {
        return Some(PowerShellText::TypeName);
    }
    let class = t
        .strip_prefix("class ")
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()) && r.contains(" {"));
    if (t.starts_with("@{") && t.ends_with('}'))
        || class
        || t.starts_with("Microsoft.Graph.PowerShell.Models.")
        || t.starts_with("System.Collections.")
    {
        return Some(PowerShellText::Depth);
    }
    None
}

/// A date-time as exports write it: ISO 8601, or Windows PowerShell 5.1's
/// `"\/Date(1700000000000)\/"` (milliseconds since 1970, UTC; decoded from JSON it reads
/// `/Date(1700000000000)/`). Both engines read dates through it (D68).
pub fn export_date(s: &str) -> Option<jiff::Timestamp> {
    if let Some(ms) = s
        .trim()
        .strip_prefix("/Date(")
        .and_then(|r| r.strip_suffix(")/"))
    {
        // `/Date(ms+hhmm)/` (a DateTimeOffset) carries an offset for display only: the
        // milliseconds are UTC either way.
        let digits = ms
            .char_indices()
            .find(|&(i, c)| i > 0 && (c == '+' || c == '-'))
            .map_or(ms, |(i, _)| ms.get(..i).unwrap_or(ms));
        return digits
            .parse::<i64>()
            .ok()
            .and_then(|n| jiff::Timestamp::from_millisecond(n).ok());
    }
    parse_date(s).map(|(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert!(is_guid("0a1B2c3d-0000-4000-8000-00000000000f"));
        assert!(!is_guid("0a1b2c3d-0000-4000-8000-00000000000"));
        assert!(!is_guid("0a1b2c3d00000-4000-8000-00000000000f"));
        assert!(!is_guid("0a1b2c3d-0000-4000-8000-00000000000g"));
        assert!(is_guid("62e19b97-8b3d-4d4a-A106-4ce66896a863"));
        assert!(!is_guid("1111111-1111-1111-1111-111111111111"));
    }

    #[test]
    fn dates_and_durations() {
        assert_eq!(parse_date("2026-01-02").map(|(_, z)| z), Some(false));
        assert_eq!(
            parse_date("2026-01-02T03:04:05Z").map(|(_, z)| z),
            Some(true)
        );
        assert!(parse_date("yesterday").is_none());
        assert!(parse_duration("p1d").is_some());
        assert!(parse_duration("1d").is_none());
        assert!(parse_duration("P30D").is_some());
        assert!(parse_date("2020-06-10T18:13:20Z").is_some_and(|(_, o)| o));
        assert!(parse_date("2018-01-01T06:00:00").is_some_and(|(_, o)| !o));
    }
}
