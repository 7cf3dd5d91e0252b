use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::Login;
use crate::components::action_error;

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let expired =
        leptos_router::hooks::use_query_map().with_untracked(|q| q.get("expired").is_some());
    // Purely client-side: works only once the page has hydrated.
    let show_password = RwSignal::new(false);
    view! {
        <Title text="Sign in · Idra"/>
        <main class="login">
            <h1>"Idra"</h1>
            <p class="muted">"Sign in to manage your syncs."</p>
            {expired.then(|| view! { <p class="error" role="status">"Your session ended: sign in again."</p> })}
            <ActionForm action=login>
                <label for="username">"Username"</label>
                <input id="username" name="username" autocomplete="username" required autofocus/>
                <label for="password">"Password"</label>
                <input
                    id="password"
                    name="password"
                    autocomplete="current-password"
                    required
                    type=move || if show_password.get() { "text" } else { "password" }
                />
                <label class="inline">
                    <input
                        type="checkbox"
                        prop:checked=show_password
                        on:change=move |ev| show_password.set(event_target_checked(&ev))
                    />
                    "Show password"
                </label>
                <button type="submit" disabled=move || login.pending().get()>"Sign in"</button>
            </ActionForm>
            {action_error(login)}
        </main>
    }
}
