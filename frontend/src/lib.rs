//! The browser entry point: hydrates the server-rendered page. Empty on the host.

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // The pages are lazy routes (app/src/routes.rs): hydration waits for a page's chunk.
    leptos::mount::hydrate_lazy(idra_app::App);
}
