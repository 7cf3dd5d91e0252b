use idra_core::model::User;
use leptos::prelude::*;

use super::{JsonAnswer, UiError};

#[server(endpoint = "users/list", output = JsonAnswer)]
pub async fn list_users() -> Result<Vec<User>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.list_users(&actor).await?)
}

#[server(endpoint = "users/create", output = JsonAnswer)]
pub async fn create_user(
    username: String,
    password: String,
    role: String,
    email: String,
) -> Result<User, UiError> {
    use super::server;
    use idra_core::model::NewUser;
    let actor = server::actor().await?;
    let role: idra_core::model::Role = role
        .parse()
        .map_err(idra_core::service::ServiceError::from)?;
    let new = NewUser {
        username: username.trim().to_string(),
        password,
        role,
        email: email.trim().to_string(),
    };
    Ok(server::services()?.create_user(&actor, new).await?)
}

#[server(endpoint = "users/role", output = JsonAnswer)]
pub async fn set_user_role(username: String, role: String) -> Result<User, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let role: idra_core::model::Role = role
        .parse()
        .map_err(idra_core::service::ServiceError::from)?;
    Ok(server::services()?
        .set_role(&actor, &username, role)
        .await?)
}

#[server(endpoint = "users/reset_password", output = JsonAnswer)]
pub async fn reset_user_password(username: String, password: String) -> Result<User, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?
        .reset_password(&actor, &username, password)
        .await?)
}

#[server(endpoint = "users/delete", output = JsonAnswer)]
pub async fn delete_user(username: String) -> Result<(), UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.delete_user(&actor, &username).await?)
}
