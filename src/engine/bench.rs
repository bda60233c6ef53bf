//! `theta bench engine`: the engine's CPU per frame on a big scene while a remote peer edits.
//!
//! The scene: `objects` UV spheres of 101 vertices each (10,000 of them make 1,010,000 vertices),
//! folded once, then projected into a fresh engine. Then frames run back to back, as 90 Hz frames
//! would: before each one, the commands a remote editor makes at `rate` per second (the workload
//! generator's mix: moves, extrudes, insets, paints, deletes, new objects …) are inserted and
//! folded, and the frame applies the fold's change events to the world and runs every stage. The
//! figure is the frame's engine part (projection updates + the stages' systems); the fold is
//! reported beside it. The renderer's extraction joins the figure when the renderer exists.

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
                    translation: Vec3::new((i % side) as f32, 0.0, (i / side) as f32),
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
        .map(|(_, o)| o.mesh.vertex_count())
        .sum();
    let t_project = Instant::now();
    let mut engine = Engine::new(r.scene());
    let project = t_project.elapsed();

    let mut rng = Rng::new(11);
    let mut mine: Vec<CommandId> = Vec::new();
    let mut fold = Vec::with_capacity(frames);
    let mut frame = Vec::with_capacity(frames);
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
        engine.step();
        let t2 = Instant::now();
        fold.push(t1 - t0);
        frame.push(t2 - t1);
    }
    engine
        .matches(r.scene())
        .map_err(|e| anyhow!("the world drifted from the scene: {e}"))?;
    fold.sort_unstable();
    frame.sort_unstable();
    Ok(format!(
        "engine bench: {} objects, {vertices} vertices (built and folded in {:.2} s, projected in \
         {:.2} s); {sent} remote commands over {frames} frames ({rate}/s at 90 Hz)\n\
         engine per frame (projection updates + stages): p50 {}, p99 {}, max {}\n\
         fold per frame (beside it): p50 {}, p99 {}, max {}",
        r.scene().object_count(),
        build.as_secs_f64(),
        project.as_secs_f64(),
        ms(percentile(&frame, 0.5)),
        ms(percentile(&frame, 0.99)),
        ms(frame.last().copied().unwrap_or_default()),
        ms(percentile(&fold, 0.5)),
        ms(percentile(&fold, 0.99)),
        ms(fold.last().copied().unwrap_or_default()),
    ))
}
