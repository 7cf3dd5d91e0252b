use idra_core::model::{SyncConfig, SyncState, TableView};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{
    discover_tables, list_datasources, list_sync_page, DeleteSync, ImportSyncs, RunSyncNow,
    SaveSync, SetSyncEnabled, PAGE_SIZE,
};
use crate::components::{action_error, field_error, ErrorMessage, Loading};

const MODES: [(&str, &str); 6] = [
    ("by_id", "By id"),
    ("by_timestamp", "By timestamp"),
    ("last_destination_id", "Last destination id"),
    ("last_destination_timestamp", "Last destination timestamp"),
    ("full_refresh_overwrite", "Full refresh (overwrite)"),
    ("full_refresh_append", "Full refresh (append)"),
];

/// The editor's fields.
#[derive(Clone, Copy)]
struct Editor {
    id: RwSignal<String>,
    name: RwSignal<String>,
    source_ds: RwSignal<String>,
    source_table: RwSignal<String>,
    source_query: RwSignal<String>,
    dest_ds: RwSignal<String>,
    dest_table: RwSignal<String>,
    mode: RwSignal<String>,
    key: RwSignal<String>,
    timestamp: RwSignal<String>,
    write_mode: RwSignal<String>,
    batch_size: RwSignal<String>,
    poll: RwSignal<String>,
}

impl Editor {
    fn new() -> Self {
        Self {
            id: RwSignal::new(String::new()),
            name: RwSignal::new(String::new()),
            source_ds: RwSignal::new(String::new()),
            source_table: RwSignal::new(String::new()),
            source_query: RwSignal::new(String::new()),
            dest_ds: RwSignal::new(String::new()),
            dest_table: RwSignal::new(String::new()),
            mode: RwSignal::new("by_id".into()),
            key: RwSignal::new(String::new()),
            timestamp: RwSignal::new(String::new()),
            write_mode: RwSignal::new("insert".into()),
            batch_size: RwSignal::new("10000".into()),
            poll: RwSignal::new("5".into()),
        }
    }

    fn load(&self, s: &SyncConfig, clone: bool) {
        let json = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
        self.id
            .set(if clone { String::new() } else { s.id.clone() });
        self.name.set(if clone {
            format!("{} (copy)", s.name)
        } else {
            s.name.clone()
        });
        self.source_ds.set(s.source.datasource_id.clone());
        self.source_table.set(s.source.table.clone());
        self.source_query
            .set(s.source.query.clone().unwrap_or_default());
        self.dest_ds.set(s.destination.datasource_id.clone());
        self.dest_table.set(s.destination.table.clone());
        self.mode
            .set(json(serde_json::to_value(s.mode).unwrap_or_default()));
        self.key
            .set(s.key_columns.first().cloned().unwrap_or_default());
        self.timestamp
            .set(s.timestamp_column.clone().unwrap_or_default());
        self.write_mode
            .set(json(serde_json::to_value(s.write_mode).unwrap_or_default()));
        self.batch_size.set(s.batch_size.to_string());
        self.poll.set(s.poll_interval_secs.to_string());
    }

