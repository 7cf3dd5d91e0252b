use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;

use crate::connectors::types::Column;
use idra_core::model::{ConnectorKind, KAFKA_OWN_OPTIONS as OWN_OPTIONS, KAFKA_SECRET_FIELDS};

use crate::connectors::{options, ConnectionSpec, ConnectorError};

/// Kafka's secrets, as the model defines them.
pub const SECRET_FIELDS: &[&str] = KAFKA_SECRET_FIELDS;

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
            check_property(k, v)?;
            client.set(k, v.trim());
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

/// The librdkafka properties a data source may set: connection, TLS and SASL settings that
/// carry their values in the option itself, timeouts, buffers, batching and compression.
/// Everything else is refused, in particular what loads code (`plugin.library.paths`,
/// `ssl.engine.location`, `ssl.providers`), runs a command (Kerberos' `kinit`), reads a file
/// on the agent's host (`*.location`, `*.file`) or reaches the host's cloud identity
/// (`sasl.oauthbearer.metadata.authentication.type`). Secrets (`sasl.password`,
/// `ssl.key.pem`, …) arrive as sealed secrets, never as options.
pub const PROPERTIES: &[&str] = &[
    // Who and where.
    "client.id",
    "client.rack",
    "client.dns.lookup",
    "broker.address.family",
    "broker.address.ttl",
    // TLS, with certificates given as PEM text.
    "security.protocol",
    "ssl.ca.pem",
    "ssl.certificate.pem",
    "https.ca.pem",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    "enable.ssl.certificate.verification",
    "ssl.endpoint.identification.algorithm",
    // SASL (no GSSAPI: see `sasl.mechanisms`).
    "sasl.mechanisms",
    "sasl.mechanism",
    "sasl.username",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.credentials.client.id",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.config",
    "enable.sasl.oauthbearer.unsecure.jwt",
    // Sockets, timeouts and retries.
    "socket.timeout.ms",
    "socket.connection.setup.timeout.ms",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "socket.max.fails",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "api.version.request.timeout.ms",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "message.send.max.retries",
    "retries",
    // Metadata.
    "metadata.max.age.ms",
    "metadata.recovery.strategy",
    "metadata.recovery.rebootstrap.trigger.ms",
    "topic.metadata.refresh.interval.ms",
    "topic.metadata.refresh.fast.interval.ms",
    "topic.metadata.refresh.sparse",
    "topic.metadata.propagation.max.ms",
    "allow.auto.create.topics",
    // Sizes.
    "message.max.bytes",
    "message.copy.max.bytes",
    "receive.message.max.bytes",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    // Reading.
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.error.backoff.ms",
    "fetch.queue.backoff.ms",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "isolation.level",
    "check.crcs",
    // Writing.
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.backpressure.threshold",
    "batch.num.messages",
    "batch.size",
    "compression.type",
    "compression.codec",
    "compression.level",
    "partitioner",
    "sticky.partitioning.linger.ms",
];

/// Properties Idra sets itself (an option could only contradict it).
const SET_BY_IDRA: &[(&str, &str)] = &[
    (
        "bootstrap.servers",
        "the brokers go in the connection string",
    ),
    (
        "metadata.broker.list",
        "the brokers go in the connection string",
    ),
    ("group.id", "Idra reads without a consumer group"),
    (
        "enable.auto.commit",
        "Idra keeps the positions in its own offset",
    ),
    (
        "enable.auto.offset.store",
        "Idra keeps the positions in its own offset",
    ),
    (
        "auto.commit.interval.ms",
        "Idra keeps the positions in its own offset",
    ),
    (
        "enable.partition.eof",
        "Idra reads up to the high watermarks itself",
    ),
    (
        "auto.offset.reset",
        "Idra resumes at the oldest retained record (earliest)",
    ),
    ("enable.idempotence", "Idra's producer is always idempotent"),
    ("acks", "Idra waits for every in-sync replica (all)"),
    (
        "request.required.acks",
        "Idra waits for every in-sync replica (all)",
    ),
];

/// Checks one librdkafka property of a data source: its name is on [`PROPERTIES`], and the
/// values that choose a mechanism are ones that stay inside librdkafka.
fn check_property(name: &str, value: &str) -> Result<(), ConnectorError> {
    let refuse = |why: &str| {
        options::error(
            name,
            format!(
                "is not a librdkafka property Idra passes on{why}; allowed: {}; Idra's own: {}",
                PROPERTIES.join(", "),
                OWN_OPTIONS.join(", ")
            ),
        )
    };
    if let Some((_, why)) = SET_BY_IDRA.iter().find(|(n, _)| *n == name) {
        return Err(refuse(&format!(" (Idra sets it itself: {why})")));
    }
    if !PROPERTIES.contains(&name) {
        let why = if ConnectorKind::Kafka
            .secret_options()
            .iter()
            .any(|(p, _)| *p == name)
        {
            " (it is a secret: give it in the data source's secrets)"
        } else if name.contains("kerberos") {
            " (Kerberos makes librdkafka run kinit through a shell on the agent's host)"
        } else if name.contains("plugin")
            || name.contains("engine")
            || name.contains("provider")
            || name.contains("interceptor")
        {
            " (it loads code into the agent)"
        } else if name.ends_with(".location")
            || name.ends_with(".file")
            || name.ends_with(".path")
            || name.ends_with(".paths")
            || name.ends_with(".stores")
            || name.starts_with("offset.store")
        {
            " (it reads or writes a file on the agent's host; give certificates as PEM text in ssl.ca.pem and ssl.certificate.pem, and the key as the ssl_key_pem secret)"
        } else if name.ends_with("_cb") || name.ends_with(".verify_cb") {
            " (callbacks are set by programs, not options)"
        } else if name.contains("metadata.authentication") {
            " (it hands the agent host's cloud identity to the brokers)"
        } else {
            ""
        };
        return Err(refuse(why));
    }
    let one_of = |allowed: &[&str]| {
        if allowed.iter().any(|a| a.eq_ignore_ascii_case(value.trim())) {
            Ok(())
        } else {
            Err(options::error(
                name,
                format!("must be one of {}", allowed.join(", ")),
            ))
        }
    };
    match name {
        "security.protocol" => one_of(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
        // GSSAPI would run `sasl.kerberos.kinit.cmd` through a shell.
        "sasl.mechanisms" | "sasl.mechanism" => {
            one_of(&["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"])
        }
        "sasl.oauthbearer.method" => one_of(&["default", "oidc"]),
        _ => Ok(()),
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
