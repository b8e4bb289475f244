//! Helpers the test binaries share; each includes this file with `mod common;` and uses the
//! part it needs.

#![allow(dead_code, reason = "each test binary uses a part of the helpers")]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The instant the tests take as `system.now`.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_795_262_400).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Runs the `dynrule` binary with `args` (no colour), and waits for it.
pub fn dynrule(args: &[&str]) -> Output {
    dynrule_with_stdin(args, None)
}

/// Runs the `dynrule` binary with `args`, writing `stdin` to it when given.
pub fn dynrule_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = match Command::new(env!("CARGO_BIN_EXE_dynrule"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("spawn dynrule: {e}"),
    };
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        if let Err(e) = pipe.write_all(input.as_bytes()) {
            panic!("write stdin: {e}");
        }
    }
    match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => panic!("wait for dynrule: {e}"),
    }
}

/// A temporary folder, removed with everything in it when dropped (so test runs do not fill
/// the temp folder); derefs to its path.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty temporary folder named after the test binary (`suite`) and `name`, removed
/// when the returned guard is dropped.
pub fn temp_dir(suite: &str, name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("dynrule-{suite}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    if let Err(e) = std::fs::create_dir_all(&d) {
        panic!("temp dir {}: {e}", d.display());
    }
    TempDir(d)
}
