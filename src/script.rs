//! `theta run --script <file>`: a headless session driven by a small text format, for tests,
//! demos and bug reports. Every edit is a real signed command in a real session file.
//!
//! One command per line; `#` starts a comment; blank lines are skipped. Objects are named in the
//! script (`cube box` makes an object the rest of the script calls `box`). Directions are
//! `+x -x +y -y +z -z` in the object's own frame; axes `x y z`.
//!
//! | line | what it does |
//! |---|---|
//! | `new <file> [session name]` | create a session file (it must not exist) |
//! | `open <file>` | open an existing one (its objects get no script names) |
//! | `cube <name> [size]` | a cube of that edge length (1 by default) at the origin |
//! | `extrude <name> <direction> <distance>` | extrude the face that faces `direction` along it |
//! | `loopcut <name> <axis> [cuts]` | cut rings of edges across the edges that run along `axis` |
//! | `subdivide <name> [levels]` | Catmull–Clark subdivision (1 level by default) |
//! | `paint <name> <colour>` | paint every face a palette colour (`theta colors`) |
//! | `mirror <name> <axis> <offset>` | add the mirror image of every face across the plane `axis = offset` |
//! | `move <name> <dx> <dy> <dz>` | move the object |
//! | `expect <objects\|faces\|vertices> [<name>] <n>` | fail unless the count is `n` |
//! | `hash` | print the scene's state hash |
//! | `export <out.glb\|out.obj>` | write the scene (as `theta export` does) |
//! | `save` | write a checkpoint (edits are durable as they are made) |
//!
//! An error names the script file and line, and stops the run; what was done before it stays
//! saved.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use theta_crdt::command::{ObjectTransform, Op};
use theta_crdt::ids::{DerivedIds, ObjectId};
use theta_mesh::{EdgeKey, Mesh, Plane, Primitive, Vec3};

use crate::session::Session;

struct Run {
    session: Option<(Session, PathBuf)>,
    names: HashMap<String, ObjectId>,
    key: theta_crdt::sign::Keypair,
}

fn direction(w: &str) -> Result<Vec3> {
    Ok(match w {
        "+x" => Vec3::X,
        "-x" => Vec3::new(-1.0, 0.0, 0.0),
        "+y" => Vec3::new(0.0, 1.0, 0.0),
        "-y" => Vec3::new(0.0, -1.0, 0.0),
        "+z" => Vec3::new(0.0, 0.0, 1.0),
        "-z" => Vec3::new(0.0, 0.0, -1.0),
        _ => bail!("`{w}` is not a direction (+x -x +y -y +z -z)"),
    })
}

fn axis(w: &str) -> Result<Vec3> {
    direction(&format!("+{w}")).map_err(|_| anyhow!("`{w}` is not an axis (x y z)"))
}

fn num<T: std::str::FromStr>(w: Option<&&str>, what: &str, default: Option<T>) -> Result<T> {
    match (w, default) {
        (Some(w), _) => w
            .parse()
            .map_err(|_| anyhow!("`{w}` is not a number ({what})")),
        (None, Some(d)) => Ok(d),
        (None, None) => bail!("missing {what}"),
    }
}

fn dot(a: Vec3, b: Vec3) -> f32 {
    a.x * b.x + a.y * b.y + a.z * b.z
}

impl Run {
    fn session(&mut self) -> Result<&mut Session> {
        self.session
            .as_mut()
            .map(|(s, _)| s)
            .ok_or_else(|| anyhow!("no session yet (start with `new <file>` or `open <file>`)"))
    }

    fn object(&mut self, name: &str) -> Result<(ObjectId, Mesh)> {
        let id = *self
            .names
            .get(name)
            .ok_or_else(|| anyhow!("no object named `{name}` in this script"))?;
        let mesh = self
            .session()?
            .replica()
            .scene()
            .object(id)
            .ok_or_else(|| anyhow!("object `{name}` is gone"))?
            .mesh()
            .into_owned();
        Ok((id, mesh))
    }

    fn edit(&mut self, op: Op) -> Result<theta_crdt::ids::CommandId> {
        let s = self.session()?;
        let (id, events) = s.edit(op)?;
        for e in events {
            if let theta_crdt::scene::Event::Rejected(r) = e {
                bail!("the edit was rejected: {}", r.reason);
            }
        }
        Ok(id)
    }

