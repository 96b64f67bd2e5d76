//! Email addresses as registration and login read them. Contract: what is accepted is the
//! trimmed input, at most 254 bytes, without whitespace or control characters; its
//! normalised form is the one `normalize` gives for the raw input (the limiter's key) and
//! the one a stored address is rebuilt with, so every layer finds the same account.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::email::{Email, normalize};

/// Characters that show as nothing (or reorder what follows) in a mail client or a list.
const INVISIBLE: &[char] = &[
    '\u{00AD}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}',
    '\u{202C}', '\u{202D}', '\u{202E}', '\u{2060}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
    '\u{FEFF}',
];

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(email) = Email::parse(s) else {
        return;
    };
    assert_eq!(email.as_str(), s.trim());
    assert!(email.as_str().len() <= 254);
    assert!(
        !email
            .as_str()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || INVISIBLE.contains(&c))
    );
    assert_eq!(email.normalized(), normalize(s));
    let stored = Email::from_stored(email.as_str().to_owned());
    assert_eq!(stored.normalized(), email.normalized());
    assert!(stored == email);
    // Normalising is idempotent: a normalised key never normalises to another account.
    assert_eq!(normalize(email.normalized()), email.normalized());
});
