use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{errors_page, ERRORS_PER_PAGE};
use crate::components::{utc_time, ErrorMessage, Loading, Pager};

#[component]
pub fn ErrorsPage() -> impl IntoView {
    let page = RwSignal::new(0usize);
    let errors = Resource::new(move || page.get(), errors_page);
    view! {
        <Title text="Errors · Idra"/>
        <h1>"Errors"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match errors.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok((list, _)) if list.is_empty() => view! { <p class="empty">"No errors recorded."</p> }.into_any(),
                    Ok((list, total)) => {
                        let pages = total.div_ceil(ERRORS_PER_PAGE);
                        view! {
                            <table aria-label="Errors">
                                <thead><tr><th>"When"</th><th>"Sync"</th><th>"Outcome"</th><th>"Message"</th><th>"Agent"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|r| view! {
                                        <tr>
                                            <td class="time">{utc_time(r.ended_at)}</td>
                                            <td>{r.sync_id}</td>
                                            <td>{r.outcome.label()}</td>
                                            <td class="bad">{r.message.unwrap_or_default()}</td>
                                            <td>{r.agent.unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <Pager page shown=page.get_untracked() pages total noun=("error", "errors")/>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
