use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::overview;
use crate::components::{ErrorMessage, Loading};

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| overview());
    view! {
        <Title text="Dashboard · Idra"/>
        <h1>"Dashboard"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match data.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(o) => {
                        let c = o.counts.clone();
                        view! {
                            <section class="cards" aria-label="Counts">
                                <div class="card"><span class="num">{c.syncs}</span>" syncs"</div>
                                <div class="card"><span class="num">{c.datasources}</span>" data sources"</div>
                                <div class="card"><span class="num">{c.agents}</span>" agents"</div>
                                <div class="card"><span class="num">{c.assignments}</span>" assignments"</div>
                                <div class="card"><span class="num">{c.errors}</span>" errors"</div>
                            </section>
                            <section>
                                <h2>"Store"</h2>
                                <p>{format!("Backend: {}", o.backend)}</p>
                                <table>
                                    <thead><tr><th>"Member"</th><th>"Health"</th><th>"Detail"</th></tr></thead>
                                    <tbody>
                                        {o.members.into_iter().map(|m| view! {
                                            <tr>
                                                <td>{m.name}</td>
                                                <td class=if m.healthy { "ok" } else { "bad" }>
                                                    {if m.healthy { "healthy" } else { "unreachable" }}
                                                </td>
                                                <td>{m.detail}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </section>
                            {(c.syncs == 0).then(|| view! {
                                <section class="empty">
                                    <h2>"No syncs yet"</h2>
                                    <p>
                                        "Nothing is being copied. Save a source and a destination under "
                                        <A href="/datasources">"Data sources"</A>
                                        ", then define syncs between them."
                                    </p>
                                </section>
                            })}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
