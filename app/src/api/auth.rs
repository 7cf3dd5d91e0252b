use idra_core::model::User;
use leptos::prelude::*;

use super::{JsonAnswer, UiError};

/// Who is signed in, if anyone.
#[server(endpoint = "current_user", output = JsonAnswer)]
pub async fn current_user() -> Result<Option<User>, UiError> {
    super::server::current_user().await
}

#[server(endpoint = "login", output = JsonAnswer)]
pub async fn login(username: String, password: String) -> Result<(), UiError> {
    use super::server;
    let services = server::services()?;
    let ip = server::client_ip().await;
    let user = services.login(username.trim(), &password, ip).await?;
    server::sign_in(&server::session().await?, &user.username).await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server(endpoint = "logout", output = JsonAnswer)]
pub async fn logout() -> Result<(), UiError> {
    use super::server;
    server::sign_out(&server::session().await?).await?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[server(endpoint = "change_password", output = JsonAnswer)]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), UiError> {
    use super::server;
    let actor = server::actor().await?;
    server::services()?
        .change_own_password(&actor, current_password, new_password)
        .await?;
    Ok(())
}
