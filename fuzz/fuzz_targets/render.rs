//! Any text's diagnostics through the miette renderer (what `check` prints): nothing may panic,
//! whatever the spans, characters (wide, combining, control, tabs) or line structure.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let checked = dynrule::check(&src);
    let _ = dynrule::diag::render_plain(&checked.diagnostics, "rule", &src);
});
