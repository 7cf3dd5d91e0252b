use idra_core::model::{Role, User};
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{list_users, CreateUser, DeleteUser, ResetUserPassword, SetUserRole};
use crate::components::{action_error, field_error, ErrorMessage, Loading};

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let reset = ServerAction::<ResetUserPassword>::new();
    let delete = ServerAction::<DeleteUser>::new();
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                set_role.version().get(),
                reset.version().get(),
                delete.version().get(),
            )
        },
        |_| list_users(),
    );
    view! {
        <Title text="Users · Idra"/>
        <h1>"Users"</h1>
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match users.await {
                    Err(error) => view! { <ErrorMessage error/> }.into_any(),
                    Ok(list) => view! {
                        <UserTable list set_role reset delete/>
                        <h2>"Create user"</h2>
                        <ActionForm action=create attr:class="stacked">
                            <label for="new-username">"Username"</label>
                            <input id="new-username" name="username" required autocomplete="off"/>
                            {field_error(create, "username")}
                            <label for="new-password">"Password"</label>
                            <input id="new-password" name="password" type="password" required autocomplete="new-password"/>
                            {field_error(create, "password")}
                            <label for="new-role">"Role"</label>
                            <select id="new-role" name="role">
                                {Role::ALL.iter().map(|r| view! {
                                    <option value=r.as_str() selected=*r == Role::Viewer>{r.as_str()}</option>
                                }).collect_view()}
                            </select>
                            {field_error(create, "role")}
                            <label for="new-email">"Email"</label>
                            <input id="new-email" name="email" type="email" autocomplete="off"/>
                            {field_error(create, "email")}
                            <button type="submit">"Create user"</button>
                        </ActionForm>
                        {action_error(create)}
                        {move || create.value().get().and_then(|r| r.ok()).map(|u| view! {
                            <p class="success" role="status">{format!("Created user {}.", u.username)}</p>
                        })}
                    }.into_any(),
                }
            })}
        </Transition>
        {action_error(set_role)}
        {action_error(reset)}
        {field_error(reset, "password")}
        {action_error(delete)}
    }
}

#[component]
fn UserTable(
    list: Vec<User>,
    set_role: ServerAction<SetUserRole>,
    reset: ServerAction<ResetUserPassword>,
    delete: ServerAction<DeleteUser>,
) -> impl IntoView {
    view! {
        <table class="users">
            <thead>
                <tr><th>"Username"</th><th>"Email"</th><th>"Role"</th><th>"Password"</th><th></th></tr>
            </thead>
            <tbody>
                {list.into_iter().map(|u| {
                    let name = u.username.clone();
                    let role_label = format!("Role of {name}");
                    let change_label = format!("Change role of {name}");
                    let pw_label = format!("New password for {name}");
                    let reset_label = format!("Reset password of {name}");
                    let delete_label = format!("Delete {name}");
                    let current_role = u.role;
                    let (n1, n2, n3) = (name.clone(), name.clone(), name);
                    view! {
                        <tr>
                            <td>{u.username}</td>
                            <td>{u.email}</td>
                            <td>
                                <ActionForm action=set_role attr:class="inline">
                                    <input type="hidden" name="username" value=n1/>
                                    <select name="role" aria-label=role_label>
                                        {Role::ALL.iter().map(|r| view! {
                                            <option value=r.as_str() selected=*r == current_role>{r.as_str()}</option>
                                        }).collect_view()}
                                    </select>
                                    <button type="submit" aria-label=change_label>"Change role"</button>
                                </ActionForm>
                            </td>
                            <td>
                                <ActionForm action=reset attr:class="inline">
                                    <input type="hidden" name="username" value=n2/>
                                    <input type="password" name="password" autocomplete="new-password"
                                        aria-label=pw_label required/>
                                    <button type="submit" aria-label=reset_label>"Reset password"</button>
                                </ActionForm>
                            </td>
                            <td>
                                <ActionForm action=delete attr:class="inline">
                                    <input type="hidden" name="username" value=n3/>
                                    <button type="submit" class="danger" aria-label=delete_label>"Delete"</button>
                                </ActionForm>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
