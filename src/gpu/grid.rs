//! Launch grids. WebGPU limits each grid dimension (65,535 workgroups on most adapters), so a long
//! 1-D launch folds into x and y; kernels recover the linear workgroup index as `x + y * groups_x`,
//! with `groups_x` passed in their parameter block.

/// Workgroups of one dispatch and the x-extent the kernel needs to linearise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub workgroups: [u32; 3],
    pub groups_x: u32,
}

impl Grid {
    /// `n` workgroups in a line, folded into a 2-D grid when `n` exceeds `max_per_dim`.
    pub fn linear(n: usize, max_per_dim: u32) -> Grid {
        let max = max_per_dim.max(1) as usize;
        let workgroups = if n <= max {
            [n as u32, 1, 1]
        } else {
            [max as u32, n.div_ceil(max) as u32, 1]
        };
        Grid {
            workgroups,
            groups_x: workgroups[0],
        }
    }

    /// Enough workgroups of `per_group` items each to cover `n` items, in a line.
    pub fn cover(n: usize, per_group: usize, max_per_dim: u32) -> Grid {
        Grid::linear(n.div_ceil(per_group), max_per_dim)
    }

    /// Tiles of `tile` over (`cols`, `rows`) with `z` slices (the dense kernels).
    pub fn tiles(cols: usize, rows: usize, tile: usize, z: usize) -> Grid {
        let workgroups = [
            cols.div_ceil(tile) as u32,
            rows.div_ceil(tile) as u32,
            z as u32,
        ];
        Grid {
            workgroups,
            groups_x: workgroups[0],
        }
    }
}

/// The per-dimension limit every launch respects: the device's, or WebGPU's default before a device
/// exists (the CPU executor uses the same grids).
pub const DEFAULT_MAX_PER_DIM: u32 = 65_535;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_long_launches_and_covers_every_group() {
        assert_eq!(Grid::linear(10, 65_535).workgroups, [10, 1, 1]);
        let g = Grid::linear(70_001, 65_535);
        assert_eq!(g.workgroups, [65_535, 2, 1]);
        assert!((g.workgroups[0] * g.workgroups[1]) as usize >= 70_001);
        assert_eq!(Grid::cover(129, 64, 65_535).workgroups, [3, 1, 1]);
        assert_eq!(Grid::tiles(130, 64, 64, 2).workgroups, [3, 1, 2]);
        assert_eq!(Grid::linear(0, 65_535).workgroups, [0, 1, 1]);
    }
}
