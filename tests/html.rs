//! `--format html` of `whatif`, `plan` and `recompute`: insta snapshots of the page (the
//! embedded JSON's timings left out), and the browser check: headless Chromium renders each
//! page, takes a screenshot (`target/dynrule-html/*.png`), and every number the page marks with
//! `data-check` must equal the JSON report of the same run. Without a Chromium (Debian's
//! `chromium`) the browser check is skipped with a message, unless `DYNRULE_BROWSER=required`
//! (what `.ci/run` sets once it has installed one).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const TENANT: &str = "corpus/whatif/contoso";
const NOW: &str = "2026-11-01T00:00:00Z";
const NARROW: &str = r#"user.department -eq "Sales" -and user.city -eq "Seattle""#;

/// A report in a format: stdout.
fn report(args: &[&str], format: &str) -> String {
    let mut all = args.to_vec();
    all.extend(["--format", format]);
    let o = common::dynrule(&all);
    assert!(
        matches!(o.status.code(), Some(0 | 3 | 4)),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

/// `v` without its `timings` (they vary run to run).
fn untimed(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("timings");
    }
    v
}

/// The JSON embedded in a page.
fn embedded(html: &str) -> Value {
    let start = html
        .find(r#"<script type="application/json" id="report-json">"#)
        .expect("embedded JSON");
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(body).expect("embedded JSON parses")
}

/// The page with the embedded JSON left out (snapshots hold the page, not the timings).
fn without_json(html: &str) -> String {
    let start = html
        .find(r#"<script type="application/json" id="report-json">"#)
        .unwrap();
    let end = start + html[start..].find("</script>").unwrap();
    format!("{}…{}", &html[..start], &html[end..])
}

struct Case {
    name: &'static str,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        Case {
            name: "whatif",
            args: s(&[
                "whatif",
                "--tenant",
                TENANT,
                "--now",
                NOW,
                "--group",
                "Sales E3",
                "--rule",
                NARROW,
                "--test-group",
                "Pilot testers",
            ]),
        },
        Case {
            name: "plan",
            args: s(&[
                "plan",
                "--tenant",
                TENANT,
                "--now",
                NOW,
                "corpus/plans/create-with-licence.tfplan.json",
            ]),
        },
        Case {
            name: "recompute",
            args: s(&["recompute", "--tenant", TENANT, "--now", NOW]),
        },
    ]
}

#[test]
fn pages_embed_the_json_report_and_snapshot() {
    for c in cases() {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let html = report(&args, "html");
        let json: Value = serde_json::from_str(&report(&args, "json")).expect("json");
        assert_eq!(untimed(embedded(&html)), untimed(json), "{}", c.name);
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{}: no network",
            c.name
        );
        insta::assert_snapshot!(format!("{}_html", c.name), without_json(&html));
    }
}

/// A Chromium to render with: `DYNRULE_CHROMIUM`, else `chromium`, `chromium-browser` or
/// `google-chrome` on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DYNRULE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `page` with `extra` arguments; stdout.
fn headless(chrome: &Path, profile: &Path, page: &Path, extra: &[&str]) -> String {
    let o = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every `data-check="pointer"` cell of `dom` and its text.
fn checked_cells(dom: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find("data-check=\"") {
        rest = &rest[i + 12..];
        let end = rest.find('"').unwrap();
        let pointer = rest[..end].to_string();
        let open = rest.find('>').unwrap();
        let close = rest.find('<').unwrap();
        out.push((pointer, rest[open + 1..close].trim().to_string()));
        rest = &rest[close..];
    }
    out
}

#[test]
fn a_browser_shows_the_numbers_of_the_json() {
    let Some(chrome) = chromium() else {
        assert!(
            std::env::var("DYNRULE_BROWSER").as_deref() != Ok("required"),
            "DYNRULE_BROWSER=required and no Chromium found"
        );
        eprintln!("skipped: no Chromium (install Debian's `chromium` to run the browser check)");
        return;
    };
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dynrule-html");
    std::fs::create_dir_all(&out_dir).expect("output folder");
    for c in cases() {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let html = report(&args, "html");
        let json = untimed(serde_json::from_str(&report(&args, "json")).expect("json"));
        let page = out_dir.join(format!("{}.html", c.name));
        std::fs::write(&page, &html).expect("write page");
        let profile = common::temp_dir("html", &format!("chromium-{}", c.name));
        let dom = headless(&chrome, &profile, &page, &["--dump-dom"]);
        // The script ran: numeric cells are right-aligned by it.
        assert!(
            dom.contains(r#"class="num""#),
            "{}: the page's script did not run",
            c.name
        );
        let cells = checked_cells(&dom);
        assert!(cells.len() >= 5, "{}: {cells:?}", c.name);
        for (pointer, text) in &cells {
            let (path, len) = match pointer.strip_suffix("#len") {
                Some(p) => (p, true),
                None => (pointer.as_str(), false),
            };
            let v = json
                .pointer(path)
                .unwrap_or_else(|| panic!("{}: {pointer} not in the JSON", c.name));
            let want = match (len, v) {
                (true, Value::Array(a)) => a.len().to_string(),
                (false, Value::Null) => "?".to_string(),
                (false, v) => v.to_string(),
                (true, other) => panic!("{}: {pointer} is not an array: {other}", c.name),
            };
            assert_eq!(text, &want, "{}: {pointer}", c.name);
        }
        let png = out_dir.join(format!("{}.png", c.name));
        headless(
            &chrome,
            &profile,
            &page,
            &[
                &format!("--screenshot={}", png.display()),
                "--window-size=1280,1800",
            ],
        );
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "{}: screenshot {} is {size} bytes",
            c.name,
            png.display()
        );
        eprintln!(
            "{}: {} checked numbers; screenshot {}",
            c.name,
            cells.len(),
            png.display()
        );
    }
}
