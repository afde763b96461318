//! Theme files: any text gives a theme or an error naming the file, never a panic.
#![no_main]

use carbontop::ui::theme;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    static BASE: std::sync::OnceLock<theme::Theme> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| theme::builtins().remove(0));
    if let Err(e) = theme::parse(&text, "fuzz.toml", base) {
        let e = e.to_string();
        assert!(e.contains("fuzz.toml"), "{e}");
    }
    let _ = theme::parse_color(&text);
});
