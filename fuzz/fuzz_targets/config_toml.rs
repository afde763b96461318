//! The config file (`carbontop.toml`): any text gives a config or a one-line error naming the
//! file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = carbontop::config::parse(&text, std::path::Path::new("fuzz.toml")) {
        let e = e.to_string();
        assert!(e.contains("fuzz.toml"), "{e}");
    }
});
