use idra_core::model::SyncState;
use leptos::prelude::*;
use leptos_meta::Title;

use super::sync_editor::{sync_form, Editor};
use super::sync_runs::sync_runs;
use crate::api::{list_sync_page, DeleteSync, ImportSyncs, RunSyncNow, SaveSync, SetSyncEnabled};
use crate::components::{action_error, field_error, utc_time, ErrorMessage, Loading, Pager};

fn state_label(s: SyncState) -> &'static str {
    match s {
        SyncState::Idle => "idle",
        SyncState::Running => "running",
        SyncState::Retrying => "retrying",
        SyncState::Failed => "failed",
        SyncState::Paused => "paused",
    }
}

#[component]
pub fn SyncsPage() -> impl IntoView {
    let editor = Editor::new();
    let save = ServerAction::<SaveSync>::new();
    let toggle = ServerAction::<SetSyncEnabled>::new();
    let delete = ServerAction::<DeleteSync>::new();
    let run_now = ServerAction::<RunSyncNow>::new();
    let import = ServerAction::<ImportSyncs>::new();
    let import_text = RwSignal::new(String::new());
    let history_of = RwSignal::new(None::<(String, String)>);
    let search = RwSignal::new(String::new());
    let page = RwSignal::new(0usize);
    let rows = Resource::new(
        move || {
            (
                search.get(),
                page.get(),
                save.version().get(),
                toggle.version().get(),
                delete.version().get(),
                import.version().get(),
            )
        },
        |(search, page, ..)| list_sync_page(search, page),
    );
    let editing = RwSignal::new(false);

    view! {
        <Title text="Syncs · Idra"/>
        <h1>"Syncs"</h1>
        <label for="sync-search">"Search"</label>
        <input id="sync-search" type="search" prop:value=search on:input=move |ev| { search.set(event_target_value(&ev)); page.set(0); }/>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match rows.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(p) if p.total == 0 => view! { <p class="empty">"No syncs yet: press New sync."</p> }.into_any(),
                    Ok(p) => {
                        let pages = p.pages();
                        view! {
                            <table aria-label="Syncs">
                                <thead><tr><th>"Name"</th><th>"Source → destination"</th><th>"Mode"</th><th>"State"</th><th>"Rows"</th><th>"Last run"</th><th>"Agent"</th><th></th></tr></thead>
                                <tbody>
                                    {p.rows.into_iter().map(|r| {
                                        let s = r.sync.clone();
                                        let (edit_s, clone_s) = (s.clone(), s.clone());
                                        let (id1, id2, id3) = (s.id.clone(), s.id.clone(), s.id.clone());
                                        let run_label = format!("Run {} now", s.name);
                                        let history_label = format!("History of {}", s.name);
                                        let history_key = (s.id.clone(), s.name.clone());
                                        let enabled = s.enabled;
                                        let state = if enabled { state_label(r.status.state) } else { "paused" };
                                        let labels = (format!("Edit {}", s.name), format!("Clone {}", s.name), format!("{} {}", if enabled { "Pause" } else { "Resume" }, s.name), format!("Delete {}", s.name));
                                        view! {
                                            <tr>
                                                <td>{s.name.clone()}</td>
                                                <td>{format!("{}.{} → {}.{}", r.source_name, s.source.query.as_ref().map(|_| "query".to_string()).unwrap_or(s.source.table.clone()), r.destination_name, s.destination.table)}</td>
                                                <td>{s.mode.as_str()}</td>
                                                <td title=r.status.error.clone().unwrap_or_default()>{state}</td>
                                                <td>{r.status.rows}</td>
                                                <td class="time">{r.status.last_run.map(utc_time).unwrap_or_else(|| "never".into())}</td>
                                                <td>{r.status.agent.clone().unwrap_or_default()}</td>
                                                <td class="actions">
                                                    <button type="button" class="link" aria-label=labels.0 on:click=move |_| { editor.load(&edit_s, false); editing.set(true); }>"Edit"</button>
                                                    <button type="button" class="link" aria-label=labels.1 on:click=move |_| { editor.load(&clone_s, true); editing.set(true); }>"Clone"</button>
                                                    <button type="button" class="link" aria-label=labels.2 on:click=move |_| { toggle.dispatch(SetSyncEnabled { id: id1.clone(), enabled: !enabled }); }>{if enabled { "Pause" } else { "Resume" }}</button>
                                                    <button type="button" class="link" aria-label=run_label disabled=!enabled on:click=move |_| { run_now.dispatch(RunSyncNow { id: id3.clone() }); }>"Run now"</button>
                                                    <button type="button" class="link" aria-label=history_label on:click=move |_| history_of.set(Some(history_key.clone()))>"History"</button>
                                                    <button type="button" class="danger" aria-label=labels.3 on:click=move |_| { delete.dispatch(DeleteSync { id: id2.clone() }); }>"Delete"</button>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <Pager page shown=p.page pages total=p.total noun=("sync", "syncs")/>
                        }.into_any()
                    }
                }
            })}
        </Transition>
        {action_error(toggle)}
        {action_error(delete)}
        {action_error(run_now)}
        {move || matches!(run_now.value().get(), Some(Ok(()))).then(|| view! { <p class="success" role="status">"Run requested."</p> })}

        // Shown on request, so its code is its own wasm chunk too.
        {move || history_of.get().map(|(id, name)| view! {
            <Suspense fallback=Loading>
                {Suspend::new(sync_runs(id, name))}
            </Suspense>
        })}
        <h2>"Import and export"</h2>
        <p><a href="/api/v1/syncs/export" download="idra-syncs.json">"Export"</a>" all syncs and data sources as JSON (passwords are left out)."</p>
        <form class="stacked" on:submit=move |ev| { ev.prevent_default(); import.dispatch(ImportSyncs { text: import_text.get_untracked() }); }>
            <label for="sync-import">"Sync file"</label>
            <textarea id="sync-import" rows="3" placeholder="Idra's JSON, or the original Idra's array of syncs" prop:value=import_text
                on:input=move |ev| import_text.set(event_target_value(&ev))></textarea>
            {field_error(import, "file")}
            <div class="buttons"><button type="submit">"Import"</button></div>
        </form>
        {action_error(import)}
        {move || import.value().get().and_then(|r| r.ok()).map(|m| view! { <p class="success" role="status">{m}</p> })}

        <div class="buttons">
            <button type="button" on:click=move |_| { editor.clear(); editing.set(true); }>"New sync"</button>
        </div>
        // The editor's code is its own wasm chunk, fetched the first time it opens.
        <Show when=move || editing.get()>
            <Suspense fallback=Loading>
                {move || Suspend::new(sync_form(editor, save))}
            </Suspense>
        </Show>
        {action_error(save)}
        {move || save.value().get().and_then(|r| r.ok()).map(|s| view! { <p class="success" role="status">{format!("Saved {}.", s.name)}</p> })}
    }
}
