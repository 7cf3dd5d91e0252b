use leptos::prelude::*;
use leptos_router::components::A;

use crate::components::PageHydrated;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <main class="content">
            <h1>"Page not found"</h1>
            <p><A href="/">"Back to the dashboard"</A></p>
            <PageHydrated/>
        </main>
    }
}
