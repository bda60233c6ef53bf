//! VR mode. What is here so far needs no OpenXR runtime: [`actions`], the actions, their
//! bindings on the common controllers and their mapping onto the engine's input; [`comfort`],
//! the turning, moving, vignette and play-area logic a headset session runs every frame; and
//! [`panel`], the editor's panels hung in the world and used by pointing; [`haptics`], the
//! pulses for grabs, snap steps, commits and snap turns. With the `vr-openxr`
//! feature, `probe` finds the OpenXR loader, runtime and headset, or says in one line why not. The OpenXR session itself (instance, Vulkan
//! handover, swapchains, actions) joins them behind the `vr-openxr` feature.

pub mod actions;
pub mod comfort;
pub mod hands;
pub mod haptics;
pub mod panel;
#[cfg(feature = "vr-openxr")]
pub mod probe;
#[cfg(feature = "vr-openxr")]
pub mod session;
#[cfg(feature = "desktop")]
pub mod ui;
