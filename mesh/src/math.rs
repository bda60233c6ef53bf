//! Small vector and quaternion types with a fixed evaluation order.
//!
//! The fold from command log to scene must be bit-for-bit identical on every peer, on x86 and ARM alike.
//! IEEE `+ - * /` and `sqrt` are exactly rounded everywhere, but only if every peer evaluates the same
//! expression in the same order. SIMD math libraries pick different shuffles and reduction orders per
//! target, so the kernel uses these plain scalar types, written out term by term. There is no `mul_add`
//! here (fused and unfused results differ), and transcendental functions go through `libm`, a pure
//! software implementation, never the platform's math library.

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub, SubAssign};

/// A point or direction in 3D, in single precision.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Vec3 {
    /// X coordinate.
    pub x: f32,
    /// Y coordinate (up).
    pub y: f32,
    /// Z coordinate.
    pub z: f32,
}

impl Vec3 {
    /// The origin.
    pub const ZERO: Vec3 = Vec3::new(0.0, 0.0, 0.0);
    /// All ones.
    pub const ONE: Vec3 = Vec3::new(1.0, 1.0, 1.0);
    /// Unit X.
    pub const X: Vec3 = Vec3::new(1.0, 0.0, 0.0);
    /// Unit Y.
    pub const Y: Vec3 = Vec3::new(0.0, 1.0, 0.0);
    /// Unit Z.
    pub const Z: Vec3 = Vec3::new(0.0, 0.0, 1.0);

    /// Makes a vector from its coordinates.
    pub const fn new(x: f32, y: f32, z: f32) -> Vec3 {
        Vec3 { x, y, z }
    }

    /// The coordinates as an array.
    pub const fn to_array(self) -> [f32; 3] {
        [self.x, self.y, self.z]
    }

    /// Makes a vector from an array.
    pub const fn from_array(a: [f32; 3]) -> Vec3 {
        Vec3::new(a[0], a[1], a[2])
    }

    /// Dot product, summed x then y then z.
    pub fn dot(self, o: Vec3) -> f32 {
        (self.x * o.x + self.y * o.y) + self.z * o.z
    }

    /// Cross product.
    pub fn cross(self, o: Vec3) -> Vec3 {
        Vec3::new(
            self.y * o.z - self.z * o.y,
            self.z * o.x - self.x * o.z,
            self.x * o.y - self.y * o.x,
        )
    }

    /// Squared length.
    pub fn length_squared(self) -> f32 {
        self.dot(self)
    }

    /// Length (IEEE `sqrt`, exactly rounded on every platform).
    pub fn length(self) -> f32 {
        self.length_squared().sqrt()
    }

    /// The unit vector in this direction, or `None` for a zero or non-finite vector.
    pub fn normalized(self) -> Option<Vec3> {
        let len = self.length();
        if len > 0.0 && len.is_finite() {
            Some(self / len)
        } else {
            None
        }
    }

    /// Component-wise product.
    pub fn mul_elem(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x * o.x, self.y * o.y, self.z * o.z)
    }

    /// Component-wise minimum.
    pub fn min(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x.min(o.x), self.y.min(o.y), self.z.min(o.z))
    }

    /// Component-wise maximum.
    pub fn max(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x.max(o.x), self.y.max(o.y), self.z.max(o.z))
    }

    /// Linear interpolation `self + (o - self) * t`.
    pub fn lerp(self, o: Vec3, t: f32) -> Vec3 {
        self + (o - self) * t
    }

    /// True when every coordinate is finite.
    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.z.is_finite()
    }

    /// Coordinate by axis index (0 = x, 1 = y, 2 = z).
    pub fn axis(self, i: usize) -> f32 {
        match i {
            0 => self.x,
            1 => self.y,
            _ => self.z,
        }
    }

    /// Distance to another point.
    pub fn distance(self, o: Vec3) -> f32 {
        (self - o).length()
    }
}

impl Add for Vec3 {
    type Output = Vec3;
    fn add(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}
impl AddAssign for Vec3 {
    fn add_assign(&mut self, o: Vec3) {
        *self = *self + o;
    }
}
impl Sub for Vec3 {
    type Output = Vec3;
    fn sub(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}
impl SubAssign for Vec3 {
    fn sub_assign(&mut self, o: Vec3) {
        *self = *self - o;
    }
}
impl Mul<f32> for Vec3 {
    type Output = Vec3;
    fn mul(self, s: f32) -> Vec3 {
        Vec3::new(self.x * s, self.y * s, self.z * s)
    }
}
impl Div<f32> for Vec3 {
    type Output = Vec3;
    fn div(self, s: f32) -> Vec3 {
        Vec3::new(self.x / s, self.y / s, self.z / s)
    }
}
impl Neg for Vec3 {
    type Output = Vec3;
    fn neg(self) -> Vec3 {
        Vec3::new(-self.x, -self.y, -self.z)
    }
}

/// A rotation as a unit quaternion. Authors compute rotations on their own machine and send the
/// quaternion, so the kernel never needs a transcendental function to apply one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quat {
    /// Vector part, x.
    pub x: f32,
    /// Vector part, y.
    pub y: f32,
    /// Vector part, z.
    pub z: f32,
    /// Scalar part.
    pub w: f32,
}

impl Quat {
    /// The identity rotation.
    pub const IDENTITY: Quat = Quat {
        x: 0.0,
        y: 0.0,
        z: 0.0,
        w: 1.0,
    };

