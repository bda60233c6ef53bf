// The Theta look: flat-shaded low-poly faces in palette colours, soft two-light shading, glass
// and gem, per-peer selection and hover tints, and unlit overlays (the ground grid's lines, the
// wireframe of what is selected, peers' heads, hands and pointer rays).
//
// One vertex buffer holds every object's triangles in object space; each vertex names its
// object's slot in the instance buffer, so all objects draw in one call. `CAMERA_DECL`,
// `VIEW_ARG` and `CAMERA` are replaced when the module is built: a multiview pipeline indexes
// the two eyes by `view_index`, a single-view one binds one eye.

struct Camera {
    view_proj: mat4x4<f32>,
    eye: vec4<f32>,
    pad: array<vec4<f32>, 11>,
}

struct Instance {
    model: mat4x4<f32>,
    n0: vec4<f32>,
    n1: vec4<f32>,
    n2: vec4<f32>,
    selected: u32,
    hovered: u32,
    flags: u32,
    pad: u32,
}

CAMERA_DECL
@group(0) @binding(1) var<storage, read> instances: array<Instance>;

struct Surface {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) colour: vec4<f32>,
}

fn unpack(c: u32) -> vec4<f32> {
    return unpack4x8unorm(c);
}

fn to_linear(c: vec3<f32>) -> vec3<f32> {
    let lo = c / 12.92;
    let hi = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(hi, lo, c <= vec3<f32>(0.04045));
}

const KEY: vec3<f32> = vec3<f32>(0.38, 0.86, 0.34);

// Flat shading, once per vertex: faces are flat, so the face's first corner (the provoking
// vertex) lights the whole triangle, and the fragment stage only writes the colour.
fn shade(normal: vec3<f32>, world: vec3<f32>, eye: vec3<f32>, base: vec4<f32>, kind: u32, sel: u32, hov: u32) -> vec4<f32> {
    var n = normalize(normal);
    let v = normalize(eye - world);
    if dot(n, v) < 0.0 {
        n = -n;
    }
    let l = normalize(KEY);
    let sky = vec3<f32>(0.62, 0.66, 0.74);
    let ground = vec3<f32>(0.30, 0.27, 0.25);
    let ambient = mix(ground, sky, n.y * 0.5 + 0.5);
    let diffuse = max(dot(n, l), 0.0);
    // A soft fill from behind the viewer keeps faces turned from the key light readable.
    let fill = max(dot(n, v), 0.0) * 0.18;
    var rgb = base.rgb * (ambient * 0.55 + vec3<f32>(0.78 * diffuse + fill));
    var alpha = base.a;
    if kind == 2u {
        // Gem: a glint on the facets that face the light, and extra contrast per facet.
        let h = normalize(l + v);
        rgb = rgb * (0.75 + 0.5 * diffuse) + vec3<f32>(pow(max(dot(n, h), 0.0), 24.0) * 0.9);
    } else if kind == 1u {
        // Glass: see-through face on, more opaque at grazing angles.
        let f = pow(1.0 - max(dot(n, v), 0.0), 3.0);
        alpha = clamp(0.28 + 0.6 * f, 0.0, 0.92);
        let h = normalize(l + v);
        rgb = rgb + vec3<f32>(pow(max(dot(n, h), 0.0), 48.0) * 0.8);
    }
    if sel != 0u {
        let c = to_linear(unpack(sel).rgb);
        let rim = pow(1.0 - max(dot(n, v), 0.0), 2.0);
        rgb = mix(rgb, c, 0.28) + c * rim * 0.6;
    } else if hov != 0u {
        let c = to_linear(unpack(hov).rgb);
        rgb = mix(rgb, c, 0.14) + vec3<f32>(0.06);
    }
    return vec4<f32>(rgb, alpha);
}

@vertex
fn vs_mesh(
    @location(0) pos: vec3<f32>,
    @location(1) nrm: vec3<f32>,
    @location(2) colour: u32,
    @location(3) tag: u32,
    VIEW_ARG
) -> Surface {
    let inst = instances[tag & 0x0fffffffu];
    let cam = CAMERA;
    let w = inst.model * vec4<f32>(pos, 1.0);
    var out: Surface;
    out.clip = cam.view_proj * w;
    if (inst.flags & 1u) != 0u {
        // Hidden: outside the depth range, so clipped.
        out.clip = vec4<f32>(0.0, 0.0, -2.0, 1.0);
    }
    let n = mat3x3<f32>(inst.n0.xyz, inst.n1.xyz, inst.n2.xyz) * nrm;
    // Linear light, 10 bits a channel, 2 bits of alpha (converted when it was uploaded).
    let base = vec4<f32>(
        f32(colour & 0x3ffu),
        f32((colour >> 10u) & 0x3ffu),
        f32((colour >> 20u) & 0x3ffu),
        f32(colour >> 30u) * 341.0,
    ) / 1023.0;
    out.colour = shade(n, w.xyz, cam.eye.xyz, base, tag >> 28u, inst.selected, inst.hovered);
    return out;
}

