//! Opaque tokens (refresh, MFA, reset): only the one canonical spelling parses, it
//! re-encodes to the same bytes, and no string is a token of two kinds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::secret::{MfaToken, RefreshToken, ResetToken};

macro_rules! round_trips {
    ($kind:ty, $s:expr) => {{
        match <$kind>::parse($s) {
            Ok(token) => {
                assert_eq!(
                    token.expose(),
                    $s,
                    "an accepted token re-encodes to its bytes"
                );
                let again = <$kind>::parse(&token.expose()).expect("its own spelling parses");
                assert!(again.hash() == token.hash());
                assert!(
                    !format!("{token:?}").contains(&$s[3..]),
                    "Debug shows the token"
                );
                true
            }
            Err(_) => false,
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let kinds = [
        round_trips!(RefreshToken, s),
        round_trips!(MfaToken, s),
        round_trips!(ResetToken, s),
    ];
    assert!(
        kinds.iter().filter(|k| **k).count() <= 1,
        "{s:?} parses as two kinds"
    );
});
