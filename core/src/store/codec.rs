//! Every value in the store is JSON wrapped with a schema version, so a later release can
//! read (and migrate) what an earlier one wrote.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::StoreError;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    schema: u32,
    data: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    schema: u32,
    data: T,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(&EnvelopeOut {
        schema: SCHEMA_VERSION,
        data: value,
    })
    .expect("model types always serialise to JSON")
}

pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let env: EnvelopeIn<T> = serde_json::from_slice(bytes).map_err(|e| StoreError::Codec {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    if env.schema > SCHEMA_VERSION {
        return Err(StoreError::Codec {
            key: key.to_string(),
            message: format!(
                "written with schema {} by a newer Idra; this one reads up to {SCHEMA_VERSION}",
                env.schema
            ),
        });
    }
    Ok(env.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_newer_schema_refused() {
        let bytes = encode(&vec![1, 2]);
        assert_eq!(decode::<Vec<i32>>("k", &bytes).unwrap(), vec![1, 2]);
        let err = decode::<Vec<i32>>("k", br#"{"schema":99,"data":[1]}"#).unwrap_err();
        assert!(err.to_string().contains("newer Idra"));
    }
}