    fn line(&mut self, words: &[&str]) -> Result<()> {
        match words {
            ["new", file, name @ ..] => {
                let name = if name.is_empty() {
                    "script".to_owned()
                } else {
                    name.join(" ")
                };
                let s = Session::create(Path::new(file), &self.key, &name)?;
                self.session = Some((s, PathBuf::from(file)));
            }
            ["open", file] => {
                let (s, _) = Session::open(Path::new(file), &self.key)?;
                self.session = Some((s, PathBuf::from(file)));
            }
            ["cube", name, rest @ ..] => {
                if self.names.contains_key(*name) {
                    bail!("an object is already named `{name}`");
                }
                let size: f32 = num(rest.first(), "size", Some(1.0))?;
                let c = self.edit(Op::CreateObject {
                    name: (*name).to_owned(),
                    primitive: Primitive::Cuboid {
                        size: Vec3::new(size, size, size),
                    },
                    material: theta_mesh::MaterialId(0),
                    transform: ObjectTransform::IDENTITY,
                })?;
                self.names
                    .insert((*name).to_owned(), DerivedIds::new(&c).object());
            }
            ["extrude", name, dir, dist] => {
                let (object, mesh) = self.object(name)?;
                let d = direction(dir)?;
                let dist: f32 = num(Some(dist), "distance", None)?;
                // The face that faces `d` most; the smallest id among equals.
                let face = mesh
                    .faces()
                    .filter_map(|f| mesh.face_normal(f).ok().map(|n| (dot(n, d), f)))
                    .fold(
                        None::<(f32, theta_mesh::FaceId)>,
                        |best, (s, f)| match best {
                            Some((bs, bf)) if bs > s + 1e-6 || (bs >= s - 1e-6 && bf < f) => {
                                Some((bs, bf))
                            }
                            _ => Some((s, f)),
                        },
                    )
                    .map(|(_, f)| f)
                    .ok_or_else(|| anyhow!("`{name}` has no faces"))?;
                self.edit(Op::ExtrudeRegion {
                    object,
                    faces: vec![face],
                    offset: Vec3::new(d.x * dist, d.y * dist, d.z * dist),
                })?;
            }
            ["loopcut", name, ax, rest @ ..] => {
                let (object, mesh) = self.object(name)?;
                let a = axis(ax)?;
                let cuts: u32 = num(rest.first(), "cuts", Some(1))?;
                // An edge running along the axis: among the most aligned, the one whose midpoint
                // comes first by (x, y, z). Geometry decides, not element ids, so the same script
                // cuts the same ring whoever runs it (ids follow the author's command hashes).
                let mut best: Option<(f32, [f32; 3], EdgeKey)> = None;
                for h in mesh.edges() {
                    let (Ok(u), Ok(v)) = (mesh.origin(h), mesh.dest(h)) else {
                        continue;
                    };
                    let (Ok(pu), Ok(pv)) = (mesh.position(u), mesh.position(v)) else {
                        continue;
                    };
                    let e = pv - pu;
                    let len = dot(e, e).sqrt();
                    if len == 0.0 {
                        continue;
                    }
                    let s = dot(e, a).abs() / len;
                    let mid = pu.lerp(pv, 0.5).to_array();
                    let key = EdgeKey(u.min(v), u.max(v));
                    let earlier = |m: &[f32; 3], n: &[f32; 3]| {
                        for i in 0..3 {
                            if (m[i] - n[i]).abs() > 1e-5 {
                                return m[i] < n[i];
                            }
                        }
                        false
                    };
                    best = match best {
                        Some((bs, bm, bk))
                            if bs > s + 1e-6 || (bs >= s - 1e-6 && !earlier(&mid, &bm)) =>
                        {
                            Some((bs, bm, bk))
                        }
                        _ => Some((s, mid, key)),
                    };
                }
                let (_, _, edge) = best.ok_or_else(|| anyhow!("`{name}` has no edges"))?;
                self.edit(Op::LoopCut { object, edge, cuts })?;
            }
            ["subdivide", name, rest @ ..] => {
                let (object, _) = self.object(name)?;
                let levels: u32 = num(rest.first(), "levels", Some(1))?;
                self.edit(Op::Subdivide { object, levels })?;
            }
            ["paint", name, colour] => {
                let (object, _) = self.object(name)?;
                let i = theta_mesh::PALETTE
                    .iter()
                    .position(|e| e.name == *colour)
                    .ok_or_else(|| {
                        anyhow!("unknown colour `{colour}` (run `theta colors` for the list)")
                    })?;
                self.edit(Op::PaintObject {
                    object,
                    material: theta_mesh::MaterialId(i as u32),
                })?;
            }
            ["mirror", name, ax, offset] => {
                let (object, mesh) = self.object(name)?;
                let normal = axis(ax)?;
                let offset: f32 = num(Some(offset), "offset", None)?;
                self.edit(Op::Mirror {
                    object,
                    faces: mesh.faces().collect(),
                    plane: Plane { normal, offset },
                    weld: 1e-4,
                })?;
            }
            ["move", name, dx, dy, dz] => {
                let (object, _) = self.object(name)?;
                let delta = Vec3::new(
                    num(Some(dx), "dx", None)?,
                    num(Some(dy), "dy", None)?,
                    num(Some(dz), "dz", None)?,
                );
                self.edit(Op::MoveObject { object, delta })?;
            }
            ["expect", what, rest @ ..] => {
                let (n, got) = match (*what, rest) {
                    ("objects", [n]) => (n, self.session()?.replica().scene().object_count()),
                    ("faces", [name, n]) => (n, self.object(name)?.1.face_count()),
                    ("vertices", [name, n]) => (n, self.object(name)?.1.vertex_count()),
                    _ => bail!(
                        "expect what? (`expect objects <n>`, `expect faces <name> <n>`, \
                         `expect vertices <name> <n>`)"
                    ),
                };
                let want: usize = num(Some(n), "count", None)?;
                if got != want {
                    bail!("expected {want} {what}, found {got}");
                }
            }
            ["hash"] => {
                let h: String = self
                    .session()?
                    .replica()
                    .scene()
                    .state_hash()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                println!("state hash: {h}");
            }
            ["export", out] => {
                let file = self
                    .session
                    .as_ref()
                    .map(|(_, f)| f.clone())
                    .ok_or_else(|| anyhow!("no session yet"))?;
                self.save()?;
                crate::cli::export_session(&file, Path::new(out))?;
            }
            ["save"] => self.save()?,
            [] => {}
            [w, ..] => bail!("unknown command `{w}`"),
        }
        Ok(())
    }