    fn to_action(self) -> SaveSync {
        SaveSync {
            id: self.id.get_untracked(),
            name: self.name.get_untracked(),
            source_datasource: self.source_ds.get_untracked(),
            source_table: self.source_table.get_untracked(),
            source_query: self.source_query.get_untracked(),
            destination_datasource: self.dest_ds.get_untracked(),
            destination_table: self.dest_table.get_untracked(),
            mode: self.mode.get_untracked(),
            key_column: self.key.get_untracked(),
            timestamp_column: self.timestamp.get_untracked(),
            write_mode: self.write_mode.get_untracked(),
            batch_size: self.batch_size.get_untracked(),
            poll_interval: self.poll.get_untracked(),
        }
    }
}

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
    let runs = Resource::new(
        move || history_of.get(),
        |which| async move {
            match which {
                Some((id, _)) => crate::api::sync_runs(id).await,
                None => Ok(Vec::new()),
            }
        },
    );
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
    let sources = Resource::new(move || import.version().get(), |_| list_datasources());
    let tables = Resource::new(
        move || editor.source_ds.get(),
        |id| async move {
            if id.is_empty() {
                Ok(Vec::new())
            } else {
                discover_tables(id).await
            }
        },
    );
    let columns = move |tables: &[TableView]| -> Vec<String> {
        let t = editor.source_table.get();
        tables
            .iter()
            .find(|x| x.name == t || x.name.ends_with(&format!(".{t}")))
            .map(|x| x.columns.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default()
    };

    view! {
        <Title text="Syncs · Idra"/>
        <h1>"Syncs"</h1>
        <label for="sync-search">"Search"</label>
        <input id="sync-search" type="search" prop:value=search on:input=move |ev| { search.set(event_target_value(&ev)); page.set(0); }/>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match rows.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(p) if p.total == 0 => view! { <p class="empty">"No syncs yet. Define one below."</p> }.into_any(),
                    Ok(p) => {
                        let pages = p.total.div_ceil(PAGE_SIZE);
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
                                                <td>{serde_json::to_value(s.mode).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()}</td>
                                                <td title=r.status.error.clone().unwrap_or_default()>{state}</td>
                                                <td>{r.status.rows}</td>
                                                <td>{r.status.last_run.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_else(|| "never".into())}</td>
                                                <td>{r.status.agent.clone().unwrap_or_default()}</td>
                                                <td class="actions">
                                                    <button type="button" class="link" aria-label=labels.0 on:click=move |_| editor.load(&edit_s, false)>"Edit"</button>
                                                    <button type="button" class="link" aria-label=labels.1 on:click=move |_| editor.load(&clone_s, true)>"Clone"</button>
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
                            <p class="pager">
                                <button type="button" disabled=move || page.get() == 0 on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"Previous"</button>
                                {format!(" Page {} of {} ({} syncs) ", p.page + 1, pages.max(1), p.total)}
                                <button type="button" disabled=move || page.get() + 1 >= pages on:click=move |_| page.update(|p| *p += 1)>"Next"</button>
                            </p>
                        }.into_any()
                    }
                }
            })}
        </Transition>
        {action_error(toggle)}
        {action_error(delete)}
        {action_error(run_now)}
        {move || matches!(run_now.value().get(), Some(Ok(()))).then(|| view! { <p class="success" role="status">"Run requested."</p> })}

        {move || history_of.get().map(|(_, name)| view! {
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
                                            <td>{r.started_at.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                                            <td>{r.ended_at.format("%H:%M:%S").to_string()}</td>
                                            <td>{r.rows}</td>
                                            <td>{r.outcome}</td>
                                            <td>{r.message.unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Transition>
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

        <h2>{move || if editor.id.get().is_empty() { "New sync" } else { "Edit sync" }}</h2>
        <form class="stacked" on:submit=move |ev| { ev.prevent_default(); save.dispatch(editor.to_action()); }>
            <label for="sync-name">"Name"</label>
            <input id="sync-name" prop:value=editor.name on:input=move |ev| editor.name.set(event_target_value(&ev))/>
            {field_error(save, "name")}
            <label for="sync-src">"Source data source"</label>
            <select id="sync-src" prop:value=editor.source_ds on:change=move |ev| { editor.source_ds.set(event_target_value(&ev)); editor.source_table.set(String::new()); }>
                <option value="">"— pick —"</option>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        sources.await.unwrap_or_default().into_iter().map(|d| {
                            let (id, value) = (d.id.clone(), d.id);
                            view! { <option value=value selected=move || editor.source_ds.get() == id>{d.name}</option> }
                        }).collect_view()
                    })}
                </Transition>
            </select>
            {field_error(save, "source.datasource_id")}
            <label for="sync-src-table">"Source table"</label>
            <select id="sync-src-table" prop:value=editor.source_table on:change=move |ev| editor.source_table.set(event_target_value(&ev))>
                <option value="">"— pick, or write a query below —"</option>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match tables.await {
                            Ok(list) => list.into_iter().map(|t| {
                                let (n, value, label) = (t.name.clone(), t.name.clone(), t.name);
                                view! { <option value=value selected=move || editor.source_table.get() == n>{label}</option> }
                            }).collect_view().into_any(),
                            Err(_) => ().into_any(),
                        }
                    })}
                </Transition>
            </select>
            {field_error(save, "source.table")}
            <label for="sync-query">"Custom query"</label>
            <textarea id="sync-query" rows="2" placeholder="SELECT … (instead of a table)" prop:value=editor.source_query
                on:input=move |ev| editor.source_query.set(event_target_value(&ev))></textarea>
            {field_error(save, "source.query")}
            <label for="sync-dst">"Destination data source"</label>
            <select id="sync-dst" prop:value=editor.dest_ds on:change=move |ev| editor.dest_ds.set(event_target_value(&ev))>
                <option value="">"— pick —"</option>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        sources.await.unwrap_or_default().into_iter().map(|d| {
                            let (id, value) = (d.id.clone(), d.id);
                            view! { <option value=value selected=move || editor.dest_ds.get() == id>{d.name}</option> }
                        }).collect_view()
                    })}
                </Transition>
            </select>
            {field_error(save, "destination.datasource_id")}
            <label for="sync-dst-table">"Destination table"</label>
            <input id="sync-dst-table" placeholder="existing or new" prop:value=editor.dest_table on:input=move |ev| editor.dest_table.set(event_target_value(&ev))/>
            {field_error(save, "destination.table")}
            <label for="sync-mode">"Mode"</label>
            <select id="sync-mode" prop:value=editor.mode on:change=move |ev| editor.mode.set(event_target_value(&ev))>
                {MODES.iter().map(|(v, l)| view! { <option value=*v selected=move || editor.mode.get() == *v>{*l}</option> }).collect_view()}
            </select>
            {field_error(save, "mode")}
            <label for="sync-key">"Key column"</label>
            <input id="sync-key" list="sync-columns" prop:value=editor.key on:input=move |ev| editor.key.set(event_target_value(&ev))/>
            {field_error(save, "key_columns")}
            <datalist id="sync-columns">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let list = tables.await.unwrap_or_default();
                        columns(&list).into_iter().map(|c| view! { <option value=c/> }).collect_view()
                    })}
                </Transition>
            </datalist>
            <Show when=move || editor.mode.get().contains("timestamp")>
                <label for="sync-ts">"Timestamp column"</label>
                <input id="sync-ts" list="sync-columns" prop:value=editor.timestamp on:input=move |ev| editor.timestamp.set(event_target_value(&ev))/>
            </Show>
            {field_error(save, "timestamp_column")}
            <label for="sync-write">"Write mode"</label>
            <select id="sync-write" prop:value=editor.write_mode on:change=move |ev| editor.write_mode.set(event_target_value(&ev))>
                <option value="insert" selected=move || editor.write_mode.get() == "insert">"Insert"</option>
                <option value="upsert" selected=move || editor.write_mode.get() == "upsert">"Upsert"</option>
            </select>
            <label for="sync-batch">"Batch size"</label>
            <input id="sync-batch" inputmode="numeric" prop:value=editor.batch_size on:input=move |ev| editor.batch_size.set(event_target_value(&ev))/>
            {field_error(save, "batch_size")}
            <label for="sync-poll">"Poll interval (s)"</label>
            <input id="sync-poll" inputmode="numeric" prop:value=editor.poll on:input=move |ev| editor.poll.set(event_target_value(&ev))/>
            {field_error(save, "poll_interval_secs")}
            <div class="buttons"><button type="submit">"Save"</button></div>
        </form>
        {action_error(save)}
        {move || save.value().get().and_then(|r| r.ok()).map(|s| view! { <p class="success" role="status">{format!("Saved {}.", s.name)}</p> })}
    }
}
