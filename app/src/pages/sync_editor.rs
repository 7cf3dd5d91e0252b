//! The sync editor: its fields, and the form that builds a sync from saved data sources.
//! The form is loaded lazily (its own wasm chunk in a `--split` release build), since the
//! Syncs page is mostly read.

use idra_core::model::{
    Endpoint, SyncConfig, SyncInput, SyncMode, TableView, ValidationError, WriteMode,
};
use leptos::prelude::*;

use crate::api::{discover_tables, list_datasource_choices, SaveSync, UiError};
use crate::components::field_error;

/// What a new sync starts with.
fn new_sync() -> SyncInput {
    let nowhere = Endpoint {
        datasource_id: String::new(),
        table: String::new(),
        query: None,
    };
    SyncInput {
        name: String::new(),
        source: nowhere.clone(),
        destination: nowhere,
        mode: SyncMode::ById,
        write_mode: WriteMode::Insert,
        key_columns: Vec::new(),
        timestamp_column: None,
        batch_size: 10_000,
        poll_interval_secs: 5,
        settle_secs: 0,
        enabled: true,
    }
}

/// A stored sync as it would be submitted again, unchanged.
fn stored_input(s: &SyncConfig) -> SyncInput {
    SyncInput {
        name: s.name.clone(),
        source: s.source.clone(),
        destination: s.destination.clone(),
        mode: s.mode,
        write_mode: s.write_mode,
        key_columns: s.key_columns.clone(),
        timestamp_column: s.timestamp_column.clone(),
        batch_size: s.batch_size,
        poll_interval_secs: s.poll_interval_secs,
        settle_secs: s.settle_secs,
        enabled: s.enabled,
    }
}

/// The form's fields as typed, before they are read into a sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditorFields {
    pub name: String,
    pub source_ds: String,
    pub source_table: String,
    pub source_query: String,
    pub dest_ds: String,
    pub dest_table: String,
    pub mode: String,
    /// Key columns, comma-separated.
    pub key: String,
    pub timestamp: String,
    pub write_mode: String,
    pub batch_size: String,
    pub poll: String,
}

impl EditorFields {
    /// The fields showing `draft`.
    fn of(draft: &SyncInput) -> Self {
        Self {
            name: draft.name.clone(),
            source_ds: draft.source.datasource_id.clone(),
            source_table: draft.source.table.clone(),
            source_query: draft.source.query.clone().unwrap_or_default(),
            dest_ds: draft.destination.datasource_id.clone(),
            dest_table: draft.destination.table.clone(),
            mode: draft.mode.as_str().into(),
            key: draft.key_columns.join(", "),
            timestamp: draft.timestamp_column.clone().unwrap_or_default(),
            write_mode: draft.write_mode.as_str().into(),
            batch_size: draft.batch_size.to_string(),
            poll: draft.poll_interval_secs.to_string(),
        }
    }
}

/// The sync to save: `draft` (the stored sync, or a new one's defaults) with what the form
/// edits taken from `fields`. Everything the form does not show — paused or not, the settle
/// time, a timestamp column the mode does not use — stays as in `draft`, except a settle time
/// once the mode has no timestamp (it only applies there, and the form cannot clear it).
/// A field that cannot be read is refused, naming it as the server would.
pub fn draft_input(draft: &SyncInput, fields: &EditorFields) -> Result<SyncInput, ValidationError> {
    let mode = SyncMode::from_name(&fields.mode)
        .ok_or_else(|| ValidationError::new("mode", "pick a mode"))?;
    let write_mode = WriteMode::from_name(&fields.write_mode)
        .ok_or_else(|| ValidationError::new("write_mode", "pick insert or upsert"))?;
    let batch_size = fields
        .batch_size
        .trim()
        .parse()
        .map_err(|_| ValidationError::new("batch_size", "must be a whole number"))?;
    let poll_interval_secs = fields.poll.trim().parse().map_err(|_| {
        ValidationError::new("poll_interval_secs", "must be a whole number of seconds")
    })?;
    let query = Some(fields.source_query.trim().to_string()).filter(|q| !q.is_empty());
    let (timestamp_column, settle_secs) = if mode.needs_timestamp() {
        let typed = fields.timestamp.trim();
        (
            Some(typed.to_string()).filter(|t| !t.is_empty()),
            draft.settle_secs,
        )
    } else {
        (draft.timestamp_column.clone(), 0)
    };
    Ok(SyncInput {
        name: fields.name.trim().to_string(),
        source: Endpoint {
            datasource_id: fields.source_ds.clone(),
            table: if query.is_some() {
                String::new()
            } else {
                fields.source_table.clone()
            },
            query,
        },
        destination: Endpoint {
            datasource_id: fields.dest_ds.clone(),
            table: fields.dest_table.trim().to_string(),
            query: draft.destination.query.clone(),
        },
        mode,
        write_mode,
        key_columns: fields
            .key
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect(),
        timestamp_column,
        batch_size,
        poll_interval_secs,
        settle_secs,
        enabled: draft.enabled,
    })
}

