//! Weld vertices by distance.

use super::soup::Soup;
use crate::error::{Result, invalid_param};
use crate::ids::VertexId;
use crate::mesh::{Mesh, NONE};

impl Mesh {
    /// Merges vertices closer than `distance`. Vertices are visited in storage order; each one not
    /// yet merged absorbs every later unmerged vertex within `distance` of it and keeps its own id and
    /// position. Faces that collapse below three corners are removed. With `only`, just those
    /// vertices take part. Returns how many vertices were merged away.
    pub fn weld(&mut self, distance: f32, only: Option<&[VertexId]>) -> Result<usize> {
        if !(distance.is_finite() && distance >= 0.0) {
            return Err(invalid_param(
                "distance",
                format!("{distance} is not a finite distance ≥ 0"),
            ));
        }
        let nv = self.vid.len();
        let mut part = vec![only.is_none(); nv];
        if let Some(list) = only {
            for &v in list {
                part[self.vslot(v)? as usize] = true;
            }
        }
        // Candidates sorted by x (ties by slot) so each search scans a narrow window.
        let mut order: Vec<u32> = (0..nv as u32).filter(|&v| part[v as usize]).collect();
        order.sort_by(|&a, &b| {
            self.vpos[a as usize]
                .x
                .total_cmp(&self.vpos[b as usize].x)
                .then(a.cmp(&b))
        });
        let mut rank = vec![0usize; nv];
        for (i, &v) in order.iter().enumerate() {
            rank[v as usize] = i;
        }
        let mut rep = vec![NONE; nv];
        let mut merged = 0;
        for v in 0..nv as u32 {
            if !part[v as usize] || rep[v as usize] != NONE {
                continue;
            }
            rep[v as usize] = v;
            let p = self.vpos[v as usize];
            let r = rank[v as usize];
            let mut scan = |range: &mut dyn Iterator<Item = usize>| {
                for i in range {
                    let w = order[i];
                    let q = self.vpos[w as usize];
                    if (q.x - p.x).abs() > distance {
                        break;
                    }
                    if w > v && rep[w as usize] == NONE && q.distance(p) <= distance {
                        rep[w as usize] = v;
                        merged += 1;
                    }
                }
            };
            scan(&mut (r + 1..order.len()));
            scan(&mut (0..r).rev());
        }
        if merged == 0 {
            return Ok(0);
        }
        let mut soup = Soup::from_mesh(self);
        for f in &mut soup.faces {
            for c in &mut f.c {
                if rep[*c as usize] != NONE {
                    *c = rep[*c as usize];
                }
            }
            // Drop corners equal to the one before them (cyclically).
            let mut out: Vec<u32> = Vec::with_capacity(f.c.len());
            for &c in &f.c {
                if out.last() != Some(&c) {
                    out.push(c);
                }
            }
            while out.len() > 1 && out.first() == out.last() {
                out.pop();
            }
            f.c = out.into();
        }
        soup.faces.retain(|f| f.c.len() >= 3);
        *self = soup.build()?;
        Ok(merged)
    }
}
