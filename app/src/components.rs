//! Small pieces shared by pages.

use leptos::prelude::*;

use crate::api::UiError;

/// The error of a failed load or action, announced to screen readers.
#[component]
pub fn ErrorMessage(error: UiError) -> impl IntoView {
    view! { <p class="error" role="alert">{error.to_string()}</p> }
}

/// The error of the last run of `action`, if it failed and concerns no single field.
pub fn action_error<I, O>(action: ServerAction<I>) -> impl IntoView
where
    I: leptos::server_fn::ServerFn<Output = O, Error = UiError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    move || {
        action
            .value()
            .get()
            .and_then(|r| r.err())
            .filter(|e| e.field.is_none())
            .map(|error| view! { <ErrorMessage error/> })
    }
}

/// The error of the last run of `action` when it concerns `field`, shown next to it.
pub fn field_error<I, O>(action: ServerAction<I>, field: &'static str) -> impl IntoView
where
    I: leptos::server_fn::ServerFn<Output = O, Error = UiError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    move || {
        action
            .value()
            .get()
            .and_then(|r| r.err())
            .and_then(|e| e.for_field(field))
            .map(|message| view! { <span class="field-error" role="alert">{message}</span> })
    }
}

#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="muted">"Loading…"</p> }
}
