use idra_core::model::{ConnectorKind, DataSource};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{
    available_kinds, list_datasources, DeleteDatasource, SaveDatasource, TestDatasource,
};
use crate::components::{action_error, field_error, ErrorMessage, Loading};

/// The form's fields, filled by "Edit" or "Clone" and read by "Test connection" and "Save".
#[derive(Clone, Copy)]
struct Form {
    id: RwSignal<String>,
    name: RwSignal<String>,
    kind: RwSignal<String>,
    connection_string: RwSignal<String>,
    password: RwSignal<String>,
    /// Kind-specific options, `key = value` per line.
    options: RwSignal<String>,
    /// The stored data source has a password (shown as ••••, kept unless retyped).
    password_set: RwSignal<bool>,
}

impl Form {
    fn new() -> Self {
        Self {
            id: RwSignal::new(String::new()),
            name: RwSignal::new(String::new()),
            kind: RwSignal::new(ConnectorKind::Postgres.as_str().to_string()),
            connection_string: RwSignal::new(String::new()),
            password: RwSignal::new(String::new()),
            options: RwSignal::new(String::new()),
            password_set: RwSignal::new(false),
        }
    }

    fn load(&self, d: &DataSource, clone: bool) {
        self.id
            .set(if clone { String::new() } else { d.id.clone() });
        self.name.set(if clone {
            format!("{} (copy)", d.name)
        } else {
            d.name.clone()
        });
        self.kind.set(d.kind.as_str().to_string());
        self.connection_string.set(d.connection_string.clone());
        self.password.set(String::new());
        self.options.set(
            d.options
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        // A clone keeps no secret: the new data source must be given its own.
        self.password_set
            .set(!clone && d.secrets_set.contains("password"));
    }
}

#[component]
pub fn DataSourcesPage() -> impl IntoView {
    let form = Form::new();
    let save = ServerAction::<SaveDatasource>::new();
    let test = ServerAction::<TestDatasource>::new();
    let delete = ServerAction::<DeleteDatasource>::new();
    let search = RwSignal::new(String::new());
    let sources = Resource::new(
        move || (save.version().get(), delete.version().get()),
        |_| list_datasources(),
    );
    let kinds = Resource::new(|| (), |_| available_kinds());
    // After a successful save, start a fresh form.
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            form.id.set(saved.id.clone());
            form.password.set(String::new());
            form.password_set
                .set(saved.secrets_set.contains("password"));
        }
    });
    let values = move || {
        (
            form.id.get_untracked(),
            form.name.get_untracked(),
            form.kind.get_untracked(),
            form.connection_string.get_untracked(),
            form.password.get_untracked(),
            form.options.get_untracked(),
        )
    };

    view! {
        <Title text="Data sources · Idra"/>
        <h1>"Data sources"</h1>
        <label for="ds-search">"Search"</label>
        <input id="ds-search" type="search" prop:value=search on:input=move |ev| search.set(event_target_value(&ev))/>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match sources.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No data sources yet. Add one below."</p>
                    }.into_any(),
                    Ok(list) => {
                        let needle = search.get().to_lowercase();
                        let shown: Vec<DataSource> = list.into_iter().filter(|d| needle.is_empty() || d.name.to_lowercase().contains(&needle) || d.connection_string.to_lowercase().contains(&needle)).collect();
                        view! {
                            <table aria-label="Data sources">
                                <thead><tr><th>"Name"</th><th>"Kind"</th><th>"Connection string"</th><th>"Secrets"</th><th></th></tr></thead>
                                <tbody>
                                    {shown.into_iter().map(|d| {
                                        let (edit_d, clone_d) = (d.clone(), d.clone());
                                        let id = d.id.clone();
                                        let (edit_label, clone_label, delete_label) = (format!("Edit {}", d.name), format!("Clone {}", d.name), format!("Delete {}", d.name));
                                        view! {
                                            <tr>
                                                <td>{d.name.clone()}</td>
                                                <td>{d.kind.label()}</td>
                                                <td><code>{d.connection_string.clone()}</code></td>
                                                <td>{d.secrets_set.iter().map(|s| format!("{s}: ••••")).collect::<Vec<_>>().join(", ")}</td>
                                                <td class="actions">
                                                    <button type="button" class="link" aria-label=edit_label on:click=move |_| form.load(&edit_d, false)>"Edit"</button>
                                                    <button type="button" class="link" aria-label=clone_label on:click=move |_| form.load(&clone_d, true)>"Clone"</button>
                                                    <button type="button" class="danger" aria-label=delete_label
                                                        on:click=move |_| { delete.dispatch(DeleteDatasource { id: id.clone() }); }>"Delete"</button>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }
                }
            })}
        </Transition>
        {action_error(delete)}

        <h2>{move || if form.id.get().is_empty() { "New data source" } else { "Edit data source" }}</h2>
        <form class="stacked" on:submit=move |ev| {
            ev.prevent_default();
            let (id, name, kind, connection_string, password, options) = values();
            save.dispatch(SaveDatasource { id, name, kind, connection_string, password, options });
        }>
            <label for="ds-name">"Name"</label>
            <input id="ds-name" required prop:value=form.name on:input=move |ev| form.name.set(event_target_value(&ev))/>
            {field_error(save, "name")}
            <label for="ds-kind">"Kind"</label>
            <select id="ds-kind" prop:value=form.kind on:change=move |ev| form.kind.set(event_target_value(&ev))>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let available = kinds.await.unwrap_or_default();
                        ConnectorKind::ALL.iter().map(|k| {
                            let ok = available.iter().any(|a| a == k.as_str());
                            let label = if ok { k.label().to_string() } else { format!("{} (unavailable)", k.label()) };
                            view! { <option value=k.as_str() disabled=!ok selected=move || form.kind.get() == k.as_str()>{label}</option> }
                        }).collect_view()
                    })}
                </Transition>
            </select>
            {field_error(save, "kind")}
            <label for="ds-cs">"Connection string"</label>
            <input id="ds-cs" required placeholder=move || kind_of(&form.kind.get()).connection_example() prop:value=form.connection_string
                on:input=move |ev| form.connection_string.set(event_target_value(&ev))/>
            {field_error(save, "connection_string")}
            <label for="ds-password">"Password"</label>
            <input id="ds-password" type="password" autocomplete="new-password"
                placeholder=move || if form.password_set.get() { "••••" } else { "" }
                prop:value=form.password on:input=move |ev| form.password.set(event_target_value(&ev))/>
            <span class="muted hint">{move || if form.password_set.get() { "Stored; leave empty to keep it." } else { "" }}</span>
            <label for="ds-options">"Options"</label>
            <textarea id="ds-options" rows="3" placeholder=move || kind_of(&form.kind.get()).options_example()
                prop:value=form.options on:input=move |ev| form.options.set(event_target_value(&ev))></textarea>
            {field_error(save, "options")}
            <div class="buttons">
                <button type="button" on:click=move |_| {
                    let (id, name, kind, connection_string, password, options) = values();
                    test.dispatch(TestDatasource { id, name, kind, connection_string, password, options });
                }>"Test connection"</button>
                <button type="submit">"Save"</button>
                <button type="button" class="link" on:click=move |_| {
                    let fresh = Form::new();
                    form.id.set(String::new());
                    form.name.set(String::new());
                    form.kind.set(fresh.kind.get_untracked());
                    form.connection_string.set(String::new());
                    form.password.set(String::new());
                    form.options.set(String::new());
                    form.password_set.set(false);
                }>"New"</button>
            </div>
        </form>
        {move || test.value().get().map(|r| match r {
            Ok(message) => view! { <p class="success" role="status">{message}</p> }.into_any(),
            Err(error) => view! { <ErrorMessage error/> }.into_any(),
        })}
        {action_error(save)}
        {move || save.value().get().and_then(|r| r.ok()).map(|d| view! {
            <p class="success" role="status">{format!("Saved {}.", d.name)}</p>
        })}
    }
}

/// The kind the form shows (Postgres until one is chosen).
fn kind_of(value: &str) -> ConnectorKind {
    ConnectorKind::parse(value).unwrap_or(ConnectorKind::Postgres)
}
