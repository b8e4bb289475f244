//! For any text that parses: printing the tree and parsing it again gives the same tree, and the
//! canonical formatter is idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let (Some(ast), _) = dynrule::parse(src) else { return };
    let printed = dynrule::syntax::print::print(&ast);
    let (again, diags) = dynrule::parse(&printed);
    assert_eq!(again.as_ref(), Some(&ast), "printed: {printed:?} diags: {diags:?}");
    let formatted = dynrule::format(src).expect("parsed once");
    assert_eq!(dynrule::format(&formatted).as_ref(), Ok(&formatted));
});
