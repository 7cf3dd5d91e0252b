use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::list_syncs;
use crate::components::{ErrorMessage, Loading};

#[component]
pub fn SyncsPage() -> impl IntoView {
    let syncs = Resource::new(|| (), |_| list_syncs());
    view! {
        <Title text="Syncs · Idra"/>
        <h1>"Syncs"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match syncs.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No syncs yet. The store holds no sync definitions."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table>
                            <thead><tr><th>"Name"</th><th>"Source"</th><th>"Destination"</th><th>"Mode"</th><th>"Enabled"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|s| view! {
                                    <tr>
                                        <td>{s.name}</td>
                                        <td>{s.source.query.clone().unwrap_or(s.source.table)}</td>
                                        <td>{s.destination.table}</td>
                                        <td>{format!("{:?}", s.mode)}</td>
                                        <td>{if s.enabled { "yes" } else { "no" }}</td>
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
