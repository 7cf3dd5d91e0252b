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
    let client = server::client_addr().await;
    let signed_in = services.login(username.trim(), &password, client).await?;
    server::sign_in(&server::session().await?, &signed_in).await?;
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
    let signed_in = server::services()?
        .change_own_password(&actor, current_password, new_password)
        .await?;
    // The user's other sessions end with the old password; this one carries on.
    server::sign_in(&server::session().await?, &signed_in).await?;
    Ok(())
}
