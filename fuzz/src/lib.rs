//! What the fuzz targets share: driving the server's async extractors to completion and
//! reading the status of what they refused.
//!
//! The extractors never wait on anything but the in-memory body, so a current-thread
//! runtime per thread is enough; building one per input would dominate the run.

use std::cell::RefCell;
use std::future::Future;

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Runs `f` to completion on this thread's runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    RUNTIME.with(|cell| {
        let mut slot = cell.borrow_mut();
        let rt = slot.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime")
        });
        rt.block_on(f)
    })
}

/// A POST with the given `Content-Type` (when it is a valid header value), cookie header
/// and body.
pub fn post(content_type: Option<&[u8]>, cookie: Option<&[u8]>, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::post("/")
        .body(Body::from(body))
        .expect("a request");
    if let Some(ct) = content_type.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        req.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    if let Some(c) = cookie.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        req.headers_mut().insert(header::COOKIE, c);
    }
    req
}

/// The content types worth telling apart: the right one in several spellings, wrong ones,
/// and none.
pub const JSON_TYPES: &[Option<&[u8]>] = &[
    Some(b"application/json"),
    Some(b"application/json; charset=utf-8"),
    Some(b"Application/JSON"),
    Some(b"text/plain"),
    Some(b"application/x-www-form-urlencoded"),
    None,
];

/// Percent-decodes `%XX` escapes (as a URI reader would); None for a broken escape or
/// bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
