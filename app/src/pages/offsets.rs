use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{list_offset_page, offset_history, SetOffset};
use crate::components::{action_error, field_error, utc_time, ErrorMessage, Loading, Pager};

#[component]
pub fn OffsetsPage() -> impl IntoView {
    let set = ServerAction::<SetOffset>::new();
    let search = RwSignal::new(String::new());
    let page = RwSignal::new(0usize);
    let offsets = Resource::new(
        move || (search.get(), page.get(), set.version().get()),
        |(search, page, _)| list_offset_page(search, page),
    );
    // The sync being edited: id, name, the cursor as seen (JSON), the new cursor (JSON).
    let editing = RwSignal::new(None::<(String, String)>);
    let seen = RwSignal::new(String::new());
    let cursor = RwSignal::new(String::new());
    let confirmed = RwSignal::new(false);
    let history = Resource::new(
        move || (editing.get().map(|(id, _)| id), set.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => offset_history(id).await,
                None => Ok(Vec::new()),
            }
        },
    );
    view! {
        <Title text="Offsets · Idra"/>
        <h1>"Offsets"</h1>
        <label for="offset-search">"Search"</label>
        <input id="offset-search" type="search" prop:value=search on:input=move |ev| { search.set(event_target_value(&ev)); page.set(0); }/>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match offsets.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(p) if p.total == 0 && search.get_untracked().trim().is_empty() => view! {
                        <p class="empty">"No offsets yet: there are no syncs to keep one for."</p>
                    }.into_any(),
                    Ok(p) if p.total == 0 => view! { <p class="empty">"No sync matches the search."</p> }.into_any(),
                    Ok(p) => {
                        let pages = p.pages();
                        view! {
                            <table aria-label="Offsets">
                                <thead><tr><th>"Sync"</th><th>"Position"</th><th>"Fence"</th><th>"Updated"</th><th></th></tr></thead>
                                <tbody>
                                    {p.rows.into_iter().map(|r| {
                                        let (pos, fence, at) = match &r.offset {
                                            Some(o) => (o.cursor.describe(), o.fence.to_string(), utc_time(o.updated_at)),
                                            None => ("not started".to_string(), "—".to_string(), "—".to_string()),
                                        };
                                        let json = r.offset.as_ref().map(|o| serde_json::to_string(&o.cursor).unwrap_or_default()).unwrap_or_default();
                                        let (id, name) = (r.sync_id.clone(), r.sync_name.clone());
                                        let label = format!("Edit offset of {}", r.sync_name);
                                        view! {
                                            <tr>
                                                <td>{r.sync_name.clone()}{(!r.enabled).then_some(" (paused)")}</td>
                                                <td>{pos}</td><td>{fence}</td><td>{at}</td>
                                                <td><button type="button" class="link" aria-label=label on:click=move |_| {
                                                    editing.set(Some((id.clone(), name.clone())));
                                                    seen.set(json.clone());
                                                    cursor.set(if json.is_empty() { r#"{"kind": "id", "last_id": 0}"#.to_string() } else { json.clone() });
                                                    confirmed.set(false);
                                                }>"Edit"</button></td>
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
        {move || editing.get().map(|(id, name)| {
            let sync_id = id.clone();
            view! {
                <h2>{format!("Offset of {name}")}</h2>
                <p class="muted">
                    "Editing needs the sync paused. Moving the offset back copies rows again (duplicates in insert mode); "
                    "moving it forward skips every row in between for good."
                </p>
                <form class="stacked" on:submit=move |ev| {
                    ev.prevent_default();
                    set.dispatch(SetOffset { sync_id: sync_id.clone(), expected: seen.get_untracked(), cursor: cursor.get_untracked(), confirmed: confirmed.get_untracked() });
                }>
                    <label for="offset-cursor">"New position"</label>
                    <textarea id="offset-cursor" rows="2" prop:value=cursor on:input=move |ev| cursor.set(event_target_value(&ev))></textarea>
                    {field_error(set, "cursor")}
                    <span></span>
                    <label class="inline"><input type="checkbox" prop:checked=confirmed on:change=move |ev| confirmed.set(event_target_checked(&ev))/>
                        "I understand that rows after this position will be copied and rows before it will not"</label>
                    {field_error(set, "confirm")}
                    <div class="buttons"><button type="submit">"Save offset"</button></div>
                </form>
                {action_error(set)}
                {move || matches!(set.value().get(), Some(Ok(()))).then(|| view! { <p class="success" role="status">"Offset saved."</p> })}
                <h2>"Changes"</h2>
                <Transition fallback=Loading>
                    {move || Suspend::new(async move {
                        match history.await {
                            Err(error) => view! { <ErrorMessage error/> }.into_any(),
                            Ok(list) if list.is_empty() => view! { <p class="empty">"Never changed by hand."</p> }.into_any(),
                            Ok(list) => view! {
                                <table aria-label="Offset changes">
                                    <thead><tr><th>"When"</th><th>"Who"</th><th>"From"</th><th>"To"</th></tr></thead>
                                    <tbody>
                                        {list.into_iter().rev().map(|c| view! {
                                            <tr>
                                                <td>{utc_time(c.at)}</td><td>{c.by}</td>
                                                <td>{c.old.map(|o| o.describe()).unwrap_or_else(|| "not started".into())}</td>
                                                <td>{c.new.describe()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                        }
                    })}
                </Transition>
            }
        })}
    }
}
