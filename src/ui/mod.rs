//! The live screen (DESIGN.md §7): a pure render of a view model and a theme.
//!
//! - [`model`]: the dashboard, folded from the Ledger's ticks (bounded history).
//! - [`state`]: what the person chose (theme, window, focus, overlays) and the keys.
//! - [`render`]: draws a frame from both; no I/O.
//! - [`theme`]: TOML themes, compiled in and from the config dir.

pub mod model;
pub mod render;
pub mod state;
pub mod svg;
pub mod theme;
