//! How server functions' answers travel: JSON, exactly as `server_fn`'s own `Json`, but
//! decoded from text (`serde_json::from_str`) rather than from bytes (`from_slice`).
//!
//! Why: a page's data reaches the browser twice, once embedded in the server-rendered HTML
//! for hydration (Leptos decodes that with `from_str`) and once as the answer to a later
//! call. With `server_fn`'s `Json` the second path used `from_slice`, so the wasm carried two
//! copies of every type's JSON decoder. One decoder per type cut the wasm's code by 5 %
//! (101 KB before wasm-opt) and a first visit to the Syncs page by 5.7 KB gzip.

use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::de::{DeserializeOwned, Error as _};
use serde::Serialize;

/// JSON decoded as text; see the module comment.
pub struct JsonText;

/// The output encoding every server function here names (`output = JsonAnswer`).
pub type JsonAnswer = Post<JsonText>;

/// The input encoding of server functions whose arguments are nested (`input = JsonArgs`):
/// a URL-encoded form carries flat fields only.
pub type JsonArgs = Post<JsonText>;

impl ContentType for JsonText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonText {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| serde_json::Error::custom(format!("the answer is not UTF-8: {e}")))?;
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idra_core::model::SyncMode;

    #[test]
    fn round_trips_like_json() {
        let value = vec![(SyncMode::ById, "naïve".to_string())];
        let bytes = <JsonText as Encodes<_>>::encode(&value).unwrap();
        assert_eq!(bytes, serde_json::to_vec(&value).unwrap());
        let back: Vec<(SyncMode, String)> = JsonText::decode(bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn refuses_bytes_that_are_not_text() {
        let err = <JsonText as Decodes<String>>::decode(Bytes::from_static(b"\"\xff\""));
        assert!(err.unwrap_err().to_string().contains("not UTF-8"));
    }
}