@fragment
fn fs_opaque(s: Surface) -> @location(0) vec4<f32> {
    return vec4<f32>(s.colour.rgb, 1.0);
}

@fragment
fn fs_glass(s: Surface) -> @location(0) vec4<f32> {
    return s.colour;
}

// ---- Wireframe of selected objects: the same vertices, as lines, in the selector's colour ----

struct Line {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) colour: vec4<f32>,
}

@vertex
fn vs_wire(
    @location(0) pos: vec3<f32>,
    @location(1) nrm: vec3<f32>,
    @location(2) colour: u32,
    @location(3) tag: u32,
    VIEW_ARG
) -> Line {
    let inst = instances[tag & 0x0fffffffu];
    let cam = CAMERA;
    var out: Line;
    out.clip = cam.view_proj * (inst.model * vec4<f32>(pos, 1.0));
    // Pulled a little towards the viewer (reversed depth: nearer is larger), so edges win over
    // the faces they bound.
    out.clip.z = out.clip.z * 1.004 + 0.00002 * out.clip.w;
    let c = select(unpack(inst.hovered), unpack(inst.selected), inst.selected != 0u);
    out.colour = vec4<f32>(to_linear(c.rgb), 1.0);
    if (inst.flags & 1u) != 0u {
        out.clip = vec4<f32>(0.0, 0.0, -2.0, 1.0);
    }
    return out;
}

@fragment
fn fs_line(l: Line) -> @location(0) vec4<f32> {
    return l.colour;
}

// ---- Unlit overlay geometry in world space: peers' heads, hands and pointer rays ----

@vertex
fn vs_overlay(@location(0) pos: vec3<f32>, @location(1) colour: u32, VIEW_ARG) -> Line {
    let cam = CAMERA;
    var out: Line;
    out.clip = cam.view_proj * vec4<f32>(pos, 1.0);
    let c = unpack(colour);
    out.colour = vec4<f32>(to_linear(c.rgb), c.a);
    return out;
}

// ---- Panels in the world (VR): quads showing parts of one texture egui drew, premultiplied ----

@group(1) @binding(0) var panel_texture: texture_2d<f32>;
@group(1) @binding(1) var panel_sampler: sampler;

struct PanelSurface {
    @builtin(position) clip: vec4<f32>,
    @location(0) uv: vec2<f32>,
}

@vertex
fn vs_panel(@location(0) pos: vec3<f32>, @location(1) uv: vec2<f32>, VIEW_ARG) -> PanelSurface {
    let cam = CAMERA;
    var out: PanelSurface;
    out.clip = cam.view_proj * vec4<f32>(pos, 1.0);
    out.uv = uv;
    return out;
}

@fragment
fn fs_panel(s: PanelSurface) -> @location(0) vec4<f32> {
    let c = textureSample(panel_texture, panel_sampler, s.uv);
    if c.a < 0.004 {
        // The rounded corners' outside: no depth written where nothing shows.
        discard;
    }
    return c;
}

// ---- The comfort vignette: the view's edges darkened while the app moves the user ----

struct Veil {
    @builtin(position) clip: vec4<f32>,
    @location(0) ndc: vec2<f32>,
    // The eye's straight-ahead point (x, y, in NDC) and the strength (z).
    @location(1) @interpolate(flat) params: vec4<f32>,
}

@vertex
fn vs_vignette(@builtin(vertex_index) v: u32, VIEW_ARG) -> Veil {
    let cam = CAMERA;
    // One triangle over the whole view.
    let p = vec2<f32>(f32((v << 1u) & 2u), f32(v & 2u)) * 2.0 - vec2<f32>(1.0);
    var out: Veil;
    out.clip = vec4<f32>(p, 0.0, 1.0);
    out.ndc = p;
    out.params = cam.pad[0];
    return out;
}

@fragment
fn fs_vignette(s: Veil) -> @location(0) vec4<f32> {
    let k = s.params.z;
    let d = length(s.ndc - s.params.xy);
    // The clear disc shrinks as the vignette strengthens; outside it, a soft ramp to black.
    let inner = 1.25 - 0.75 * k;
    let a = k * smoothstep(inner, inner + 0.45, d);
    return vec4<f32>(0.0, 0.0, 0.0, min(a * 1.6, 1.0));
}
