//! A tenant snapshot from arbitrary bytes: the input is split on NUL bytes into users (JSON
//! Lines), groups, subscribed SKUs and a licensing rules file. Whatever loads must recompute and
//! license without panicking, and the seat accounting must stay consistent
//! (`dynrule::harness::licensing`, which `cargo test` replays on `regressions/licensing/`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = dynrule::harness::licensing(data) {
        panic!("{e}");
    }
});
