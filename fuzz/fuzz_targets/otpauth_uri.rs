//! The otpauth URI builder with any issuer and account (an email as registered, the
//! issuer from configuration). Contract: the result is one URI of the key-URI format whose
//! label and parameters decode back to exactly the inputs: no input can add a parameter,
//! end the label early or smuggle a character a QR reader would mangle.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tessera_core::mfa::totp::TotpSecret;
use tessera_fuzz::percent_decode;

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let issuer: String = u.arbitrary()?;
    let account: String = u.arbitrary()?;
    let secret = TotpSecret::from_random(u.arbitrary()?);
    let uri = secret.otpauth_uri(&issuer, &account);

    assert!(
        uri.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~@%:/?&=".contains(&b)),
        "{uri}"
    );
    let rest = uri
        .strip_prefix("otpauth://totp/")
        .expect("scheme and type");
    let (label, query) = rest.split_once('?').expect("a query");
    assert!(!query.contains('?') && !label.contains('/'));
    let (l_issuer, l_account) = label.split_once(':').expect("issuer:account");
    assert!(!l_account.contains(':'), "one label separator");
    assert_eq!(percent_decode(l_issuer).as_deref(), Some(issuer.as_str()));
    assert_eq!(percent_decode(l_account).as_deref(), Some(account.as_str()));
    let params: Vec<(&str, &str)> = query
        .split('&')
        .map(|p| p.split_once('=').expect("key=value"))
        .collect();
    let keys: Vec<&str> = params.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["secret", "issuer", "algorithm", "digits", "period"]);
    assert_eq!(params[0].1, secret.to_base32());
    assert_eq!(
        percent_decode(params[1].1).as_deref(),
        Some(issuer.as_str())
    );
    assert_eq!(
        &params[2..],
        [("algorithm", "SHA1"), ("digits", "6"), ("period", "30")]
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
