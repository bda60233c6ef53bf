//! Rigid transforms on OpenXR poses: composition, inversion, and rotating a vector.

use openxr_sys::{Posef, Quaternionf, Vector3f};

/// The Hamilton product `a * b`: the rotation `b` followed by `a`.
pub(crate) fn quat_mul(a: Quaternionf, b: Quaternionf) -> Quaternionf {
    Quaternionf {
        w: a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
        x: a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
        y: a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
        z: a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
    }
}

/// The inverse of a unit quaternion (its conjugate).
pub(crate) fn quat_conj(q: Quaternionf) -> Quaternionf {
    Quaternionf {
        x: -q.x,
        y: -q.y,
        z: -q.z,
        w: q.w,
    }
}

/// The quaternion scaled to unit length; the identity if it has no length.
pub(crate) fn quat_normalize(q: Quaternionf) -> Quaternionf {
    let n = (q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w).sqrt();
    if n <= f32::EPSILON || !n.is_finite() {
        return Quaternionf::IDENTITY;
    }
    Quaternionf {
        x: q.x / n,
        y: q.y / n,
        z: q.z / n,
        w: q.w / n,
    }
}

/// `v` rotated by the unit quaternion `q`.
pub(crate) fn rotate(q: Quaternionf, v: Vector3f) -> Vector3f {
    // v' = v + 2w (u × v) + 2 u × (u × v), with u the vector part of q.
    let (ux, uy, uz) = (q.x, q.y, q.z);
    let tx = 2.0 * (uy * v.z - uz * v.y);
    let ty = 2.0 * (uz * v.x - ux * v.z);
    let tz = 2.0 * (ux * v.y - uy * v.x);
    Vector3f {
        x: v.x + q.w * tx + (uy * tz - uz * ty),
        y: v.y + q.w * ty + (uz * tx - ux * tz),
        z: v.z + q.w * tz + (ux * ty - uy * tx),
    }
}

fn add(a: Vector3f, b: Vector3f) -> Vector3f {
    Vector3f {
        x: a.x + b.x,
        y: a.y + b.y,
        z: a.z + b.z,
    }
}

/// The pose `b` (given in the frame of `a`) expressed in the frame `a` is given in.
pub(crate) fn compose(a: Posef, b: Posef) -> Posef {
    Posef {
        orientation: quat_normalize(quat_mul(a.orientation, b.orientation)),
        position: add(a.position, rotate(a.orientation, b.position)),
    }
}

/// The inverse transform of `p`.
pub(crate) fn invert(p: Posef) -> Posef {
    let q = quat_conj(p.orientation);
    let t = rotate(q, p.position);
    Posef {
        orientation: q,
        position: Vector3f {
            x: -t.x,
            y: -t.y,
            z: -t.z,
        },
    }
}

/// The pose `p` (in the world) seen from the frame `base` (also in the world).
pub(crate) fn relative(base: Posef, p: Posef) -> Posef {
    compose(invert(base), p)
}

/// A pose moved by `offset` along its own axes.
pub(crate) fn offset(p: Posef, x: f32, y: f32, z: f32) -> Posef {
    compose(
        p,
        Posef {
            orientation: Quaternionf::IDENTITY,
            position: Vector3f { x, y, z },
        },
    )
}
