//! The material palette: 24 matte colours, glass and gem, plus custom colours.
//!
//! A [`MaterialId`] below 24 names a palette colour; 24 is glass and 25 is gem. An id with bit 24 set
//! is a custom matte colour whose low 24 bits are sRGB `0xRRGGBB`. The kernel only stores ids; the
//! renderer and the exporters read colours from here, so every peer shows and exports the same thing.

use crate::ids::MaterialId;

/// How a material is shaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaterialKind {
    /// Flat, opaque colour.
    Matte,
    /// Transparent.
    Glass,
    /// Glossy, faceted.
    Gem,
}

/// A material's name, sRGB colour with alpha, and shading kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaletteEntry {
    /// Human-readable name (also the material name in exported files).
    pub name: &'static str,
    /// sRGB colour and alpha, each 0..=255.
    pub rgba: [u8; 4],
    /// Shading kind.
    pub kind: MaterialKind,
}

const fn matte(name: &'static str, rgb: u32) -> PaletteEntry {
    PaletteEntry {
        name,
        rgba: [(rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8, 255],
        kind: MaterialKind::Matte,
    }
}

/// The built-in materials, indexed by `MaterialId`.
pub const PALETTE: [PaletteEntry; 26] = [
    matte("white", 0xF4F4F2),
    matte("light-grey", 0xBDBDBD),
    matte("grey", 0x8A8A8A),
    matte("charcoal", 0x4A4A4A),
    matte("black", 0x1E1E1E),
    matte("red", 0xD7263D),
    matte("coral", 0xF46036),
    matte("orange", 0xF49D37),
    matte("sand", 0xE8C07D),
    matte("yellow", 0xF9E04B),
    matte("lime", 0xA4D65E),
    matte("green", 0x3BB273),
    matte("forest", 0x1E6F4C),
    matte("teal", 0x1B998B),
    matte("sky", 0x5BC0EB),
    matte("blue", 0x2E86DE),
    matte("navy", 0x23395B),
    matte("violet", 0x7B4FB8),
    matte("lavender", 0xB8A1E3),
    matte("pink", 0xF28DB2),
    matte("magenta", 0xC2185B),
    matte("brown", 0x8D5A3B),
    matte("tan", 0xC49A6C),
    matte("skin", 0xF1C27D),
    PaletteEntry {
        name: "glass",
        rgba: [200, 230, 255, 96],
        kind: MaterialKind::Glass,
    },
    PaletteEntry {
        name: "gem",
        rgba: [90, 200, 250, 235],
        kind: MaterialKind::Gem,
    },
];

/// Flag bit marking a custom colour id.
pub const CUSTOM_BIT: u32 = 1 << 24;

/// The material an id names. Unknown ids fall back to the first palette colour, so a newer peer's
/// material never breaks an older peer's rendering.
pub fn palette_entry(m: MaterialId) -> PaletteEntry {
    if m.0 & CUSTOM_BIT != 0 {
        let rgb = m.0 & 0xFF_FFFF;
        let mut e = matte("custom", rgb);
        e.name = "custom";
        return e;
    }
    PALETTE.get(m.0 as usize).copied().unwrap_or(PALETTE[0])
}

impl MaterialId {
    /// Glass.
    pub const GLASS: MaterialId = MaterialId(24);
    /// Gem.
    pub const GEM: MaterialId = MaterialId(25);

    /// A custom matte colour from sRGB bytes.
    pub const fn custom(r: u8, g: u8, b: u8) -> MaterialId {
        MaterialId(CUSTOM_BIT | (r as u32) << 16 | (g as u32) << 8 | b as u32)
    }
}
