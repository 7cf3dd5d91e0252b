use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::list_offsets;
use crate::components::{ErrorMessage, Loading};

#[component]
pub fn OffsetsPage() -> impl IntoView {
    let offsets = Resource::new(|| (), |_| list_offsets());
    view! {
        <Title text="Offsets · Idra"/>
        <h1>"Offsets"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match offsets.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No offsets yet: there are no syncs to keep one for."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table>
                            <thead><tr><th>"Sync"</th><th>"Position"</th><th>"Fence"</th><th>"Updated"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|r| {
                                    let (pos, fence, at) = match &r.offset {
                                        Some(o) => (o.cursor.describe(), o.fence.to_string(), o.updated_at.to_rfc3339()),
                                        None => ("not started".to_string(), "—".to_string(), "—".to_string()),
                                    };
                                    view! { <tr><td>{r.sync_name}</td><td>{pos}</td><td>{fence}</td><td>{at}</td></tr> }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