/// The editor: the sync it started from, and its fields.
#[derive(Clone, Copy)]
pub struct Editor {
    id: RwSignal<String>,
    /// The stored sync (or a new one's defaults) the fields are edits of.
    draft: RwSignal<SyncInput>,
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
        let draft = new_sync();
        let f = EditorFields::of(&draft);
        Self {
            id: RwSignal::new(String::new()),
            draft: RwSignal::new(draft),
            name: RwSignal::new(f.name),
            source_ds: RwSignal::new(f.source_ds),
            source_table: RwSignal::new(f.source_table),
            source_query: RwSignal::new(f.source_query),
            dest_ds: RwSignal::new(f.dest_ds),
            dest_table: RwSignal::new(f.dest_table),
            mode: RwSignal::new(f.mode),
            key: RwSignal::new(f.key),
            timestamp: RwSignal::new(f.timestamp),
            write_mode: RwSignal::new(f.write_mode),
            batch_size: RwSignal::new(f.batch_size),
            poll: RwSignal::new(f.poll),
        }
    }

    /// Edits `s`, or (`clone`) a new sync with all of its settings.
    pub fn load(&self, s: &SyncConfig, clone: bool) {
        let mut draft = stored_input(s);
        if clone {
            draft.name = format!("{} (copy)", s.name);
        }
        self.id
            .set(if clone { String::new() } else { s.id.clone() });
        self.show(draft);
    }

    /// Empty fields for a new sync.
    pub fn clear(&self) {
        self.id.set(String::new());
        self.show(new_sync());
    }

    fn show(&self, draft: SyncInput) {
        let f = EditorFields::of(&draft);
        self.draft.set(draft);
        self.name.set(f.name);
        self.source_ds.set(f.source_ds);
        self.source_table.set(f.source_table);
        self.source_query.set(f.source_query);
        self.dest_ds.set(f.dest_ds);
        self.dest_table.set(f.dest_table);
        self.mode.set(f.mode);
        self.key.set(f.key);
        self.timestamp.set(f.timestamp);
        self.write_mode.set(f.write_mode);
        self.batch_size.set(f.batch_size);
        self.poll.set(f.poll);
    }

    fn fields(self) -> EditorFields {
        EditorFields {
            name: self.name.get_untracked(),
            source_ds: self.source_ds.get_untracked(),
            source_table: self.source_table.get_untracked(),
            source_query: self.source_query.get_untracked(),
            dest_ds: self.dest_ds.get_untracked(),
            dest_table: self.dest_table.get_untracked(),
            mode: self.mode.get_untracked(),
            key: self.key.get_untracked(),
            timestamp: self.timestamp.get_untracked(),
            write_mode: self.write_mode.get_untracked(),
            batch_size: self.batch_size.get_untracked(),
            poll: self.poll.get_untracked(),
        }
    }

    /// Saves the draft with the form's edits; a field that cannot be read is reported next
    /// to it, as the server's refusals are, without a round trip.
    fn save(self, save: ServerAction<SaveSync>) {
        match self
            .draft
            .with_untracked(|d| draft_input(d, &self.fields()))
        {
            Ok(input) => {
                let id = Some(self.id.get_untracked()).filter(|id| !id.is_empty());
                save.dispatch(SaveSync { id, input });
            }
            Err(invalid) => save.value().set(Some(Err(UiError::from(invalid)))),
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
        <form class="stacked" on:submit=move |ev| { ev.prevent_default(); editor.save(save); }>
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
            <input id="sync-key" list="sync-columns" placeholder="id, or several: a, b" prop:value=editor.key on:input=move |ev| editor.key.set(event_target_value(&ev))/>
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored sync with settings the form does not show: paused, a settle time and a
    /// two-column key.
    fn stored() -> SyncInput {
        SyncInput {
            name: "orders".into(),
            source: Endpoint {
                datasource_id: "a".into(),
                table: "public.orders".into(),
                query: None,
            },
            destination: Endpoint {
                datasource_id: "b".into(),
                table: "orders".into(),
                query: None,
            },
            mode: SyncMode::ByTimestamp,
            write_mode: WriteMode::Upsert,
            key_columns: vec!["a".into(), "b".into()],
            timestamp_column: Some("updated_at".into()),
            batch_size: 500,
            poll_interval_secs: 30,
            settle_secs: 15,
            enabled: false,
        }
    }

    #[test]
    fn saving_unchanged_fields_gives_back_the_stored_sync() {
        let draft = stored();
        let fields = EditorFields::of(&draft);
        assert_eq!(fields.key, "a, b");
        assert_eq!(draft_input(&draft, &fields).unwrap(), draft);
    }

    #[test]
    fn a_paused_sync_stays_paused() {
        let draft = stored();
        let mut fields = EditorFields::of(&draft);
        fields.name = "renamed".into();
        let saved = draft_input(&draft, &fields).unwrap();
        assert!(!saved.enabled);
        assert_eq!(saved.name, "renamed");
    }

    #[test]
    fn the_settle_time_is_kept() {
        let draft = stored();
        let mut fields = EditorFields::of(&draft);
        fields.batch_size = " 1000 ".into();
        let saved = draft_input(&draft, &fields).unwrap();
        assert_eq!(saved.settle_secs, 15);
        assert_eq!(saved.batch_size, 1000);
        // A mode without timestamps has no settle time (the server would refuse one).
        fields.mode = SyncMode::ById.as_str().into();
        let saved = draft_input(&draft, &fields).unwrap();
        assert_eq!(saved.settle_secs, 0);
        assert_eq!(saved.timestamp_column.as_deref(), Some("updated_at"));
    }

    #[test]
    fn a_composite_key_is_kept() {
        let draft = stored();
        let mut fields = EditorFields::of(&draft);
        assert_eq!(
            draft_input(&draft, &fields).unwrap().key_columns,
            ["a", "b"]
        );
        fields.key = " x,y , ,z ".into();
        assert_eq!(
            draft_input(&draft, &fields).unwrap().key_columns,
            ["x", "y", "z"]
        );
    }

    #[test]
    fn a_new_sync_is_enabled_without_settle_time() {
        let draft = new_sync();
        let mut fields = EditorFields::of(&draft);
        fields.key = "id".into();
        let saved = draft_input(&draft, &fields).unwrap();
        assert!(saved.enabled);
        assert_eq!(saved.settle_secs, 0);
        assert_eq!(saved.key_columns, ["id"]);
        assert_eq!((saved.batch_size, saved.poll_interval_secs), (10_000, 5));
    }

    #[test]
    fn the_draft_travels_whole_to_the_server() {
        use crate::api::JsonText;
        use leptos::server_fn::{Decodes, Encodes};
        let args = SaveSync {
            id: Some("s1".into()),
            input: stored(),
        };
        let back: SaveSync = JsonText::decode(JsonText::encode(&args).unwrap()).unwrap();
        assert_eq!((back.id, back.input), (args.id, args.input));
    }

    #[test]
    fn a_bad_number_is_refused_naming_its_field() {
        let draft = stored();
        let mut fields = EditorFields::of(&draft);
        fields.batch_size = "lots".into();
        let err = draft_input(&draft, &fields).unwrap_err();
        assert_eq!(err.field, "batch_size");
        assert_eq!(err.message, "must be a whole number");
        let mut fields = EditorFields::of(&draft);
        fields.poll = "-1".into();
        assert_eq!(
            draft_input(&draft, &fields).unwrap_err().field,
            "poll_interval_secs"
        );
    }
}
