//! The browser entry point: hydrates the server-rendered page. Empty on the host.

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(idra_app::App);
}
