use leptos::prelude::*;
use leptos_meta::Title;

use super::CurrentUser;
use crate::api::ChangePassword;
use crate::components::{action_error, field_error};

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let user = use_context::<CurrentUser>();
    Effect::new(move |_| {
        if matches!(change.value().get(), Some(Ok(()))) {
            if let Some(CurrentUser(u)) = user {
                u.refetch();
            }
        }
    });
    view! {
        <Title text="Account · Idra"/>
        <h1>"Your account"</h1>
        <h2>"Change password"</h2>
        <ActionForm action=change attr:class="stacked">
            <label for="current_password">"Current password"</label>
            <input id="current_password" name="current_password" type="password" autocomplete="current-password" required/>
            {field_error(change, "current_password")}
            <label for="new_password">"New password"</label>
            <input id="new_password" name="new_password" type="password" autocomplete="new-password" required minlength="8"/>
            {field_error(change, "new_password")}
            <button type="submit">"Change password"</button>
        </ActionForm>
        {action_error(change)}
        {move || matches!(change.value().get(), Some(Ok(()))).then(|| view! {
            <p class="success" role="status">"Password changed."</p>
        })}
    }
}
