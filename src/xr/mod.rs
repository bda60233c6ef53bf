//! VR mode. What is here so far needs no OpenXR runtime: [`comfort`], the turning, moving,
//! vignette and play-area logic a headset session runs every frame. The OpenXR session itself
//! (instance, Vulkan handover, swapchains, actions) joins it behind the `vr-openxr` feature.

pub mod comfort;
