//! The TOTP code normaliser: spaces are ignored, and exactly six ASCII digits remain or
//! the code is refused; every spelling of one code is the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::mfa::totp::TotpCode;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let kept: String = s.chars().filter(|&c| c != ' ').collect();
    let six_digits = kept.len() == 6 && kept.bytes().all(|b| b.is_ascii_digit());
    match TotpCode::parse(s) {
        Ok(code) => {
            assert!(six_digits, "{s:?} accepted");
            assert_eq!(
                TotpCode::parse(&kept).expect("the digits alone parse"),
                code
            );
            assert_eq!(format!("{code:?}"), "TotpCode([redacted])");
        }
        Err(_) => assert!(!six_digits, "{s:?} refused"),
    }
});
