//! One module per page.

mod account;
mod agents;
mod dashboard;
mod datasources;
mod errors;
mod layout;
mod login;
mod not_found;
mod offsets;
mod sync_editor;
mod sync_runs;
mod syncs;
mod users;

pub use account::AccountPage;
pub use agents::AgentsPage;
pub use dashboard::DashboardPage;
pub use datasources::DataSourcesPage;
pub use errors::ErrorsPage;
pub use layout::{CurrentUser, Layout};
pub use login::LoginPage;
pub use not_found::NotFound;
pub use offsets::OffsetsPage;
pub use syncs::SyncsPage;
pub use users::UsersPage;
