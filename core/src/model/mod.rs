//! The domain model shared by server, agents and the browser. Every type validates itself
//! and reports the offending field by name, so the UI can show the error next to it.

mod agent;
mod datasource;
mod offset;
mod status;
mod sync;
mod user;
mod validation;
mod views;

pub use agent::{AgentInfo, Assignment};
pub use datasource::{
    split_password, ConnectorKind, DataSource, DataSourceInput, SecretInput,
    HTTP_CREDENTIAL_PARAMS, KAFKA_OWN_OPTIONS, KAFKA_SECRET_FIELDS,
};
pub use offset::{Cursor, Offset, OffsetChange};
pub use status::{RunOutcome, RunRecord, SyncState, SyncStatus};
pub use sync::{Endpoint, SyncConfig, SyncInput, SyncMode, WriteMode};
pub use user::{NewUser, Role, User, UserRecord};
pub use validation::{validate_identifier, validate_name, ValidationError};
pub use views::{
    AssignmentRow, ClusterView, ColumnView, Counts, DataSourceChoice, MemberHealth, OffsetPage,
    OffsetRow, Page, SyncPage, SyncRow, TableView,
};
