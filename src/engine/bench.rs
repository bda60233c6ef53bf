//! `theta bench engine`: the engine's CPU per frame on a big scene while a remote peer edits.
//!
//! The scene: `objects` UV spheres of 101 vertices each (10,000 of them make 1,010,000 vertices),
//! folded once, then projected into a fresh engine. Then frames run back to back, as 90 Hz frames
//! would: before each one, the commands a remote editor makes at `rate` per second (the workload
//! generator's mix: moves, extrudes, insets, paints, deletes, new objects …) are inserted and
//! folded, and the frame applies the fold's change events to the world, takes the remote peer's
//! presence (its pointer sweeping over the scene with an object selected), and runs every stage:
//! input from the simulated VR provider, the editor tools (a hover pick under the local pointer
//! every frame), and the render extraction. The figure is that frame's engine part (projection
//! updates + presence + every system + extraction); the render stage (extraction) is also reported
//! alone, and the fold beside it.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use theta_crdt::author;
use theta_crdt::command::{ObjectTransform, Op};
use theta_crdt::fold::Replica;
use theta_crdt::ids::{CommandId, Role};
use theta_crdt::workload::{Rng, author_key, next_op};
use theta_mesh::{MaterialId, Primitive, Vec3};

use super::Engine;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Runs the benchmark; returns its report.
pub fn run(objects: usize, rate: f64, frames: usize) -> Result<String> {
    let admin = author_key(0);
    let remote = author_key(1);
    let own = |r: &mut Replica, key: &theta_crdt::sign::Keypair, op: Op| -> Result<CommandId> {
        let v = author::sign_local(key, r.log(), op).map_err(|e| anyhow!("{e}"))?;
        let id = v.id();
        r.insert(v).map_err(|e| anyhow!("{e}"))?;
        Ok(id)
    };
    let g = author::genesis(&admin, "engine bench");
    let gv = theta_crdt::log::verify_command(&g).map_err(|e| anyhow!("{e}"))?;
    let mut r = Replica::new(gv.id());
    r.insert(gv).map_err(|e| anyhow!("{e}"))?;
    own(
        &mut r,
        &admin,
        Op::GrantRole {
            author: remote.author(),
            role: Role::Editor,
        },
    )?;
    let t_build = Instant::now();
    let side = (objects as f64).sqrt().ceil() as usize;
    for i in 0..objects {
        own(
            &mut r,
            &admin,
            Op::CreateObject {
                name: format!("ball-{i}"),
                primitive: Primitive::UvSphere {
                    radius: 0.4,
                    segments: 11,
                    rings: 10,
                },
                material: MaterialId((i % 24) as u32),
                transform: ObjectTransform {
                    // In front of the simulated user, who faces −z.
                    translation: Vec3::new((i % side) as f32, 0.0, -1.0 - (i / side) as f32),
                    ..ObjectTransform::IDENTITY
                },
            },
        )?;
    }
    r.settle();
    let build = t_build.elapsed();
    let vertices: usize = r
        .scene()
        .objects()
        .map(|(_, o)| o.mesh().vertex_count())
        .sum();
    let t_project = Instant::now();
    let mut engine = Engine::new(r.scene());
    engine.set_input(super::input::SimulatedVr::default());
    // The first frame extracts every object once (the renderer's first upload).
    engine.step();
    let project = t_project.elapsed();
    let some_object = r.scene().objects().next().map(|(id, _)| id);

    let mut rng = Rng::new(11);
    let mut mine: Vec<CommandId> = Vec::new();
    let mut fold = Vec::with_capacity(frames);
    let mut frame = Vec::with_capacity(frames);
    let mut extract = Vec::with_capacity(frames);
    let mut sent = 0usize;
    for k in 0..frames {
        let due = (((k + 1) as f64 * rate / 90.0) as usize).saturating_sub(sent);
        for _ in 0..due {
            let op = next_op(&mut rng, r.scene(), remote.author(), &mine);
            mine.push(own(&mut r, &remote, op)?);
            if mine.len() > 16 {
                mine.remove(0);
            }
        }
        sent += due;
        let t0 = Instant::now();
        let events = r.settle();
        let t1 = Instant::now();
        engine.apply(r.scene(), &events);
        let s = k as f32 / 90.0;
        let p = crate::presence::Presence {
            head: Some(crate::presence::Pose::at(Vec3::new(
                side as f32 / 2.0,
                1.7,
                2.0,
            ))),
            pointer: Some(crate::presence::Ray {
                origin: Vec3::new(side as f32 / 2.0, 1.7, 2.0),
                direction: Vec3::new((s * 0.7).sin() * 0.5, -0.4, -1.0)
                    .normalized()
                    .unwrap_or(Vec3::new(0.0, 0.0, 1.0)),
            }),
            selected: some_object
                .filter(|o| r.scene().object(*o).is_some())
                .map(crate::presence::ElementRef::Object)
                .into_iter()
                .collect(),
            name: "remote".into(),
            colour: 0x33cc66ff,
            ..Default::default()
        };
        engine.set_peers(&[([7; 32], p)]);
        engine.step();
        let t2 = Instant::now();
        fold.push(t1 - t0);
        frame.push(t2 - t1);
        extract.push(engine.stats().last[2]);
    }
    engine
        .matches(r.scene())
        .map_err(|e| anyhow!("the world drifted from the scene: {e}"))?;
    fold.sort_unstable();
    frame.sort_unstable();
    extract.sort_unstable();
    let rf = engine.render_frame();
    let triangles = rf.triangles;
    let instances = rf.instances.len();
    let mut systems = engine.system_times();
    systems.sort_by_key(|s| std::cmp::Reverse(s.mean));
    let systems: String = systems
        .iter()
        .map(|s| {
            format!(
                "\nsystem {}: mean {}, max {} over {} runs",
                s.name,
                ms(s.mean),
                ms(s.max),
                s.calls
            )
        })
        .collect();
    Ok(format!(
        "engine bench: {} objects, {vertices} vertices (built and folded in {:.2} s, projected in \
         {:.2} s, first extraction included); {instances} instances, {triangles} triangles; \
         {sent} remote commands over {frames} frames ({rate}/s at 90 Hz)\n\
         engine per frame (projection updates + presence + systems + extraction): p50 {}, p99 {}, max {}\n\
         render extraction alone: p50 {}, p99 {}, max {}\n\
         fold per frame (beside it): p50 {}, p99 {}, max {}{systems}",
        r.scene().object_count(),
        build.as_secs_f64(),
        project.as_secs_f64(),
        ms(percentile(&frame, 0.5)),
        ms(percentile(&frame, 0.99)),
        ms(frame.last().copied().unwrap_or_default()),
        ms(percentile(&extract, 0.5)),
        ms(percentile(&extract, 0.99)),
        ms(extract.last().copied().unwrap_or_default()),
        ms(percentile(&fold, 0.5)),
        ms(percentile(&fold, 0.99)),
        ms(fold.last().copied().unwrap_or_default()),
    ))
}
