//! Any text through the whole front end (lex, parse, check, lint, format): nothing may panic,
//! every span must lie on character boundaries of the input. Rendering the diagnostics through
//! miette is the `render` target's job (it is ~100 times slower than checking).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let checked = dynrule::check(&src);
    for d in &checked.diagnostics {
        assert!(d.span.end <= src.len() && src.is_char_boundary(d.span.start) && src.is_char_boundary(d.span.end));
    }
    let _ = dynrule::format(&src);
});
