use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::list_agents;
use crate::components::{ErrorMessage, Loading};

#[component]
pub fn AgentsPage() -> impl IntoView {
    let agents = Resource::new(|| (), |_| list_agents());
    view! {
        <Title text="Agents · Idra"/>
        <h1>"Agents"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match agents.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No agents are registered. An agent appears here while its lease is alive."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table>
                            <thead><tr><th>"Agent"</th><th>"Host"</th><th>"Version"</th><th>"Started"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|a| view! {
                                    <tr><td>{a.id}</td><td>{a.host}</td><td>{a.version}</td><td>{a.started_at.to_rfc3339()}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
