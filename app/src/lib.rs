//! Idra's web UI. Pages render on the server and hydrate in the browser; data comes from
//! `#[server]` functions whose server halves reach the Store through `Services` in context.

pub mod api;
mod components;
mod pages;
mod routes;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, Lazy};

use pages::{Layout, NotFound};
use routes::{
    AccountRoute, AgentsRoute, DashboardRoute, DataSourcesRoute, ErrorsRoute, LoginRoute,
    OffsetsRoute, SyncsRoute, UsersRoute,
};

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/idra.css"/>
        <Title text="Idra"/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view={Lazy::<LoginRoute>::new()}/>
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("") view={Lazy::<DashboardRoute>::new()}/>
                    <Route path=path!("syncs") view={Lazy::<SyncsRoute>::new()}/>
                    <Route path=path!("datasources") view={Lazy::<DataSourcesRoute>::new()}/>
                    <Route path=path!("offsets") view={Lazy::<OffsetsRoute>::new()}/>
                    <Route path=path!("agents") view={Lazy::<AgentsRoute>::new()}/>
                    <Route path=path!("users") view={Lazy::<UsersRoute>::new()}/>
                    <Route path=path!("errors") view={Lazy::<ErrorsRoute>::new()}/>
                    <Route path=path!("account") view={Lazy::<AccountRoute>::new()}/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
