use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::list_datasources;
use crate::components::{ErrorMessage, Loading};

#[component]
pub fn DataSourcesPage() -> impl IntoView {
    let sources = Resource::new(|| (), |_| list_datasources());
    view! {
        <Title text="Data sources · Idra"/>
        <h1>"Data sources"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match sources.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No data sources yet. The store holds no saved connections."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table>
                            <thead><tr><th>"Name"</th><th>"Kind"</th><th>"Connection string"</th><th>"Secrets"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|d| view! {
                                    <tr>
                                        <td>{d.name}</td>
                                        <td>{d.kind.label()}</td>
                                        <td><code>{d.connection_string}</code></td>
                                        <td>{d.secrets_set.iter().map(|s| format!("{s}: ••••")).collect::<Vec<_>>().join(", ")}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
