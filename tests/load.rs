//! Loaders: every export shape gives the same table, bad records are errors with file, line and
//! column (or skipped and listed with `skip_invalid`), and nothing is dropped silently.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use dynrule::load::{CacheMode, CacheUse, LoadOptions, cache_path, load, table_from_values};
use dynrule::schema::ObjectType;
use dynrule::table::{ColumnKey, Projection, Table};
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(name: &str) -> common::TempDir {
    common::temp_dir("load", name)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn skipping() -> LoadOptions {
    LoadOptions {
        skip_invalid: true,
        ..LoadOptions::default()
    }
}

fn strict() -> LoadOptions {
    LoadOptions::default()
}

fn col(t: &Table, key: &'static str) -> Vec<Option<String>> {
    let c = t.str_column(ColumnKey::Prop(key));
    (0..t.len())
        .map(|r| c.and_then(|c| c.get(r)).map(str::to_string))
        .collect()
}

const A: &str = r#"{"id":"a","userPrincipalName":"a@contoso.com","department":"Sales","mobilePhone":"+1","onPremisesExtensionAttributes":{"extensionAttribute1":"EMS;"}}"#;
const B: &str = r#"{"Id":"b","UserPrincipalName":"b@contoso.com","Department":null,"extensionAttribute1":"E3"}"#;

fn check_ab(t: &Table) {
    assert_eq!(t.len(), 2);
    assert_eq!(col(t, "objectId"), vec![Some("a".into()), Some("b".into())]);
    assert_eq!(col(t, "department"), vec![Some("Sales".into()), None]);
    assert_eq!(col(t, "mobile"), vec![Some("+1".into()), None]);
    assert_eq!(
        col(t, "extensionAttribute1"),
        vec![Some("EMS;".into()), Some("E3".into())]
    );
}

#[test]
fn every_json_shape_loads_the_same() {
    let d = dir("shapes");
    let shapes = [
        ("users.jsonl", format!("{A}\n\n{B}\n")),
        ("users.ndjson", format!("{A}\r\n{B}")),
        ("array.json", format!("[\n{A},\n{B}\n]")),
        (
            "page.json",
            format!(r#"{{"@odata.context":"x","@odata.count":2,"value":[{A},{B}]}}"#),
        ),
        ("lines.json", format!("{A}\n{B}\n")),
        ("bom.jsonl", format!("\u{feff}{A}\n{B}\n")),
    ];
    for (name, text) in shapes {
        let p = write(&d, name, &text);
        let l = load(&p, ObjectType::User, &strict()).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_ab(&l.table);
    }
}

/// A saved Graph page whose `@odata.nextLink` has no following page in the folder is a partial
/// export (Graph Explorer's first 100 users), and so is a set of pages holding fewer records
/// than their `@odata.count`: both are errors naming the cause, never a smaller tenant.
#[test]
fn partial_graph_exports_are_errors() {
    let d = dir("partial");
    let one = write(
        &d,
        "first-page.json",
        &format!(
            r#"{{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users","value":[{A}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users?$skiptoken=X"}}"#
        ),
    );
    let e = load(&one, ObjectType::User, &strict())
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref()
            .is_some_and(|e| e.contains("partial export") && e.contains("@odata.nextLink")),
        "{e:?}"
    );
    // In a folder, a nextLink is fine when a page follows it, not on the last page.
    let folder = d.join("pages");
    std::fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("{e}"));
    write(
        &folder,
        "page-001.json",
        &format!(r#"{{"value":[{A}],"@odata.nextLink":"n2"}}"#),
    );
    write(&folder, "page-002.json", &format!(r#"{{"value":[{B}]}}"#));
    assert!(load(&folder, ObjectType::User, &strict()).is_ok());
    write(
        &folder,
        "page-002.json",
        &format!(r#"{{"value":[{B}],"@odata.nextLink":"n3"}}"#),
    );
    assert!(load(&folder, ObjectType::User, &strict()).is_err());
    let counted = write(
        &d,
        "counted.json",
        &format!(r#"{{"@odata.count":3,"value":[{A},{B}]}}"#),
    );
    let e = load(&counted, ObjectType::User, &strict())
        .err()
        .map(|e| e.to_string());
    assert!(
        e.as_deref().is_some_and(|e| e.contains("@odata.count 3")),
        "{e:?}"
    );
}

#[test]
fn a_folder_of_graph_pages_loads_in_name_order() {
    let d = dir("pages");
    write(&d, "page-002.json", &format!(r#"{{"value":[{B}]}}"#));
    write(
        &d,
        "page-001.json",
        &format!(
            r#"{{"value":[{A}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users?$skiptoken=x"}}"#
        ),
    );
    write(&d, "notes.txt", "not an export");
    let l = load(&d, ObjectType::User, &strict()).expect("folder");
    check_ab(&l.table);
}

#[test]
fn csv_portal_download_and_property_headers() {
    let d = dir("csv");
    // The Entra admin center's "Download users" columns (a subset), in its order.
    let portal = "userPrincipalName,displayName,surname,mail,givenName,objectId,userType,jobTitle,department,accountEnabled,usageLocation,streetAddress,state,country,physicalDeliveryOfficeName,city,postalCode,telephoneNumber,mobile,alternateEmailAddress,ageGroup\n\
a@contoso.com,Adele Vance,Vance,a@contoso.com,Adele,a,Member,Engineer,Sales,True,US,1 Main St,WA,United States,Bldg 1,Seattle,98052,+1 425,+1 206,x@y.com;z@y.com,Adult\n\
b@contoso.com,Bob,,,,b,Guest,,,False,,,,,,,,,,,\n";
    let p = write(&d, "exportUsers_2026-11-21.csv", portal);
    let l = load(&p, ObjectType::User, &strict()).expect("portal csv");
    let t = &l.table;
    assert_eq!(col(t, "objectId"), vec![Some("a".into()), Some("b".into())]);
    assert_eq!(
        col(t, "physicalDeliveryOfficeName"),
        vec![Some("Bldg 1".into()), None]
    );
    assert_eq!(col(t, "telephoneNumber"), vec![Some("+1 425".into()), None]);
    assert_eq!(col(t, "department"), vec![Some("Sales".into()), None]);
    // Columns no rule can read are named, not silently dropped.
    assert!(
        l.warnings.iter().any(|w| w.contains("ageGroup")),
        "{:?}",
        l.warnings
    );
    let members = eval(t, r#"user.accountEnabled -eq true"#);
    assert_eq!(members, vec!["a"]);
    let members = eval(t, r#"user.otherMails -any (_ -eq "z@y.com")"#);
    assert_eq!(members, vec!["a"]);
    // Spreadsheet-style headers.
    let p = write(
        &d,
        "sheet.csv",
        "Object Id,First name,Last name,Department,extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter\nc,Cy,Lee,IT,CC-1\n",
    );
    let l = load(&p, ObjectType::User, &strict()).expect("sheet csv");
    assert_eq!(col(&l.table, "givenName"), vec![Some("Cy".into())]);
    assert_eq!(
        eval(
            &l.table,
            r#"user.extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter -eq "cc-1""#
        ),
        vec!["c"]
    );
}

fn eval(t: &Table, rule: &str) -> Vec<String> {
    let p = dynrule::program::Program::from_text(
        rule,
        &dynrule::program::CompileOptions {
            now: jiff::Timestamp::UNIX_EPOCH,
        },
    )
    .expect(rule);
    let m = dynrule::vm::evaluate(&[p], t);
    m.first()
        .map(|m| {
            m.ones_iter()
                .filter_map(|r| t.id(r).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bad_records_name_file_line_and_column() {
    let d = dir("errors");
    let text = format!(
        "{A}\n{{\"id\":\"x\",\"accountEnabled\":\"yes\"}}\n{{\"id\":\"y\",\n{B}\n[1]\n{{\"department\":\"no id\"}}\n"
    );
    let p = write(&d, "users.jsonl", &text);
    let e = load(&p, ObjectType::User, &strict()).expect_err("strict load stops");
    assert_eq!((e.line, e.column > 0), (2, true), "{e}");
    assert!(e.message.contains("accountEnabled"), "{e}");
    assert!(
        e.to_string().starts_with(&format!("{}:2:", p.display())),
        "{e}"
    );

    let l = load(&p, ObjectType::User, &skipping()).expect("skipping load");
    check_ab(&l.table);
    let lines: Vec<usize> = l.skipped.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 5, 6], "{:?}", l.skipped);
    assert!(
        l.skipped.iter().any(|e| e.message.contains("no `id`")),
        "{:?}",
        l.skipped
    );
}

#[test]
fn bad_json_array_and_csv_rows_are_located() {
    let d = dir("errors2");
    let p = write(
        &d,
        "array.json",
        &format!("[\n{A},\n{{\"id\":\"z\",\"employeeHireDate\":\"soon\"}},\n{B}\n]"),
    );
    let e = load(&p, ObjectType::User, &strict()).expect_err("bad date");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("employeeHireDate"), "{e}");
    let l = load(&p, ObjectType::User, &skipping()).expect("skip");
    check_ab(&l.table);

    let p = write(&d, "broken.json", "[{\"id\": \"a\"},\n {\"id\": }]");
    let e = load(&p, ObjectType::User, &strict()).expect_err("syntax");
    assert_eq!(e.line, 2, "{e}");

    let p = write(&d, "rows.csv", "id,department\na,Sales\nb,IT,extra\nc,HR\n");
    let e = load(&p, ObjectType::User, &strict()).expect_err("field count");
    assert_eq!(e.line, 3, "{e}");
    let l = load(&p, ObjectType::User, &skipping()).expect("skip");
    assert_eq!(l.table.len(), 2);
    assert_eq!(l.skipped.len(), 1);

    let p = write(&d, "utf16.json", "\u{feff}");
    std::fs::write(&p, [0xFF, 0xFE, b'[', 0, b']', 0]).expect("write");
    let e = load(&p, ObjectType::User, &strict()).expect_err("utf-16");
    assert!(e.message.contains("UTF-16"), "{e}");
}

#[test]
fn duplicate_ids_are_kept_and_reported() {
    let d = dir("dups");
    let p = write(&d, "u.jsonl", &format!("{A}\n{A}\n{B}\n"));
    let l = load(&p, ObjectType::User, &strict()).expect("load");
    assert_eq!(l.table.len(), 3);
    assert!(
        l.warnings.iter().any(|w| w.contains("repeat an id")),
        "{:?}",
        l.warnings
    );
}

#[test]
fn devices_map_graph_keys() {
    let d = dir("devices");
    let p = write(
        &d,
        "devices.jsonl",
        r#"{"id":"d1","deviceId":"x","displayName":"PC-1","operatingSystem":"Windows","trustType":"AzureAd","extensionAttributes":{"extensionAttribute3":"kiosk"},"physicalIds":["[ZTDID]:abc"],"accountEnabled":true}
"#,
    );
    let l = load(&p, ObjectType::Device, &strict()).expect("devices");
    assert_eq!(
        eval(&l.table, r#"device.deviceOSType -eq "windows""#),
        vec!["d1"]
    );
    assert_eq!(
        eval(&l.table, r#"device.extensionAttribute3 -eq "KIOSK""#),
        vec!["d1"]
    );
    assert_eq!(
        eval(
            &l.table,
            r#"device.devicePhysicalIds -any (_ -startsWith "[ZTDID]")"#
        ),
        vec!["d1"]
    );
}

#[test]
fn duplicate_ids_are_found_in_high_cardinality_columns() {
    // Past the cardinality sample, ids are stored without deduplication; repeats must still be
    // reported.
    let d = dir("dups-many");
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!("{{\"id\":\"u{i}\"}}\n"));
    }
    text.push_str("{\"id\":\"u19999\"}\n");
    let p = write(&d, "u.jsonl", &text);
    let l = load(&p, ObjectType::User, &strict()).expect("load");
    assert_eq!(l.table.len(), 20_001);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.starts_with("1 record(s) repeat") && w.contains("u19999")),
        "{:?}",
        l.warnings
    );
}

/// Lines split across read blocks (blocks smaller than a line, a line per block, and so on)
/// give the same table and the same error lines as one block.
#[test]
fn json_lines_split_across_blocks() {
    let d = dir("blocks");
    let mut buf = Vec::new();
    dynrule::synth::write_tenant(300, 5, &mut buf).expect("generate");
    let text = String::from_utf8(buf).expect("utf-8");
    // A bad record on line 200, and a file that does not end in a newline.
    let mut lines: Vec<&str> = text.lines().collect();
    lines[199] = r#"{"id":"bad","accountEnabled":"maybe"}"#;
    let joined = lines.join("\n");
    let p = write(&d, "u.jsonl", &joined);
    let whole = load(&p, ObjectType::User, &skipping()).expect("one block");
    assert_eq!(whole.table.len(), 299);
    for block_bytes in [100, 1_000, 2_500, 4_096, 65_536] {
        let opts = LoadOptions {
            block_bytes,
            ..skipping()
        };
        let l = load(&p, ObjectType::User, &opts).expect("small blocks");
        assert_eq!(l.table.len(), 299, "block {block_bytes}");
        assert_eq!(
            col(&l.table, "objectId"),
            col(&whole.table, "objectId"),
            "block {block_bytes}"
        );
        assert_eq!(col(&l.table, "department"), col(&whole.table, "department"));
        let skipped: Vec<usize> = l.skipped.iter().map(|e| e.line).collect();
        assert_eq!(skipped, vec![200], "block {block_bytes}");
        let strict = LoadOptions {
            block_bytes,
            ..LoadOptions::default()
        };
        let e = load(&p, ObjectType::User, &strict).expect_err("strict");
        assert_eq!(e.line, 200, "block {block_bytes}");
    }
}

/// Loading only the columns the rules read gives every rule the same members as a full load,
/// and columns outside the projection read as null.
#[test]
fn a_projected_load_evaluates_like_a_full_one() {
    let d = dir("projection");
    let path = d.join("users.jsonl");
    let mut f = std::fs::File::create(&path).expect("create");
    dynrule::synth::write_tenant(2_000, 13, &mut f).expect("generate");
    drop(f);
    let text = std::fs::read_to_string("benches/suite.jsonl").expect("suite");
    let opts = dynrule::program::CompileOptions {
        now: "2026-11-21T00:00:00Z".parse().expect("now"),
    };
    let mut programs: Vec<dynrule::program::Program> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("line");
            dynrule::program::Program::from_text(v["rule"].as_str().expect("rule"), &opts)
                .expect("compiles")
        })
        .collect();
    programs.push(
        dynrule::program::Program::from_text(
            "user.extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter -startsWith \"CC-1\"",
            &opts,
        )
        .expect("extension rule"),
    );
    let mut projection = dynrule::table::Projection::default();
    for p in &programs {
        p.add_reads(&mut projection);
    }
    projection.columns.insert(ColumnKey::Prop("objectId"));
    let full = load(&path, ObjectType::User, &strict())
        .expect("full")
        .table;
    let projected = load(
        &path,
        ObjectType::User,
        &LoadOptions {
            projection: Some(projection.clone()),
            ..LoadOptions::default()
        },
    )
    .expect("projected")
    .table;
    assert!(!projection.columns.contains(&ColumnKey::Prop("surname")));
    assert!(col(&projected, "surname").iter().all(Option::is_none));
    assert!(col(&full, "surname").iter().any(Option::is_some));
    assert!(projected.heap_bytes() < full.heap_bytes());
    let a = dynrule::vm::evaluate(&programs, &full);
    let b = dynrule::vm::evaluate(&programs, &projected);
    assert_eq!(a, b);
    assert!(
        a.last().is_some_and(|m| m.count_ones() > 0),
        "the extension rule selects someone"
    );
}

/// Asserts that two user tables hold the same values, column by column (codes resolved to
/// text, plan sets compared as sorted plans).
fn assert_same_tables(a: &Table, b: &Table, what: &str) {
    use dynrule::table::{Column, Layout};
    assert_eq!(a.len(), b.len(), "{what}");
    for (key, _) in &Layout::new(ObjectType::User).columns {
        for row in 0..a.len() {
            let same = match (a.column(*key), b.column(*key)) {
                (None, None) => true,
                (Some(Column::Str(x)), Some(Column::Str(y))) => x.get(row) == y.get(row),
                (Some(Column::List(x)), Some(Column::List(y))) => x.get(row) == y.get(row),
                (Some(Column::Licenses(x)), Some(Column::Licenses(y))) => x.get(row) == y.get(row),
                (Some(Column::Bool(x)), Some(Column::Bool(y))) => x.get(row) == y.get(row),
                (Some(Column::Date(x)), Some(Column::Date(y))) => x.get(row) == y.get(row),
                (Some(Column::Plans(x)), Some(Column::Plans(y))) => {
                    let (mut p, mut q) = (x.plans_of(row), y.plans_of(row));
                    p.sort();
                    q.sort();
                    p == q
                }
                _ => false,
            };
            assert!(same, "{what}: {key:?} differs at row {row}");
        }
    }
    let name = "extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costcenter";
    for row in 0..a.len() {
        let v = |t: &Table| {
            t.extension(name)
                .and_then(|c| c.get(row))
                .map(str::to_string)
        };
        assert_eq!(v(a), v(b), "{what}: {name} row {row}");
    }
}

/// The parallel load (byte scanner, one table part per chunk, parts appended with their
/// dictionaries remapped) builds the table the serde record path builds, value for value:
/// whole files and small chunks (many parts, dictionaries that turn high-cardinality midway),
/// JSON Lines and a JSON array.
#[test]
fn the_parallel_load_matches_the_serde_path() {
    let d = dir("parallel");
    let users = dynrule::synth::tenant_values(17_000, 21);
    let reference = table_from_values(&users, ObjectType::User).expect("reference");
    let lines: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    let jsonl = write(&d, "u.jsonl", &lines.join("\n"));
    let array = write(&d, "u.json", &format!("[\n{}\n]", lines.join(",\n")));
    for (path, block_bytes) in [(&jsonl, 0), (&jsonl, 40_000), (&array, 0)] {
        let opts = LoadOptions {
            block_bytes,
            ..strict()
        };
        let t = load(path, ObjectType::User, &opts).expect("load").table;
        assert_same_tables(
            &t,
            &reference,
            &format!("{} block {block_bytes}", path.display()),
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A stray or unclosed CSV quote merges the rows after it into one value: that record is an
/// error naming its first line and how many rows it swallowed, never a silent loss. A genuine
/// multi-line value (an address with a line break) still reads.
#[test]
fn csv_stray_quotes_never_lose_rows_silently() {
    let d = dir("csv-quotes");
    let stray = write(
        &d,
        "stray.csv",
        "id,department\nu1,Sales\nu2,\"Sales\nu3,HR\nu4,IT\"\nu5,HR\n",
    );
    let e = load(&stray, ObjectType::User, &strict()).expect_err("stray quote");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("2 line(s) that look like rows"), "{e}");
    let l = load(&stray, ObjectType::User, &skipping()).expect("skipping");
    assert_eq!(l.table.len(), 2, "u1 and u5 load");
    assert_eq!(l.skipped.len(), 1);
    assert!(
        l.skipped[0].message.contains("lines 3–5"),
        "{}",
        l.skipped[0]
    );

    let unclosed = write(
        &d,
        "unclosed.csv",
        "id,department\nu1,Sales\nu2,\"Sales\nu3,HR\nu4,IT\nu5,HR\n",
    );
    let l = load(&unclosed, ObjectType::User, &skipping()).expect("skipping");
    assert_eq!(l.table.len(), 1);
    assert!(
        l.skipped[0].message.contains("3 line(s)"),
        "{}",
        l.skipped[0]
    );

    let address = write(
        &d,
        "address.csv",
        "id,streetAddress,department\nu1,\"1 Main St\nSuite 2\",Sales\nu2,x,HR\n",
    );
    let l = load(&address, ObjectType::User, &strict()).expect("multi-line value");
    assert_eq!(l.table.len(), 2);
}

/// Inputs that are not regular files are refused at once (`/dev/zero` as `users.jsonl` used to
/// grow one line to 4 GB; a FIFO blocked forever), a JSON Lines line over the cap is an error
/// naming where it starts, and a folder names what it does not read.
#[test]
fn non_regular_files_long_lines_and_ignored_entries() {
    let e = load(Path::new("/dev/zero"), ObjectType::User, &strict()).expect_err("device");
    assert!(e.message.contains("not a regular file"), "{e}");

    let d = dir("nonregular");
    let fifo = d.join("users.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let e = load(&fifo, ObjectType::User, &strict()).expect_err("fifo");
        assert!(e.message.contains("not a regular file"), "{e}");
        // In a folder too: the FIFO has an export's name.
        let e = load(&d, ObjectType::User, &strict()).expect_err("fifo in folder");
        assert!(e.message.contains("not a regular file"), "{e}");
        std::fs::remove_file(&fifo).expect("rm fifo");
    }

    let long = write(
        &d,
        "long.jsonl",
        &format!(
            "{{\"id\":\"u1\"}}\n{{\"id\":\"u2\",\"x\":\"{}\"}}\n",
            "a".repeat(100_000)
        ),
    );
    let opts = LoadOptions {
        max_line_bytes: 10_000,
        block_bytes: 4_096,
        ..LoadOptions::default()
    };
    let e = load(&long, ObjectType::User, &opts).expect_err("line over the cap");
    assert!(e.message.contains("starting at byte 12"), "{e}");
    std::fs::remove_file(&long).expect("rm");

    write(&d, "users-1.jsonl", "{\"id\":\"u1\"}\n");
    write(&d, "notes.txt", "exported on Monday\n");
    std::fs::create_dir_all(d.join("more")).expect("sub-folder");
    let l = load(&d, ObjectType::User, &strict()).expect("folder");
    assert_eq!(l.table.len(), 1);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("2 entries are not read") && w.contains("more/, notes.txt")),
        "{:?}",
        l.warnings
    );
}

/// Invalid UTF-8 makes its record malformed, wherever it is (a key no rule reads included) and
/// in every format: in a JSON array only that record, so `--skip-invalid` keeps the rest.
#[test]
fn invalid_utf8_is_one_malformed_record() {
    let d = dir("utf8");
    let array = d.join("users.json");
    std::fs::write(
        &array,
        b"[{\"id\":\"u1\",\"department\":\"A\"},\n{\"id\":\"u2\",\"notes\":\"\xff\",\"department\":\"A\"},\n{\"id\":\"u3\"}]",
    )
    .expect("write");
    let e = load(&array, ObjectType::User, &strict()).expect_err("strict");
    assert_eq!((e.line, e.column), (2, 21), "{e}");
    let l = load(&array, ObjectType::User, &skipping()).expect("skipping");
    assert_eq!(l.table.len(), 2);
    assert_eq!(l.skipped.len(), 1);

    let lines = d.join("users.jsonl");
    std::fs::write(
        &lines,
        b"{\"id\":\"u1\"}\n{\"id\":\"u2\",\"notes\":\"\xc3\x28\"}\n{\"id\":\"u3\"}\n",
    )
    .expect("write");
    let l = load(&lines, ObjectType::User, &skipping()).expect("skipping");
    assert_eq!(l.table.len(), 2);
    assert_eq!(l.skipped[0].line, 2, "{}", l.skipped[0]);
}

/// Windows PowerShell 5.1: `ConvertTo-Json` without `-Depth` writes nested objects as text, and
/// dates as `"\/Date(ms)\/"`; `Export-Csv` writes `System.String[]` for a collection. Dates are
/// read; the rest are malformed records naming the fix (D68). (Shapes: PowerShell 5.1's
/// `ConvertTo-Json` and `Export-Csv` output, as in `real-inputs/derived-probes/ps-export.csv`.)
#[test]
fn windows_powershell_exports() {
    let d = dir("ps51");
    let ok = write(
        &d,
        "ok.jsonl",
        "{\"id\":\"u1\",\"employeeHireDate\":\"\\/Date(1700000000000)\\/\"}\n",
    );
    let l = load(&ok, ObjectType::User, &strict()).expect("PowerShell dates load");
    let t = eval(
        &l.table,
        "user.employeeHireDate -eq \"2023-11-14T22:13:20Z\"",
    );
    assert_eq!(t, ["u1"]);
    let cases = [
        (
            "{\"id\":\"u1\",\"assignedPlans\":\"class AssignedPlan {\\n  AssignedDateTime: 1/1/2024\\n}\"}",
            "ConvertTo-Json -Depth 10",
        ),
        (
            "{\"id\":\"u1\",\"manager\":\"@{id=4b8a}\"}",
            "ConvertTo-Json -Depth 10",
        ),
        (
            "{\"id\":\"u1\",\"onPremisesExtensionAttributes\":\"@{extensionAttribute1=EMS}\"}",
            "ConvertTo-Json -Depth 10",
        ),
        (
            "{\"id\":\"u1\",\"licenseAssignmentStates\":\"Microsoft.Graph.PowerShell.Models.MicrosoftGraphLicenseAssignmentState\"}",
            "ConvertTo-Json -Depth 10",
        ),
        (
            "{\"id\":\"u1\",\"proxyAddresses\":\"System.String[]\"}",
            "Export-Csv",
        ),
    ];
    for (i, (record, fix)) in cases.iter().enumerate() {
        let f = write(&d, &format!("bad{i}.jsonl"), &format!("{record}\n"));
        let e = load(&f, ObjectType::User, &strict()).expect_err(record);
        assert!(e.message.contains(fix), "{record}: {e}");
    }
    let csv = write(
        &d,
        "export.csv",
        "\"Id\",\"ProxyAddresses\",\"Department\"\r\n\"u1\",\"System.String[]\",\"Sales\"\r\n",
    );
    let e = load(&csv, ObjectType::User, &strict()).expect_err("System.String[]");
    assert!(e.message.contains("-join ';'"), "{e}");
}

/// An export of the wrong kind of object is refused with the option to use (D69): a devices
/// page given as users, a users export given as devices, a groups page as either.
/// (Shapes: Graph's `GET /devices` and `GET /groups` responses.)
#[test]
fn exports_of_another_object_type_are_refused() {
    let d = dir("kind");
    let devices = write(
        &d,
        "devices.json",
        "{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#devices\",\"value\":[{\"id\":\"d1\",\"deviceId\":\"x\"}]}",
    );
    let e = load(&devices, ObjectType::User, &strict()).expect_err("devices as users");
    assert!(
        e.message.contains("devices export") && e.message.contains("--devices"),
        "{e}"
    );
    assert!(load(&devices, ObjectType::Device, &strict()).is_ok());
    let typed = write(
        &d,
        "typed.jsonl",
        "{\"@odata.type\":\"#microsoft.graph.device\",\"id\":\"d1\",\"registeredOwners\":[{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"u\"}]}\n",
    );
    assert!(load(&typed, ObjectType::User, &strict()).is_err());
    assert!(load(&typed, ObjectType::Device, &strict()).is_ok());
    let users = write(
        &d,
        "users.jsonl",
        "{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"u1\",\"memberOf\":[{\"@odata.type\":\"#microsoft.graph.group\",\"id\":\"g\"}]}\n",
    );
    assert!(load(&users, ObjectType::User, &strict()).is_ok());
    assert!(load(&users, ObjectType::Device, &strict()).is_err());
    let groups = write(
        &d,
        "groups.json",
        "[{\"id\":\"g1\",\"displayName\":\"Sales\",\"groupTypes\":[\"DynamicMembership\"],\"membershipRule\":\"user.department -eq \\\"Sales\\\"\"}]",
    );
    let e = load(&groups, ObjectType::User, &strict()).expect_err("groups as users");
    assert!(e.message.contains("groups export"), "{e}");
}

/// CSV as admins have it (D71): CRLF line ends number errors by the file's own lines; a
/// `;`-separated file (Excel in most European locales) is read by its header's delimiter; the
/// portal's bulk-create template (a `version:v1.0` line, "Name [displayName] Required" headers,
/// short rows, "Block sign in (Yes/No)", no object ids) loads; and the unused-columns warning
/// names only columns that are no property at all.
/// (Template shape: Microsoft Learn, "Bulk create users in Microsoft Entra ID", example CSV.)
#[test]
fn csv_as_admins_have_it() {
    let d = dir("csv-admins");
    let crlf = write(
        &d,
        "crlf.csv",
        "id,accountEnabled\r\nu1,true\r\nu2,maybe\r\n",
    );
    let e = load(&crlf, ObjectType::User, &strict()).expect_err("bad boolean");
    assert_eq!(e.line, 3, "{e}");

    let semi = write(
        &d,
        "semi.csv",
        "id;department;proxyAddresses\nu1;Sales;\"smtp:a@x.com;SMTP:b@x.com\"\n",
    );
    let l = load(&semi, ObjectType::User, &strict()).expect("semicolons");
    assert_eq!(col(&l.table, "department"), [Some("Sales".to_string())]);
    assert_eq!(
        eval(
            &l.table,
            "user.proxyAddresses -any (_ -eq \"SMTP:b@x.com\")"
        ),
        ["u1"]
    );

    let bulk = write(
        &d,
        "bulk.csv",
        "version:v1.0\nName [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required,Block sign in (Yes/No) [accountEnabled] Required,Department [department],Usage location [usageLocation]\nAlain Charon,alain@contoso.com,Password1!,No,Engineering\nJuan Perez,juan@contoso.com,Password1!,Yes,Sales,US\n",
    );
    let l = load(&bulk, ObjectType::User, &strict()).expect("bulk template");
    assert_eq!(
        eval(&l.table, "user.accountEnabled -eq true"),
        ["alain@contoso.com"]
    );
    assert_eq!(
        eval(&l.table, "user.department -eq \"Sales\""),
        ["juan@contoso.com"]
    );
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("identified by userPrincipalName")),
        "{:?}",
        l.warnings
    );
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("no property dynrule reads (ignored): Initial password")),
        "{:?}",
        l.warnings
    );
    // With a projection (a rule reading only department), the other properties are not
    // "columns no property reads".
    let mut projection = dynrule::table::Projection::default();
    projection.columns.insert(ColumnKey::Prop("department"));
    projection.columns.insert(ColumnKey::Prop("objectId"));
    let opts = LoadOptions {
        projection: Some(projection),
        ..LoadOptions::default()
    };
    let l = load(&bulk, ObjectType::User, &opts).expect("projected");
    assert!(
        l.warnings.iter().all(|w| !w.contains("Usage location")),
        "{:?}",
        l.warnings
    );
    let long = write(&d, "long.csv", "id,department\nu1,Sales,extra\n");
    let e = load(&long, ObjectType::User, &strict()).expect_err("long row");
    assert!(e.message.contains("3 fields, the header 2"), "{e}");
}

fn cached() -> LoadOptions {
    LoadOptions {
        cache: CacheMode::On,
        ..LoadOptions::default()
    }
}

fn projection(keys: &[&'static str]) -> Projection {
    let mut p = Projection::default();
    p.columns.extend(keys.iter().map(|k| ColumnKey::Prop(k)));
    p
}

fn reason(c: &CacheUse) -> String {
    match c {
        CacheUse::Written { reason, .. } => reason.clone(),
        other => panic!("expected the cache written, got {other:?}"),
    }
}

/// The load cache (D79) gives back the table the export gives, value for value, for a whole
/// table and for a projection of it; it is written once and then read.
#[test]
fn the_cache_gives_the_table_the_export_gives() {
    let d = dir("cache-same");
    let users = dynrule::synth::tenant_values(4_000, 5);
    let lines: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    let path = write(&d, "users.jsonl", &lines.join("\n"));
    let cold = load(&path, ObjectType::User, &strict())
        .expect("cold")
        .table;
    let first = load(&path, ObjectType::User, &cached()).expect("first");
    assert_eq!(reason(&first.cache), "no cache yet");
    assert!(cache_path(&path, ObjectType::User).is_file());
    let second = load(&path, ObjectType::User, &cached()).expect("second");
    assert!(
        matches!(second.cache, CacheUse::Hit { .. }),
        "{:?}",
        second.cache
    );
    assert_same_tables(&second.table, &cold, "cache hit");
    assert_eq!(second.bytes, first.bytes);
    // A projection is read from the whole table's cache: its columns, and no others.
    let opts = LoadOptions {
        projection: Some(projection(&["objectId", "department", "accountEnabled"])),
        ..cached()
    };
    let part = load(&path, ObjectType::User, &opts).expect("projected");
    assert!(
        matches!(part.cache, CacheUse::Hit { .. }),
        "{:?}",
        part.cache
    );
    let dept = |t: &Table, row| {
        t.str_column(ColumnKey::Prop("department"))
            .and_then(|c| c.get(row))
            .map(str::to_string)
    };
    for row in 0..cold.len() {
        assert_eq!(dept(&part.table, row), dept(&cold, row), "row {row}");
    }
    assert_eq!(
        part.table.rows_with_value(ColumnKey::Prop("city")),
        0,
        "a column outside the projection is not read"
    );
    assert!(cold.rows_with_value(ColumnKey::Prop("city")) > 0);
    let _ = std::fs::remove_dir_all(&d);
}

/// A cache is not used once the export changes: a new size, or the same size and
/// modification time with other content (the sampled fingerprint).
#[test]
fn a_changed_export_is_parsed_again() {
    let d = dir("cache-changed");
    let users = dynrule::synth::tenant_values(300, 6);
    let lines: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    let path = write(&d, "users.jsonl", &lines.join("\n"));
    load(&path, ObjectType::User, &cached()).expect("first");
    // One user fewer.
    write(&d, "users.jsonl", &lines[1..].join("\n"));
    let l = load(&path, ObjectType::User, &cached()).expect("changed");
    assert_eq!(reason(&l.cache), "the export changed");
    assert_eq!(l.table.len(), 299);
    // The same length and modification time, one department renamed.
    let before = std::fs::metadata(&path)
        .expect("meta")
        .modified()
        .expect("mtime");
    let text = std::fs::read_to_string(&path).expect("read");
    let at = text.find("\"department\":\"").expect("a department") + 14;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'Q' { b'R' } else { b'Q' };
    std::fs::write(&path, &bytes).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(before))
        .expect("set mtime");
    let l = load(&path, ObjectType::User, &cached()).expect("same size");
    assert_eq!(reason(&l.cache), "the export changed");
    let cold = load(&path, ObjectType::User, &strict())
        .expect("cold")
        .table;
    assert_same_tables(&l.table, &cold, "after the change");
    let _ = std::fs::remove_dir_all(&d);
}

/// A truncated, foreign or corrupted cache file is never read as a table: the export is parsed
/// and the cache written again.
#[test]
fn a_damaged_cache_is_never_used() {
    let d = dir("cache-damaged");
    let users = dynrule::synth::tenant_values(500, 7);
    let lines: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    let path = write(&d, "users.jsonl", &lines.join("\n"));
    let cold = load(&path, ObjectType::User, &strict())
        .expect("cold")
        .table;
    load(&path, ObjectType::User, &cached()).expect("first");
    let cache = cache_path(&path, ObjectType::User);
    let good = std::fs::read(&cache).expect("cache");
    let damage: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), "truncated"),
        ("empty", Vec::new(), "truncated"),
        (
            "foreign",
            b"PAR1 not a dynrule cache at all, but long enough".to_vec(),
            "not a dynrule cache",
        ),
        (
            "a column byte flipped",
            {
                let mut b = good.clone();
                b[100] ^= 0x5a;
                b
            },
            "corrupt (column",
        ),
        (
            "a header byte flipped",
            {
                let mut b = good.clone();
                let n = b.len();
                b[n - 40] ^= 0x5a;
                b
            },
            "corrupt (header",
        ),
    ];
    for (what, bytes, expected) in damage {
        std::fs::write(&cache, &bytes).expect("damage");
        let l = load(&path, ObjectType::User, &cached()).expect(what);
        let r = reason(&l.cache);
        assert!(r.contains(expected), "{what}: {r}");
        assert_same_tables(&l.table, &cold, what);
        // Written again: the next load reads it.
        let again = load(&path, ObjectType::User, &cached()).expect("again");
        assert!(
            matches!(again.cache, CacheUse::Hit { .. }),
            "{what}: {:?}",
            again.cache
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A load that needs a column the cache lacks parses the export for it and writes a cache
/// with both its columns and the old ones, so loads of different rules do not take turns
/// rewriting it. A cache that holds skipped records is not used by a strict load, which must
/// stop at the bad record.
#[test]
fn the_cache_widens_and_keeps_invalid_records_an_error() {
    let d = dir("cache-widen");
    let users = dynrule::synth::tenant_values(400, 8);
    let lines: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    let path = write(&d, "users.jsonl", &lines.join("\n"));
    let with = |keys: &[&'static str]| LoadOptions {
        projection: Some(projection(keys)),
        ..cached()
    };
    let a = with(&["objectId", "department"]);
    let b = with(&["objectId", "city"]);
    load(&path, ObjectType::User, &a).expect("a");
    let l = load(&path, ObjectType::User, &b).expect("b");
    assert_eq!(reason(&l.cache), "columns missing from the cache");
    for o in [&a, &b] {
        let l = load(&path, ObjectType::User, o).expect("again");
        assert!(matches!(l.cache, CacheUse::Hit { .. }), "{:?}", l.cache);
    }
    // An invalid record: skipped and cached; a strict load still fails on it.
    let mut bad = lines.clone();
    bad.insert(
        3,
        "{\"id\": 5, \"accountEnabled\": \"perhaps\"}".to_string(),
    );
    write(&d, "users.jsonl", &bad.join("\n"));
    let skip = LoadOptions {
        skip_invalid: true,
        ..cached()
    };
    let l = load(&path, ObjectType::User, &skip).expect("skipping");
    assert_eq!(l.skipped.len(), 1);
    let l = load(&path, ObjectType::User, &skip).expect("skipping, cached");
    assert!(matches!(l.cache, CacheUse::Hit { .. }), "{:?}", l.cache);
    assert_eq!(
        l.skipped.len(),
        1,
        "the skipped record is reported from the cache too"
    );
    let e = load(&path, ObjectType::User, &cached()).expect_err("strict");
    assert_eq!(e.line, 4, "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// On the command line: `--cache on` writes the cache and the next run reads it with the same
/// answer; `auto` leaves a small export's folder as it is, and `--no-cache` writes nothing.
#[test]
fn recompute_reads_its_cache_with_the_same_answer() {
    let d = dir("cache-cli");
    dynrule::synth::write_snapshot(600, 9, &d).expect("snapshot");
    let d_s = d.to_str().expect("utf-8");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "recompute",
            "--tenant",
            d_s,
            "--format",
            "json",
            "--now",
            "2026-11-01T00:00:00Z",
        ];
        args.extend_from_slice(extra);
        let o = common::dynrule(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        v.as_object_mut().map(|m| m.remove("timings"));
        (v, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (plain, _) = run(&[]);
    assert!(
        !d.join(".dynrule-cache").exists(),
        "auto caches no small export"
    );
    let (_, err) = run(&["--no-cache"]);
    assert!(!d.join(".dynrule-cache").exists(), "{err}");
    let (first, err) = run(&["--cache", "on"]);
    assert!(err.contains("(cache written)"), "{err}");
    let (second, err) = run(&["--cache", "on"]);
    assert!(err.contains("(cache hit)"), "{err}");
    assert_eq!(first, plain);
    assert_eq!(second, plain);
    let _ = std::fs::remove_dir_all(&d);
}
