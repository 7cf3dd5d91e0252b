use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::cluster_status;
use crate::components::{utc_time, ErrorMessage, Loading};

const REFRESH: Duration = Duration::from_secs(2);

#[component]
pub fn AgentsPage() -> impl IntoView {
    // Refetched every few seconds in the browser, so joins, deaths, elections and moves
    // show up without a reload.
    let tick = RwSignal::new(0u64);
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(move || tick.update(|t| *t += 1), REFRESH) {
            on_cleanup(move || handle.clear());
        }
    });
    let view_data = Resource::new(move || tick.get(), |_| cluster_status());
    view! {
        <Title text="Agents · Idra"/>
        <h1>"Agents"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match view_data.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(c) => {
                        view! {
                            <p>
                                "Leader: " <strong data-testid="leader">{c.leader.clone().unwrap_or_else(|| "none elected".into())}</strong>
                                " · assignment generation " <strong data-testid="generation">{c.generation}</strong>
                            </p>
                            {if c.agents.is_empty() {
                                view! { <p class="empty">"No agents are registered. An agent appears here while its lease is alive."</p> }.into_any()
                            } else {
                                view! {
                                    <table aria-label="Agents">
                                        <thead><tr><th>"Agent"</th><th>"Host"</th><th>"Address"</th><th>"Version"</th><th>"Started"</th><th>"Syncs"</th></tr></thead>
                                        <tbody>
                                            {c.agents.iter().map(|a| {
                                                let n = c.syncs_of(&a.id);
                                                let is_leader = c.is_leader(&a.id);
                                                view! {
                                                    <tr>
                                                        <td>{a.id.clone()}{is_leader.then_some(" (leader)")}</td>
                                                        <td>{a.host.clone()}</td>
                                                        <td>{a.address.clone()}</td>
                                                        <td>{a.version.clone()}</td>
                                                        <td class="time">{utc_time(a.started_at)}</td>
                                                        <td>{n}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                }.into_any()
                            }}
                            <h2>"Assignments"</h2>
                            {if c.assignments.is_empty() {
                                view! { <p class="empty">"No enabled syncs to assign."</p> }.into_any()
                            } else {
                                view! {
                                    <table aria-label="Assignments">
                                        <thead><tr><th>"Sync"</th><th>"Agent"</th><th>"Generation"</th></tr></thead>
                                        <tbody>
                                            {c.assignments.into_iter().map(|r| view! {
                                                <tr>
                                                    <td>{r.sync_name}</td>
                                                    <td>{r.agent.unwrap_or_else(|| "unassigned".into())}</td>
                                                    <td>{r.generation}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
