//! Every command in the README runs as written: each `dynrule …` line of a ```sh block (with
//! its `\` continuations) is run by `sh` in order, in a scratch folder that sees the
//! repository's `corpus/` and `benches/`, with `dynrule` on the `PATH`. A command must exit 0,
//! or a code its comment names ("exit 3 when …"). `cargo …` lines are what CI runs itself.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

use std::path::Path;
use std::process::Command;

/// `(comment above, command)` for every command line of the README's ```sh blocks.
fn commands(readme: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut comment = String::new();
    let mut pending = String::new();
    for line in readme.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            comment.clear();
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(c) = t.strip_prefix('#') {
            comment.push_str(c);
            continue;
        }
        if t.is_empty() {
            comment.clear();
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(t);
                out.push((comment.clone(), std::mem::take(&mut pending)));
            }
        }
    }
    out
}

/// The exit codes a command may end with: 0, and any its comment names as `exit N`.
fn allowed(comment: &str) -> Vec<i32> {
    let mut codes = vec![0];
    let mut rest = comment;
    while let Some(i) = rest.find("exit ") {
        rest = &rest[i + 5..];
        if let Some(n) = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
        {
            codes.push(n);
        }
    }
    codes
}

#[test]
fn every_readme_command_runs_as_written() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let cmds = commands(&readme);
    assert!(cmds.len() >= 10, "found only {} commands", cmds.len());
    let work = std::env::temp_dir().join(format!("dynrule-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("scratch folder");
    let repo = std::env::current_dir().expect("cwd");
    for dir in ["corpus", "benches", "data"] {
        std::os::unix::fs::symlink(repo.join(dir), work.join(dir)).expect("link");
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_dynrule"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for (comment, cmd) in &cmds {
        if !cmd.starts_with("dynrule ") {
            assert!(
                cmd.starts_with("cargo "),
                "a README command that is neither dynrule nor cargo: {cmd}"
            );
            continue;
        }
        let o = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(&work)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .output()
            .expect("sh");
        let code = o.status.code().unwrap_or(-1);
        assert!(
            allowed(comment).contains(&code),
            "`{cmd}` exited {code}:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 10, "ran only {ran} commands");
    let _ = std::fs::remove_dir_all(&work);
}