    /// Writes a checkpoint by closing and reopening the session.
    fn save(&mut self) -> Result<()> {
        if let Some((s, file)) = self.session.take() {
            s.close()?;
            let (s, _) = Session::open(&file, &self.key)?;
            self.session = Some((s, file));
        }
        Ok(())
    }
}

/// A line's words, without its comment.
fn words(line: &str) -> Vec<&str> {
    line.split('#')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

/// Runs a script file as the user `key`. Errors name the file and line.
pub fn run(path: &Path, key: theta_crdt::sign::Keypair) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut r = Run {
        session: None,
        names: HashMap::new(),
        key,
    };
    for (i, line) in text.lines().enumerate() {
        let words = words(line);
        r.line(&words)
            .with_context(|| format!("{}:{}: {}", path.display(), i + 1, words.join(" ")))?;
    }
    if let Some((s, _)) = r.session.take() {
        s.close()?;
    }
    println!("script ok: {} lines", text.lines().count());
    Ok(())
}

/// `theta open <file>` without a window: opens an existing session and runs script lines read
/// from `input` (the same format, one at a time), until the input ends. A line that fails
/// reports its error and changes nothing; the session stays open for the next line.
pub fn interactive(
    file: &Path,
    key: theta_crdt::sign::Keypair,
    input: impl std::io::BufRead,
) -> Result<()> {
    if !file.exists() {
        bail!(
            "{}: no such file (`theta new {}` makes one)",
            file.display(),
            file.display()
        );
    }
    let (s, _) = {
        let _p = crate::progress::spinner(format!("opening {}", file.display()));
        Session::open(file, &key)?
    };
    let scene = s.replica().scene();
    println!(
        "opened {}: \"{}\", {} objects, {} commands",
        file.display(),
        scene.name(),
        scene.object_count(),
        s.replica().log().len()
    );
    let mut r = Run {
        session: Some((s, file.to_owned())),
        names: HashMap::new(),
        key,
    };
    let (mut ok, mut failed) = (0usize, 0usize);
    for (i, line) in input.lines().enumerate() {
        let line = line.context("reading standard input")?;
        let words = words(&line);
        if matches!(words.first(), Some(&"new") | Some(&"open")) {
            eprintln!(
                "theta: line {}: `{}` is for scripts; this session is already open",
                i + 1,
                words[0]
            );
            failed += 1;
            continue;
        }
        match r.line(&words) {
            Ok(()) => ok += usize::from(!words.is_empty()),
            Err(e) => {
                eprintln!("theta: line {}: {e:#}", i + 1);
                failed += 1;
            }
        }
    }
    if let Some((s, _)) = r.session.take() {
        s.close()?;
    }
    println!(
        "closed {}: {ok} lines done, {failed} failed",
        file.display()
    );
    Ok(())
}
