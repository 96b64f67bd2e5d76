//! The pages' form bodies through the server's own `CheckedForm` extractor, with the CSRF
//! double-submit check in front.
//!
//! Contract: a form is accepted only as `application/x-www-form-urlencoded`, with a
//! non-empty `csrf` field (named once) equal to the browser's CSRF cookie; everything else
//! is a 403 page (expired form) or a 400/413/415 problem.
#![no_main]

use axum::extract::FromRequest;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use tessera_fuzz::{block_on, post};
use tessera_server::ui::cookies::{CSRF, CheckedForm, NoFields};
use tessera_server::ui::{account, login, password, reset, signup};

const FORM_TYPES: &[Option<&[u8]>] = &[
    Some(b"application/x-www-form-urlencoded"),
    Some(b"application/x-www-form-urlencoded; charset=UTF-8"),
    Some(b"multipart/form-data; boundary=x"),
    Some(b"application/json"),
    None,
];

fn check<T: DeserializeOwned>(ct: Option<&[u8]>, cookie: &str, body: &[u8]) {
    let header = format!("{CSRF}={cookie}");
    let req = post(ct, Some(header.as_bytes()), body.to_vec());
    // What the browser's jar holds (the header may have been refused as a value).
    let jar_value = req
        .headers()
        .get("cookie")
        .map(|_| axum_extra::extract::cookie::CookieJar::from_headers(req.headers()))
        .and_then(|jar| jar.get(CSRF).map(|c| c.value().to_owned()));
    match block_on(CheckedForm::<T>::from_request(req, &())) {
        Ok(_) => {
            let ct = ct.map(|c| String::from_utf8_lossy(c).to_ascii_lowercase());
            assert!(ct.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")));
            let fields: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).expect("an accepted form decodes");
            let csrf: Vec<&String> = fields
                .iter()
                .filter(|(k, _)| k == "csrf")
                .map(|(_, v)| v)
                .collect();
            assert_eq!(csrf.len(), 1, "csrf named once");
            assert!(!csrf[0].is_empty());
            assert_eq!(
                Some(csrf[0].as_str()),
                jar_value.as_deref(),
                "csrf matches the cookie"
            );
        }
        Err(res) => {
            let status = res.status().as_u16();
            assert!(matches!(status, 400 | 403 | 413 | 415), "status {status}");
        }
    }
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let kind: u8 = u.arbitrary()?;
    let ct = *u.choose(FORM_TYPES)?;
    let cookie: String = u.arbitrary()?;
    let mut body: Vec<u8> = u.arbitrary()?;
    // Often send the cookie's own value as the field, so the checked path is reached.
    if u.arbitrary()? {
        body.extend_from_slice(format!("&csrf={cookie}").as_bytes());
    }
    match kind % 10 {
        0 => check::<login::LoginForm>(ct, &cookie, &body),
        1 => check::<login::CodeForm>(ct, &cookie, &body),
        2 => check::<signup::SignupForm>(ct, &cookie, &body),
        3 => check::<password::ChangeForm>(ct, &cookie, &body),
        4 => check::<reset::ForgotForm>(ct, &cookie, &body),
        5 => check::<reset::ResetForm>(ct, &cookie, &body),
        6 => check::<account::SetupForm>(ct, &cookie, &body),
        7 => check::<account::ConfirmForm>(ct, &cookie, &body),
        _ => check::<NoFields>(ct, &cookie, &body),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
