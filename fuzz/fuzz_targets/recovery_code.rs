//! The recovery-code normaliser: any case, dashes and spaces anywhere; what it accepts is
//! exactly 24 base32 characters (codes issued now) or 16 (codes issued before, still
//! held), shown back in dash-separated groups of four, which parses to the same code
//! (same hash), as does the input in upper case.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::mfa::recovery::RecoveryCode;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let kept: String = s.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    let base32 = (kept.len() == 24 || kept.len() == 16)
        && kept
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || (b'2'..=b'7').contains(&b));
    match RecoveryCode::parse(s) {
        Ok(code) => {
            assert!(base32, "{s:?} accepted");
            let shown = code.display();
            let groups: Vec<&str> = shown.split('-').collect();
            assert_eq!(groups.len(), kept.len() / 4, "{shown:?}");
            assert!(groups.iter().all(|g| g.len() == 4), "{shown:?}");
            let again = RecoveryCode::parse(&shown).expect("its display parses");
            assert_eq!(again, code);
            assert_eq!(again.hash().as_bytes(), code.hash().as_bytes());
            let upper = RecoveryCode::parse(&s.to_ascii_uppercase()).expect("any case");
            assert_eq!(upper, code);
            assert_eq!(format!("{code:?}"), "RecoveryCode([redacted])");
        }
        Err(_) => assert!(!base32, "{s:?} refused"),
    }
});
