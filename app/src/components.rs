//! Small pieces shared by pages.

use chrono::{DateTime, Datelike, Timelike, Utc};
use leptos::prelude::*;

use crate::api::UiError;

/// The error of a failed load or action, announced to screen readers.
#[component]
pub fn ErrorMessage(error: UiError) -> impl IntoView {
    if error.signed_out {
        return view! { <SignedOut/> }.into_any();
    }
    view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any()
}

/// Where a page lands when its session ended under it: the browser goes to the login
/// page, which says why (the link is for the moment before it does, and without wasm).
#[component]
fn SignedOut() -> impl IntoView {
    const LOGIN: &str = "/login?expired=1";
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| navigate(LOGIN, Default::default()));
    view! {
        <p class="error" role="alert">
            "Your session ended. " <a href=LOGIN>"Sign in again"</a>
        </p>
    }
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

/// Marks `<body data-hydrated>` once the page it ends has hydrated: the moment the page is
/// interactive, which the end-to-end tests wait for instead of guessing. It must come last:
/// a lazy page hydrates after the shell (once its wasm chunk arrives) and child by child,
/// awaiting each, so this element is reached only when everything before it is live.
#[component]
pub fn PageHydrated() -> impl IntoView {
    let marker = NodeRef::<leptos::html::Span>::new();
    marker.on_load(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "");
        }
    });
    view! { <span hidden node_ref=marker></span> }
}

/// "Previous", "Page n of m (k syncs)", "Next" under a paged table; `noun` is what is
/// counted, singular and plural. `page` is the page asked
/// for (the buttons move it); `shown` is the page the table shows, so the text matches the
/// rows until the next page arrives.
#[component]
pub fn Pager(
    page: RwSignal<usize>,
    shown: usize,
    pages: usize,
    total: usize,
    noun: (&'static str, &'static str),
) -> impl IntoView {
    let noun = if total == 1 { noun.0 } else { noun.1 };
    view! {
        <p class="pager">
            <button type="button" disabled=move || { page.get() == 0 } on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"Previous"</button>
            {format!(" Page {} of {} ({total} {noun}) ", shown + 1, pages.max(1))}
            <button type="button" disabled=move || { page.get() + 1 >= pages } on:click=move |_| page.update(|p| *p += 1)>"Next"</button>
        </p>
    }
}

#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="muted">"Loading…"</p> }
}

/// A time as the UI shows it, `2026-11-21 20:14:32 UTC`. Written with the date's fields
/// rather than `DateTime::format`, whose format-string machinery would otherwise ship in the
/// browser's wasm.
pub fn utc_time(t: DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02} {}",
        t.year(),
        t.month(),
        t.day(),
        clock_time(t)
    )
}

/// `20:14:32 UTC`.
pub fn clock_time(t: DateTime<Utc>) -> String {
    format!("{:02}:{:02}:{:02} UTC", t.hour(), t.minute(), t.second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_strftime() {
        let t = "2026-03-04T05:06:07.891Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(utc_time(t), t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
        assert_eq!(clock_time(t), "05:06:07 UTC");
        let late = "1999-12-31T23:59:59Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(utc_time(late), "1999-12-31 23:59:59 UTC");
    }
}
