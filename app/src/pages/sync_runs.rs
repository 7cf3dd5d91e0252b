//! A sync's last runs, shown when asked for (a lazily loaded view: its own wasm chunk in a
//! `--split` release build).

use leptos::prelude::*;

use crate::components::{clock_time, utc_time, ErrorMessage, Loading};

#[lazy]
pub fn sync_runs(id: String, name: String) -> AnyView {
    view! { <SyncRuns id name/> }.into_any()
}

#[component]
fn SyncRuns(id: String, name: String) -> impl IntoView {
    let runs = Resource::new(move || id.clone(), crate::api::sync_runs);
    view! {
        <h2>{format!("Runs of {name}")}</h2>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match runs.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No runs recorded yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table aria-label="Runs">
                            <thead><tr><th>"Started"</th><th>"Ended"</th><th>"Rows"</th><th>"Outcome"</th><th>"Message"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|r| view! {
                                    <tr>
                                        <td class="time">{utc_time(r.started_at)}</td>
                                        <td>{clock_time(r.ended_at)}</td>
                                        <td>{r.rows}</td>
                                        <td>{r.outcome.label()}</td>
                                        <td>{r.message.unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
