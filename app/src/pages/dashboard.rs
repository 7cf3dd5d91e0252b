use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use std::time::Duration;

use crate::api::{agent_loads, list_sync_page, overview};
use crate::components::{utc_time, ErrorMessage, Loading};

const SAMPLES: usize = 60;
const EVERY: Duration = Duration::from_secs(2);

/// Rows per second across all syncs, from the change in rows copied between polls.
#[component]
fn ThroughputChart(samples: RwSignal<Vec<f64>>) -> impl IntoView {
    let (w, h) = (600.0, 120.0);
    let points = move || {
        let s = samples.get();
        let max = s.iter().cloned().fold(1.0f64, f64::max);
        s.iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 * w / (SAMPLES - 1) as f64,
                    h - v / max * (h - 10.0)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let latest = move || {
        samples
            .get()
            .last()
            .map(|v| format!("{v:.0} rows/s now"))
            .unwrap_or_else(|| "measuring…".into())
    };
    view! {
        <figure class="chart">
            <svg role="img" aria-label="Rows per second" viewBox=format!("0 0 {w} {h}") width="600" height="120">
                <polyline fill="none" stroke="currentColor" stroke-width="2" points=points/>
            </svg>
            <figcaption>{latest}</figcaption>
        </figure>
    }
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let tick = RwSignal::new(0u64);
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(move || tick.update(|t| *t += 1), EVERY) {
            on_cleanup(move || handle.clear());
        }
    });
    let data = Resource::new(|| (), |_| overview());
    let agents = Resource::new(move || tick.get() / 5, |_| agent_loads());
    let syncs = Resource::new(move || tick.get(), |_| list_sync_page(String::new(), 0));
    let samples = RwSignal::new(Vec::<f64>::new());
    let last_total = RwSignal::new(None::<u64>);
    Effect::new(move |_| {
        if let Some(Ok(page)) = syncs.get() {
            let total: u64 = page.rows.iter().map(|r| r.status.rows).sum();
            if let Some(prev) = last_total.get_untracked() {
                let rate = total.saturating_sub(prev) as f64 / EVERY.as_secs_f64();
                samples.update(|s| {
                    s.push(rate);
                    if s.len() > SAMPLES {
                        s.remove(0);
                    }
                });
            }
            last_total.set(Some(total));
        }
    });
    view! {
        <Title text="Dashboard · Idra"/>
        <h1>"Dashboard"</h1>
        <ThroughputChart samples/>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                agents.await.ok().filter(|list| !list.is_empty()).map(|list| {
                    view! {
                        <table aria-label="Agents">
                            <thead><tr><th>"Agent"</th><th>"Host"</th><th>"Started"</th><th>"Syncs"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|l| {
                                    let a = l.agent;
                                    view! { <tr><td>{a.id}{l.leader.then_some(" (leader)")}</td><td>{a.host}</td><td class="time">{utc_time(a.started_at)}</td><td>{l.syncs}</td></tr> }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }
                })
            })}
        </Transition>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match syncs.await {
                    Ok(p) if !p.rows.is_empty() => Some(view! {
                        <table aria-label="Sync activity">
                            <thead><tr><th>"Sync"</th><th>"State"</th><th>"Rows copied"</th><th>"Rows/s"</th><th>"Lag"</th><th>"Last error"</th></tr></thead>
                            <tbody>
                                {p.rows.into_iter().map(|r| view! {
                                    <tr>
                                        <td>{r.sync.name}</td>
                                        <td>{if r.sync.enabled { format!("{:?}", r.status.state).to_lowercase() } else { "paused".into() }}</td>
                                        <td>{r.status.rows}</td>
                                        <td>{format!("{:.0}", r.status.rate)}</td>
                                        <td>{r.status.lag.map(|l| format!("{l:.1} s")).unwrap_or_else(|| "—".into())}</td>
                                        <td class="bad">{r.status.error.unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }),
                    _ => None,
                }
            })}
        </Transition>
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
