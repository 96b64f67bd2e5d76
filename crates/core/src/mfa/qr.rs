//! The enrolment QR code: the `otpauth://` URI drawn as an SVG an authenticator app scans.
//!
//! Medium error correction survives a smudged or glare-struck screen without making the
//! code much denser; the four-module quiet zone and whole-pixel modules keep scanners
//! (and `zbarimg`) reading it reliably.

use qrcode::render::svg;
use qrcode::types::QrError as EncodeError;
use qrcode::{EcLevel, QrCode};

/// Smallest side of the image in pixels; the module size is the whole number of pixels
/// that reaches it, so every module is drawn on pixel boundaries.
const MIN_SIDE_PX: u32 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("too much data for one QR code")]
    TooLong,
    #[error("the data cannot be encoded as a QR code")]
    Unencodable,
}

/// An SVG document (with an XML prolog) of a QR code holding `data`, black on white.
pub fn qr_svg(data: &str) -> Result<String, QrError> {
    let code =
        QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|e| match e {
            EncodeError::DataTooLong => QrError::TooLong,
            _ => QrError::Unencodable,
        })?;
    Ok(code
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .min_dimensions(MIN_SIDE_PX, MIN_SIDE_PX)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/Tessera:ana@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
                       &issuer=Tessera&algorithm=SHA1&digits=6&period=30";

    #[test]
    fn an_otpauth_uri_renders_as_a_black_on_white_svg() {
        let svg = qr_svg(URI).unwrap();
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"));
        assert!(svg.contains("<svg"));
        assert!(svg.contains(r##"fill="#000000""##) && svg.contains(r##"fill="#ffffff""##));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn different_data_gives_a_different_image_and_the_same_data_the_same_one() {
        assert_ne!(
            qr_svg(URI).unwrap(),
            qr_svg(&URI.replace("ana", "bob")).unwrap()
        );
        assert_eq!(qr_svg(URI).unwrap(), qr_svg(URI).unwrap());
    }

    #[test]
    fn the_image_is_at_least_the_minimum_size() {
        let svg = qr_svg("x").unwrap();
        let width: u32 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|w| w.parse().ok())
            .unwrap();
        assert!(width >= MIN_SIDE_PX, "{width}");
    }

    #[test]
    fn data_beyond_a_qr_codes_capacity_is_refused() {
        assert_eq!(qr_svg(&"a".repeat(5000)), Err(QrError::TooLong));
    }
}
