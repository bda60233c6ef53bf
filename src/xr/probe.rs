//! Finding VR: the OpenXR loader, an active runtime that can hand over a Vulkan device
//! (XR_KHR_vulkan_enable2), and a headset. Each way this can fail is one clear line for the
//! user, never a crash, and the caller falls back to the desktop editor or headless mode.
//!
//! The loader is opened at run time (`libopenxr_loader.so.1`, or the file named by
//! `THETA_OPENXR_LOADER`), so Theta starts on machines without one.

use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable that names the OpenXR loader to open instead of the system's.
pub const LOADER_ENV: &str = "THETA_OPENXR_LOADER";

/// What was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The runtime's name and version.
    pub runtime: String,
    /// The headset's name.
    pub system: String,
}

/// Why there is no VR here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// The OpenXR loader library could not be opened.
    NoLoader {
        /// The library tried.
        path: PathBuf,
        /// What the dynamic loader said.
        why: String,
    },
    /// The loader found no active runtime (or the runtime failed to start).
    NoRuntime(String),
    /// The runtime cannot hand over a Vulkan device (no XR_KHR_vulkan_enable2).
    NoVulkan(String),
    /// The runtime refused the instance (API version, extensions).
    Refused(String),
    /// The runtime has no headset connected.
    NoHeadset(String),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NoLoader { path, why } => write!(
                f,
                "no OpenXR loader ({}: {why}); install your runtime's loader \
                 (Debian: libopenxr-loader1) or name it in {LOADER_ENV}",
                path.display()
            ),
            Unavailable::NoRuntime(why) => write!(
                f,
                "no OpenXR runtime is active ({why}); start SteamVR, Monado or WiVRn, or point \
                 XR_RUNTIME_JSON at a runtime's manifest"
            ),
            Unavailable::NoVulkan(runtime) => write!(
                f,
                "{runtime} cannot hand over a Vulkan device (no XR_KHR_vulkan_enable2)"
            ),
            Unavailable::Refused(why) => write!(f, "the OpenXR runtime refused Theta: {why}"),
            Unavailable::NoHeadset(runtime) => {
                write!(f, "the OpenXR runtime {runtime} has no headset connected")
            }
        }
    }
}

/// The loader to open: `THETA_OPENXR_LOADER` if set, else the system's.
pub fn loader_path() -> PathBuf {
    std::env::var_os(LOADER_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("libopenxr_loader.so.1"))
}

/// Looks for VR through the loader at `loader`, asking for OpenXR 1.0 with Vulkan handover.
#[expect(
    unsafe_code,
    reason = "opening a shared library runs its initialisers: the loader is trusted by name"
)]
pub fn probe(loader: &Path) -> Result<Found, Unavailable> {
    use openxr as xr;
    // SAFETY: the library is an OpenXR loader by name; openxr checks that it exports the
    // entry points it needs and reports a missing one as an error.
    let entry = match unsafe { xr::Entry::load_from(loader, &()) } {
        Ok(e) => e,
        Err(xr::EntryError::Load(e)) => {
            return Err(Unavailable::NoLoader {
                path: loader.to_path_buf(),
                why: one_line(&chain(&e)),
            });
        }
        Err(xr::EntryError::Xr(r)) => return Err(Unavailable::NoRuntime(r.to_string())),
    };
    let instance = theta_instance(&entry)?;
    let runtime = instance
        .properties()
        .map(|p| format!("{} {}", p.runtime_name, p.runtime_version))
        .unwrap_or_else(|_| "(unnamed)".into());
    let system = match instance.system(xr::FormFactor::HEAD_MOUNTED_DISPLAY) {
        Ok(s) => s,
        Err(xr::sys::Result::ERROR_FORM_FACTOR_UNAVAILABLE) => {
            return Err(Unavailable::NoHeadset(runtime));
        }
        Err(r) => return Err(runtime_error(r)),
    };
    let name = instance
        .system_properties(system)
        .map(|p| p.system_name)
        .unwrap_or_else(|_| "(unnamed headset)".into());
    Ok(Found {
        runtime,
        system: name,
    })
}

/// Theta's instance on `entry`'s runtime: OpenXR 1.0 with XR_KHR_vulkan_enable2, and
/// XR_EXT_hand_tracking where offered.
pub(crate) fn theta_instance(entry: &openxr::Entry) -> Result<openxr::Instance, Unavailable> {
    use openxr as xr;
    let available = entry.enumerate_extensions().map_err(runtime_error)?;
    if !available.khr_vulkan_enable2 {
        return Err(Unavailable::NoVulkan("the active OpenXR runtime".into()));
    }
    let mut wanted = xr::ExtensionSet::default();
    wanted.khr_vulkan_enable2 = true;
    // Bare hands as controllers, where the runtime tracks them.
    wanted.ext_hand_tracking = available.ext_hand_tracking;
    let app = xr::ApplicationInfo {
        application_name: "Theta",
        application_version: 1,
        engine_name: "Theta",
        engine_version: 1,
        api_version: xr::Version::new(1, 0, 0),
    };
    entry
        .create_instance(&app, &wanted, &[], &())
        .map_err(runtime_error)
}

fn runtime_error(r: openxr::sys::Result) -> Unavailable {
    use openxr::sys::Result as R;
    match r {
        R::ERROR_RUNTIME_UNAVAILABLE | R::ERROR_RUNTIME_FAILURE | R::ERROR_INSTANCE_LOST => {
            Unavailable::NoRuntime(r.to_string())
        }
        R::ERROR_EXTENSION_NOT_PRESENT => {
            Unavailable::NoVulkan(format!("the active OpenXR runtime ({r})"))
        }
        _ => Unavailable::Refused(r.to_string()),
    }
}

/// An error with its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        s.push_str(": ");
        s.push_str(&c.to_string());
        next = c.source();
    }
    s
}

/// A message on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_loader_is_one_line_naming_the_file_and_the_fix() {
        let u = probe(Path::new("/nonexistent/libopenxr_loader.so.1")).unwrap_err();
        assert!(matches!(u, Unavailable::NoLoader { .. }), "{u:?}");
        let line = u.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("/nonexistent/libopenxr_loader.so.1"),
            "{line}"
        );
        assert!(line.contains(LOADER_ENV), "{line}");
    }

    #[test]
    fn a_library_that_is_not_a_loader_is_refused_as_no_loader() {
        // A real shared library without OpenXR's entry points.
        let libc = Path::new("libc.so.6");
        let u = probe(libc).unwrap_err();
        assert!(matches!(u, Unavailable::NoLoader { .. }), "{u:?}");
    }
}