    /// Makes a quaternion from its components (not normalised).
    pub const fn from_xyzw(x: f32, y: f32, z: f32, w: f32) -> Quat {
        Quat { x, y, z, w }
    }

    /// Rotation of `angle` radians about `axis`, computed with `libm` so every platform agrees.
    /// Returns `None` when the axis has no direction.
    pub fn from_axis_angle(axis: Vec3, angle: f32) -> Option<Quat> {
        let a = axis.normalized()?;
        let half = angle * 0.5;
        let s = libm::sinf(half);
        let c = libm::cosf(half);
        Some(Quat {
            x: a.x * s,
            y: a.y * s,
            z: a.z * s,
            w: c,
        })
    }

    /// Squared norm.
    pub fn norm_squared(self) -> f32 {
        ((self.x * self.x + self.y * self.y) + self.z * self.z) + self.w * self.w
    }

    /// This quaternion scaled to unit length, or `None` if it is zero or not finite.
    pub fn normalized(self) -> Option<Quat> {
        let n = self.norm_squared().sqrt();
        if n > 0.0 && n.is_finite() {
            Some(Quat {
                x: self.x / n,
                y: self.y / n,
                z: self.z / n,
                w: self.w / n,
            })
        } else {
            None
        }
    }

    /// Rotates a vector: `v + 2w (q x v) + 2 q x (q x v)`, in that order.
    pub fn rotate(self, v: Vec3) -> Vec3 {
        let q = Vec3::new(self.x, self.y, self.z);
        let t = q.cross(v) * 2.0;
        v + t * self.w + q.cross(t)
    }

    /// Hamilton product `self * o` (apply `o` first, then `self`).
    pub fn mul_quat(self, o: Quat) -> Quat {
        Quat {
            w: ((self.w * o.w - self.x * o.x) - self.y * o.y) - self.z * o.z,
            x: ((self.w * o.x + self.x * o.w) + self.y * o.z) - self.z * o.y,
            y: ((self.w * o.y - self.x * o.z) + self.y * o.w) + self.z * o.x,
            z: ((self.w * o.z + self.x * o.y) - self.y * o.x) + self.z * o.w,
        }
    }
}

/// An oriented plane `{ p : normal . p = offset }`; the positive side is where `normal` points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plane {
    /// Unit normal.
    pub normal: Vec3,
    /// Signed distance of the plane from the origin along `normal`.
    pub offset: f32,
}

impl Plane {
    /// The plane through `point` with the given normal; `None` if the normal has no direction.
    pub fn from_point_normal(point: Vec3, normal: Vec3) -> Option<Plane> {
        let n = normal.normalized()?;
        Some(Plane {
            normal: n,
            offset: n.dot(point),
        })
    }

    /// Signed distance of `p` from the plane.
    pub fn signed_distance(&self, p: Vec3) -> f32 {
        self.normal.dot(p) - self.offset
    }

    /// Reflection of `p` across the plane.
    pub fn reflect(&self, p: Vec3) -> Vec3 {
        p - self.normal * (2.0 * self.signed_distance(p))
    }

    /// Projection of `p` onto the plane.
    pub fn project(&self, p: Vec3) -> Vec3 {
        p - self.normal * self.signed_distance(p)
    }
}

/// An axis-aligned box. An empty box has `min > max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aabb {
    /// Smallest corner.
    pub min: Vec3,
    /// Largest corner.
    pub max: Vec3,
}

impl Aabb {
    /// The empty box (the identity for `union`).
    pub const EMPTY: Aabb = Aabb {
        min: Vec3::new(f32::INFINITY, f32::INFINITY, f32::INFINITY),
        max: Vec3::new(f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY),
    };

    /// True if the box holds no point.
    pub fn is_empty(&self) -> bool {
        self.min.x > self.max.x || self.min.y > self.max.y || self.min.z > self.max.z
    }

    /// Grows the box to hold `p`.
    pub fn include(&mut self, p: Vec3) {
        self.min = self.min.min(p);
        self.max = self.max.max(p);
    }

    /// The smallest box holding both.
    pub fn union(self, o: Aabb) -> Aabb {
        Aabb {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }

    /// Centre point.
    pub fn center(&self) -> Vec3 {
        (self.min + self.max) * 0.5
    }

    /// Edge lengths.
    pub fn size(&self) -> Vec3 {
        self.max - self.min
    }

    /// Surface area (used by the BVH's cost model).
    pub fn surface_area(&self) -> f32 {
        if self.is_empty() {
            return 0.0;
        }
        let s = self.size();
        2.0 * ((s.x * s.y + s.y * s.z) + s.z * s.x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quaternion_rotates_a_quarter_turn() {
        let q = Quat::from_axis_angle(Vec3::Y, std::f32::consts::FRAC_PI_2).unwrap();
        let v = q.rotate(Vec3::X);
        assert!((v - Vec3::new(0.0, 0.0, -1.0)).length() < 1e-6, "{v:?}");
    }

    #[test]
    fn plane_reflects() {
        let p = Plane::from_point_normal(Vec3::new(1.0, 0.0, 0.0), Vec3::X).unwrap();
        assert_eq!(
            p.reflect(Vec3::new(3.0, 2.0, 1.0)),
            Vec3::new(-1.0, 2.0, 1.0)
        );
    }
}
