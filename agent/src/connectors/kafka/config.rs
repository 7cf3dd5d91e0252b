use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;

use crate::connectors::types::Column;
use idra_core::model::{ConnectorKind, KAFKA_OWN_OPTIONS as OWN_OPTIONS};

use crate::connectors::{options, ConnectionSpec, ConnectorError};

/// `password` (or `sasl_password`) is `sasl.password`; the others are the librdkafka
/// properties `ConnectorKind::secret_options` names (`ssl_key_password` is `ssl.key.password`).
pub const SECRET_FIELDS: &[&str] = &[
    "password",
    "sasl_password",
    "ssl_key_password",
    "ssl_keystore_password",
    "ssl_truststore_password",
    "ssl_key_pem",
    "sasl_oauthbearer_client_secret",
];

#[derive(Clone)]
pub struct KafkaConfig {
    /// librdkafka properties, secrets included (never printed).
    pub client: ClientConfig,
    pub brokers: String,
    /// Source: the partitions to read (all when unset).
    pub partitions: Option<Vec<i32>>,
    pub schema: Option<Vec<Column>>,
    /// Source: how long to wait for a record the brokers already hold before calling the
    /// read failed (a batch ends by itself at the partitions' high watermarks).
    pub wait: Duration,
    /// Destination: partitions and replication factor of a topic Idra creates.
    pub new_topic_partitions: i32,
    pub new_topic_replication: i32,
}

impl KafkaConfig {
    pub fn from_spec(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let brokers = spec.connection_string.trim().to_string();
        if brokers.is_empty() || brokers.contains("://") {
            return Err(ConnectorError::fatal(format!(
                "connection_string: `{brokers}` is not a broker list; expected host:port[,host:port…] (TLS and SASL go in the options, e.g. security.protocol = SASL_SSL)"
            )));
        }
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &brokers)
            .set("client.id", "idra");
        for (k, v) in &spec.options {
            if OWN_OPTIONS.contains(&k.as_str()) {
                continue;
            }
            if !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_')
            {
                return Err(options::error(
                    k,
                    format!(
                        "is neither an Idra option ({}) nor a librdkafka property (like security.protocol)",
                        OWN_OPTIONS.join(", ")
                    ),
                ));
            }
            client.set(k, v);
        }
        if let Some(p) = spec.secret("password") {
            client.set("sasl.password", p);
        }
        for (property, secret) in ConnectorKind::Kafka.secret_options() {
            if let Some(value) = spec.secret(secret) {
                client.set(*property, value);
            }
        }
        let partitions = match spec.options.get("partitions") {
            None => None,
            Some(list) => Some(
                list.split(',')
                    .map(|p| {
                        p.trim()
                            .parse::<i32>()
                            .ok()
                            .filter(|p| *p >= 0)
                            .ok_or_else(|| {
                                options::error(
                                    "partitions",
                                    format!("`{list}` must list partition numbers, e.g. 0,1,2"),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Self {
            client,
            brokers,
            partitions,
            schema: options::schema(spec)?,
            wait: Duration::from_millis(options::number(spec, "wait_ms", 10_000)?),
            new_topic_partitions: options::number(spec, "new_topic_partitions", 1)?,
            new_topic_replication: options::number(spec, "new_topic_replication", -1)?,
        })
    }

    /// A consumer that never joins a group nor commits: positions live in Idra's offset.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = self.client.clone();
        c.set("group.id", "idra-unused")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // A stored position below the partition's low watermark (retention deleted
            // those records) resumes at the oldest record still there. librdkafka's default,
            // `latest`, would silently skip every retained record as well.
            .set("auto.offset.reset", "earliest");
        c
    }

    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.client.clone();
        c.set("enable.idempotence", "true").set("acks", "all");
        c
    }
}

/// Classifies a librdkafka error: configuration, credentials, missing topics and oversized
/// records need the user; brokers that cannot be reached are retried.
pub fn kafka_error(e: KafkaError, what: &str) -> ConnectorError {
    use RDKafkaErrorCode as C;
    let text = e.to_string();
    if let KafkaError::ClientCreation(m) | KafkaError::ClientConfig(_, m, _, _) = &e {
        return ConnectorError::fatal(format!(
            "{what}: librdkafka refused the configuration: {m}. Fix the data source's options"
        ));
    }
    match e.rdkafka_error_code() {
        Some(
            C::Authentication
            | C::SaslAuthenticationFailed
            | C::UnsupportedSASLMechanism
            | C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed,
        ) => ConnectorError::fatal(format!(
            "{what}: Kafka refused the credentials ({text}). Check security.protocol, sasl.mechanisms, sasl.username and the data source's password, and the user's ACLs"
        )),
        Some(C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition) => ConnectorError::fatal(format!(
            "{what}: {text}. Check the sync's table (the topic) and the `partitions` option"
        )),
        Some(C::MessageSizeTooLarge | C::InvalidMessageSize) => ConnectorError::fatal(format!(
            "{what}: {text}. Lower the sync's batch size or raise message.max.bytes"
        )),
        _ => ConnectorError::retryable(format!(
            "{what}: {text}. Check the brokers in the connection string and that they are up"
        )),
    }
}
