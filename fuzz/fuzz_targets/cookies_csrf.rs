//! The browser's cookies as the pages read them: any `Cookie` header(s) give a jar, and
//! from it the CSRF token and the device id the pages use. Contract: the token handed to a
//! form is always 32 bytes of base64url (the browser's own when well-formed, and then the
//! jar is unchanged), and the device id always parses as a `DeviceId`.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use axum_extra::extract::cookie::CookieJar;
use data_encoding::BASE64URL_NOPAD;
use libfuzzer_sys::fuzz_target;
use tessera_core::ids::DeviceId;
use tessera_server::ui::cookies::{self, CSRF, DEVICE};

fn well_formed(value: &str, bytes: usize) -> bool {
    BASE64URL_NOPAD
        .decode(value.as_bytes())
        .is_ok_and(|v| v.len() == bytes)
}

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    // A 0xFF byte starts another Cookie header: browsers send one, proxies may send more.
    for part in data.split(|&b| b == 0xFF) {
        if let Ok(v) = HeaderValue::from_bytes(part) {
            headers.append(header::COOKIE, v);
        }
    }
    let jar = CookieJar::from_headers(&headers);
    let presented = jar.get(CSRF).map(|c| c.value().to_owned());

    let (after, token) = cookies::csrf_token(jar.clone());
    assert!(well_formed(&token, 32), "{token:?}");
    match presented.filter(|p| well_formed(p, 32)) {
        Some(own) => {
            assert_eq!(token, own);
            let set = after.into_response();
            assert!(
                set.headers().get(header::SET_COOKIE).is_none(),
                "a good token is kept"
            );
        }
        None => assert_eq!(after.get(CSRF).map(|c| c.value().to_owned()), Some(token)),
    }

    let presented_device = jar.get(DEVICE).map(|c| c.value().to_owned());
    let (_, device) = cookies::device_id(jar);
    assert!(DeviceId::parse(&device).is_ok(), "{device:?}");
    assert!(device.starts_with("web-"));
    if let Some(own) = presented_device
        && own != device
    {
        assert!(!own.strip_prefix("web-").is_some_and(|r| well_formed(r, 16)));
    }
});
