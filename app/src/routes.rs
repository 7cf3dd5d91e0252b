//! The app's pages as lazily loaded routes. Built with `cargo leptos build --split` (as every
//! build here is), each page's code becomes its own wasm chunk that the browser fetches when
//! the page is first shown (the server names the chunks a page needs in its HTML, so
//! hydration does not wait on a second round trip). The shell, the router, the layout and the
//! reactive runtime stay in the main module. Hydration must then be `hydrate_lazy`
//! (frontend/src/lib.rs).
//!
//! A lazy page hydrates after the shell, once its chunk has arrived, so each page ends with
//! `<PageHydrated/>`: the mark that the page is interactive (see components.rs).
//!
//! `#[lazy_route]` names each chunk after the type and `#[lazy]` after the call site, so every
//! page needs its own type written out here (a `macro_rules!` would give them all one name).

use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

use crate::components::PageHydrated;
use crate::pages::{
    AccountPage, AgentsPage, DashboardPage, DataSourcesPage, ErrorsPage, LoginPage, OffsetsPage,
    SyncsPage, UsersPage,
};

pub struct LoginRoute;

#[lazy_route]
impl LazyRoute for LoginRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <LoginPage/><PageHydrated/> }.into_any()
    }
}

pub struct DashboardRoute;

#[lazy_route]
impl LazyRoute for DashboardRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <DashboardPage/><PageHydrated/> }.into_any()
    }
}

pub struct SyncsRoute;

#[lazy_route]
impl LazyRoute for SyncsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <SyncsPage/><PageHydrated/> }.into_any()
    }
}

pub struct DataSourcesRoute;

#[lazy_route]
impl LazyRoute for DataSourcesRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <DataSourcesPage/><PageHydrated/> }.into_any()
    }
}

pub struct OffsetsRoute;

#[lazy_route]
impl LazyRoute for OffsetsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <OffsetsPage/><PageHydrated/> }.into_any()
    }
}

pub struct AgentsRoute;

#[lazy_route]
impl LazyRoute for AgentsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <AgentsPage/><PageHydrated/> }.into_any()
    }
}

pub struct UsersRoute;

#[lazy_route]
impl LazyRoute for UsersRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <UsersPage/><PageHydrated/> }.into_any()
    }
}

pub struct ErrorsRoute;

#[lazy_route]
impl LazyRoute for ErrorsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <ErrorsPage/><PageHydrated/> }.into_any()
    }
}

pub struct AccountRoute;

#[lazy_route]
impl LazyRoute for AccountRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <AccountPage/><PageHydrated/> }.into_any()
    }
}
