//! A tour of the mesh kernel: build a primitive, extrude, inset, loop-cut, subdivide, pick, and
//! export a GLB. Run with `cargo run --example mesh_tour -- out.glb`.

use theta_mesh::io::{ExportObject, ExportOptions, write_glb};
use theta_mesh::{Bvh, MaterialId, Primitive, Ray, SeqIds, Vec3};

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "tour.glb".into());
    let mut ids = SeqIds::new(1);
    let mut m = Primitive::Cuboid { size: Vec3::ONE }.build(&mut ids, MaterialId(15))?;
    let top = m
        .faces()
        .find(|&f| m.face_normal(f).map(|n| n.y > 0.9).unwrap_or(false));
    let top = top.ok_or_else(|| anyhow::anyhow!("a cube has a top face"))?;
    m.inset(&[top], 0.3, &mut ids)?;
    m.extrude_region(&[top], Vec3::new(0.0, 0.6, 0.0), &mut ids)?;
    m.paint(&[top], MaterialId(5))?;
    let side = m
        .edges()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no edges"))?;
    m.loop_cut(side, 1, &mut ids)?;
    m.subdivide(1, &mut ids)?;
    m.validate()?;
    let bvh = Bvh::build(&m);
    let hit = m.pick(
        &bvh,
        Ray {
            origin: Vec3::new(0.0, 5.0, 0.0),
            dir: -Vec3::Y,
        },
        0.02,
    );
    println!(
        "{} vertices, {} faces; a ray from above hits {:?}",
        m.vertex_count(),
        m.face_count(),
        hit.map(|p| p.element)
    );
    let glb = write_glb(&[ExportObject::new("tour", &m)], &ExportOptions::new())?;
    std::fs::write(&out, glb)?;
    println!("wrote {out}");
    Ok(())
}
