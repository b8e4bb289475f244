//! The loader's two record paths on arbitrary bytes: the byte scanner may decline a record,
//! but whatever it reads, serde must read the same (and neither may panic).
#![no_main]

use dynrule::schema::ObjectType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for object in [ObjectType::User, ObjectType::Device] {
        if let Err(e) = dynrule::load::check_record_paths(data, object) {
            panic!("{e}");
        }
    }
});
