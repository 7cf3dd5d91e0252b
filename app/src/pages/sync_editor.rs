//! The sync editor: its fields, and the form that builds a sync from saved data sources.
//! The form is loaded lazily (its own wasm chunk in a `--split` release build), since the
//! Syncs page is mostly read.

use idra_core::model::{SyncConfig, SyncMode, TableView, WriteMode};
use leptos::prelude::*;

use crate::api::{discover_tables, list_datasource_choices, SaveSync};
use crate::components::field_error;

// What a new sync starts with.
const DEFAULT_MODE: SyncMode = SyncMode::ById;
const DEFAULT_WRITE_MODE: WriteMode = WriteMode::Insert;
const DEFAULT_BATCH_SIZE: &str = "10000";
const DEFAULT_POLL_SECS: &str = "5";

/// The editor's fields.
#[derive(Clone, Copy)]
pub struct Editor {
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
    pub fn new() -> Self {
        Self {
            id: RwSignal::new(String::new()),
            name: RwSignal::new(String::new()),
            source_ds: RwSignal::new(String::new()),
            source_table: RwSignal::new(String::new()),
            source_query: RwSignal::new(String::new()),
            dest_ds: RwSignal::new(String::new()),
            dest_table: RwSignal::new(String::new()),
            mode: RwSignal::new(DEFAULT_MODE.as_str().into()),
            key: RwSignal::new(String::new()),
            timestamp: RwSignal::new(String::new()),
            write_mode: RwSignal::new(DEFAULT_WRITE_MODE.as_str().into()),
            batch_size: RwSignal::new(DEFAULT_BATCH_SIZE.into()),
            poll: RwSignal::new(DEFAULT_POLL_SECS.into()),
        }
    }

    pub fn load(&self, s: &SyncConfig, clone: bool) {
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
        self.mode.set(s.mode.as_str().into());
        self.key
            .set(s.key_columns.first().cloned().unwrap_or_default());
        self.timestamp
            .set(s.timestamp_column.clone().unwrap_or_default());
        self.write_mode.set(s.write_mode.as_str().into());
        self.batch_size.set(s.batch_size.to_string());
        self.poll.set(s.poll_interval_secs.to_string());
    }

    /// Empty fields for a new sync.
    pub fn clear(&self) {
        self.id.set(String::new());
        self.name.set(String::new());
        self.source_ds.set(String::new());
        self.source_table.set(String::new());
        self.source_query.set(String::new());
        self.dest_ds.set(String::new());
        self.dest_table.set(String::new());
        self.mode.set(DEFAULT_MODE.as_str().into());
        self.key.set(String::new());
        self.timestamp.set(String::new());
        self.write_mode.set(DEFAULT_WRITE_MODE.as_str().into());
        self.batch_size.set(DEFAULT_BATCH_SIZE.into());
        self.poll.set(DEFAULT_POLL_SECS.into());
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

/// The editor form, as a lazily loaded view.
#[lazy]
pub fn sync_form(editor: Editor, save: ServerAction<SaveSync>) -> AnyView {
    view! { <SyncForm editor save/> }.into_any()
}

#[component]
fn SyncForm(editor: Editor, save: ServerAction<SaveSync>) -> impl IntoView {
    let sources = Resource::new(|| (), |_| list_datasource_choices());
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
                {SyncMode::ALL.map(|m| view! { <option value=m.as_str() selected=move || editor.mode.get() == m.as_str()>{m.label()}</option> }).collect_view()}
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
            <Show when=move || SyncMode::from_name(&editor.mode.get()).is_some_and(SyncMode::needs_timestamp)>
                <label for="sync-ts">"Timestamp column"</label>
                <input id="sync-ts" list="sync-columns" prop:value=editor.timestamp on:input=move |ev| editor.timestamp.set(event_target_value(&ev))/>
            </Show>
            {field_error(save, "timestamp_column")}
            <label for="sync-write">"Write mode"</label>
            <select id="sync-write" prop:value=editor.write_mode on:change=move |ev| editor.write_mode.set(event_target_value(&ev))>
                {WriteMode::ALL.map(|m| view! { <option value=m.as_str() selected=move || editor.write_mode.get() == m.as_str()>{m.label()}</option> }).collect_view()}
            </select>
            <label for="sync-batch">"Batch size"</label>
            <input id="sync-batch" inputmode="numeric" prop:value=editor.batch_size on:input=move |ev| editor.batch_size.set(event_target_value(&ev))/>
            {field_error(save, "batch_size")}
            <label for="sync-poll">"Poll interval (s)"</label>
            <input id="sync-poll" inputmode="numeric" prop:value=editor.poll on:input=move |ev| editor.poll.set(event_target_value(&ev))/>
            {field_error(save, "poll_interval_secs")}
            <div class="buttons"><button type="submit">"Save"</button></div>
        </form>
    }
}
