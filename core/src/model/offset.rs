use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How far a sync got. One variant per kind of position a source can resume from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cursor {
    /// Nothing copied yet.
    #[default]
    Start,
    /// Last copied integer key.
    Id { last_id: i64 },
    /// Last copied (timestamp, key) pair: rows sharing the timestamp are ordered by key, so
    /// a batch boundary inside a run of equal timestamps never skips a row.
    Timestamp {
        last_ts: DateTime<Utc>,
        last_key: String,
    },
    /// Next offset to read per Kafka partition.
    Partitions {
        #[serde(with = "partition_keys")]
        #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, i64>))]
        offsets: BTreeMap<i32, i64>,
    },
    /// An opaque resume token (MongoDB change streams).
    Token { token: String },
    /// Last object key read (S3).
    ObjectKey { key: String },
}

/// Partition numbers as JSON object keys. Written as strings (JSON keys are strings) and
/// parsed back by hand: serde cannot turn a string key into an integer inside an
/// internally tagged enum like [`Cursor`], so the derived code refused its own output.
mod partition_keys {
    use std::collections::BTreeMap;

    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(m: &BTreeMap<i32, i64>, s: S) -> Result<S::Ok, S::Error> {
        m.iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<String, i64>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i32, i64>, D::Error> {
        BTreeMap::<String, i64>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| {
                k.parse::<i32>()
                    .map(|k| (k, v))
                    .map_err(|_| D::Error::custom(format!("partition `{k}` is not a number")))
            })
            .collect()
    }
}

/// `offsets/<sync-id>`: the cursor plus the fencing token of the lock holder that wrote it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offset {
    pub cursor: Cursor,
    pub fence: i64,
    pub updated_at: DateTime<Utc>,
    /// Set by a person through the UI or API; the next run starts here (instead of at the
    /// destination's own commit record) and its first commit clears it.
    #[serde(default)]
    pub edited: bool,
}

impl Cursor {
    /// A short human description for tables in the UI.
    pub fn describe(&self) -> String {
        match self {
            Cursor::Start => "not started".into(),
            Cursor::Id { last_id } => format!("id > {last_id}"),
            Cursor::Timestamp { last_ts, last_key } => {
                format!("after ({}, {last_key})", last_ts.to_rfc3339())
            }
            Cursor::Partitions { offsets } => offsets
                .iter()
                .map(|(p, o)| format!("p{p}@{o}"))
                .collect::<Vec<_>>()
                .join(", "),
            Cursor::Token { .. } => "resume token".into(),
            Cursor::ObjectKey { key } => format!("after {key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_json_is_tagged_and_round_trips() {
        let c = Cursor::Id { last_id: 42 };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"kind":"id","last_id":42}"#);
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
    }

    #[test]
    fn every_cursor_kind_reads_back_what_it_wrote() {
        let cursors = [
            Cursor::Start,
            Cursor::Id { last_id: -3 },
            Cursor::Timestamp {
                last_ts: DateTime::from_timestamp(1_700_000_000, 123_000).unwrap(),
                last_key: "k".into(),
            },
            Cursor::Partitions {
                offsets: BTreeMap::from([(0, 10), (7, 3)]),
            },
            Cursor::Token { token: "t".into() },
            Cursor::ObjectKey { key: "a/b".into() },
        ];
        for c in cursors {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c, "{json}");
        }
        let bad = r#"{"kind":"partitions","offsets":{"x":1}}"#;
        assert!(serde_json::from_str::<Cursor>(bad).is_err());
    }
}

/// One change of a sync's offset by a person, kept for the record.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffsetChange {
    pub sync_id: String,
    pub by: String,
    pub at: DateTime<Utc>,
    pub old: Option<Cursor>,
    pub new: Cursor,
}
