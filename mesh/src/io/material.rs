//! Material names and colours as the file formats see them.
//!
//! Every exporter names materials the same way ([`material_name`]) so that OBJ's `usemtl` and
//! glTF's material names agree, and so that the OBJ importer can map a name back to the same
//! [`MaterialId`]. glTF stores linear colour while the palette is sRGB, so the conversions live
//! here too; they go through `libm` so every platform writes and reads identical values.

use crate::ids::MaterialId;
use crate::palette::{CUSTOM_BIT, PALETTE, palette_entry};

/// The name a material gets in exported files: the palette name (`"red"`, `"glass"`), or
/// `custom_rrggbb` for a custom colour, or `material_<id>` for an id no palette entry knows (it is
/// exported with the fallback colour of [`palette_entry`]). Distinct ids get distinct names.
pub fn material_name(m: MaterialId) -> String {
    if m.0 & CUSTOM_BIT != 0 {
        format!("custom_{:06x}", m.0 & 0xFF_FFFF)
    } else if let Some(e) = PALETTE.get(m.0 as usize) {
        e.name.to_string()
    } else {
        format!("material_{}", m.0)
    }
}

/// The material an exported name stands for (the inverse of [`material_name`]), if it is one.
pub(crate) fn material_by_name(name: &str) -> Option<MaterialId> {
    if let Some(i) = PALETTE.iter().position(|e| e.name == name) {
        return Some(MaterialId(i as u32));
    }
    if let Some(hex) = name.strip_prefix("custom_")
        && hex.len() == 6
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        let rgb = u32::from_str_radix(hex, 16).ok()?;
        return Some(MaterialId(CUSTOM_BIT | rgb));
    }
    if let Some(num) = name.strip_prefix("material_") {
        // Only the canonical spelling, so that every id has exactly one name.
        let id: u32 = num.parse().ok()?;
        if id.to_string() == num && id & CUSTOM_BIT == 0 && id as usize >= PALETTE.len() {
            return Some(MaterialId(id));
        }
    }
    None
}

/// The material for an sRGB colour: the palette entry whose colour matches within one step per
/// channel (so a colour that went through a linear float and back still finds its entry), otherwise
/// a custom colour. Palette colours are compared in palette order, so the first match wins.
pub fn material_from_srgb(rgb: [u8; 3]) -> MaterialId {
    for (i, e) in PALETTE.iter().enumerate() {
        if (0..3).all(|c| e.rgba[c].abs_diff(rgb[c]) <= 1) {
            return MaterialId(i as u32);
        }
    }
    MaterialId::custom(rgb[0], rgb[1], rgb[2])
}

/// sRGB byte to linear light in 0..=1 (the IEC 61966-2-1 curve).
pub(crate) fn srgb_to_linear(b: u8) -> f32 {
    let c = f64::from(b) / 255.0;
    let l = if c <= 0.04045 {
        c / 12.92
    } else {
        libm::pow((c + 0.055) / 1.055, 2.4)
    };
    l as f32
}

/// Linear light to the nearest sRGB byte; out-of-range and NaN values clamp.
pub(crate) fn linear_to_srgb(l: f32) -> u8 {
    let l = f64::from(l);
    // NaN fails both comparisons and lands on 0.
    let l = if l > 1.0 {
        1.0
    } else if l > 0.0 {
        l
    } else {
        0.0
    };
    let c = if l <= 0.003_130_8 {
        l * 12.92
    } else {
        1.055 * libm::pow(l, 1.0 / 2.4) - 0.055
    };
    libm::round(c * 255.0).clamp(0.0, 255.0) as u8
}

/// Colour, alpha and shading parameters of a material, as the exporters write them.
pub(crate) struct ExportMaterial {
    pub(crate) name: String,
    /// sRGB colour and alpha bytes.
    pub(crate) rgba: [u8; 4],
    pub(crate) kind: crate::palette::MaterialKind,
}

pub(crate) fn export_material(m: MaterialId) -> ExportMaterial {
    let e = palette_entry(m);
    ExportMaterial {
        name: material_name(m),
        rgba: e.rgba,
        kind: e.kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_round_trips_through_linear() {
        for b in 0..=255u8 {
            assert_eq!(linear_to_srgb(srgb_to_linear(b)), b);
        }
    }

    #[test]
    fn names_round_trip() {
        for id in (0..PALETTE.len() as u32)
            .chain([26, 1000])
            .map(MaterialId)
            .chain([MaterialId::custom(1, 2, 3)])
        {
            assert_eq!(material_by_name(&material_name(id)), Some(id), "{id:?}");
        }
        assert_eq!(material_by_name("material_05"), None);
        assert_eq!(material_by_name("material_3"), None);
    }
}
