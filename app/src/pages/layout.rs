use idra_core::model::User;
use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect, A};

use crate::api::{current_user, Logout, UiError};

/// The signed-in user, shared with pages so they can refresh it (e.g. after a password change).
#[derive(Clone, Copy)]
pub struct CurrentUser(pub Resource<Result<Option<User>, UiError>>);

#[component]
pub fn Layout() -> impl IntoView {
    let user = Resource::new(|| (), |_| current_user());
    provide_context(CurrentUser(user));
    let logout = ServerAction::<Logout>::new();
    view! {
        <div class="layout">
            <header class="topbar">
                <span class="brand">"Idra"</span>
                <nav aria-label="Main">
                    <A href="/" exact=true>"Dashboard"</A>
                    <A href="/syncs">"Syncs"</A>
                    <A href="/datasources">"Data sources"</A>
                    <A href="/offsets">"Offsets"</A>
                    <A href="/agents">"Agents"</A>
                    <A href="/users">"Users"</A>
                    <A href="/errors">"Errors"</A>
                </nav>
                <span class="spacer"></span>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        user.await.ok().flatten().map(|u| {
                            view! {
                                <A href="/account">
                                    <span class="whoami">{format!("{} ({})", u.username, u.role)}</span>
                                </A>
                            }
                        })
                    })}
                </Transition>
                <ActionForm action=logout>
                    <button type="submit" class="link">"Sign out"</button>
                </ActionForm>
            </header>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match user.await {
                        Ok(Some(u)) if u.default_password => Some(
                            view! {
                                <div class="banner" role="region" aria-label="Default password warning">
                                    "You are signed in with the default password. "
                                    <A href="/account">"Change the default password"</A>
                                    " before anyone else can."
                                </div>
                            }
                            .into_any(),
                        ),
                        // Signed out in another tab, or the user was deleted.
                        Ok(None) => Some(view! { <Redirect path="/login"/> }.into_any()),
                        _ => None,
                    }
                })}
            </Transition>
            <main class="content">
                <Outlet/>
            </main>
        </div>
    }
}
