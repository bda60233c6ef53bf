//! VR mode. What is here so far needs no OpenXR runtime: [`comfort`], the turning, moving,
//! vignette and play-area logic a headset session runs every frame, and [`panel`], the editor's
//! panels hung in the world and used by pointing. The OpenXR session itself (instance, Vulkan
//! handover, swapchains, actions) joins them behind the `vr-openxr` feature.

pub mod comfort;
pub mod panel;
