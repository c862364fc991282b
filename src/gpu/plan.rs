//! A step, described once: the uploads, dispatches, copies and read-backs of one submission, in order.
//!
//! Models emit plans through a [`PlanBuilder`]; the GPU executor records a plan into one command buffer,
//! the CPU executor runs each dispatch's CPU twin on host buffers. Dispatch counts, bytes moved and the
//! uniform arena's size are read from the plan, never from hand-kept formulas.

use super::kernel::KernelDef;
use super::memory::{Bind, BufId, MemoryLayout};
use super::params::ParamBlock;

/// What a dispatch moves and computes, counted by whoever emits it from the launch's own sizes (the
/// roofline of `bench`): bytes read and written in device memory, floating-point operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cost {
    pub bytes: u64,
    pub flops: u64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            bytes: self.bytes + o.bytes,
            flops: self.flops + o.flops,
        }
    }
}

/// One kernel launch.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub kernel: &'static KernelDef,
    /// Storage bindings in binding order (the entry point's used bindings, the uniform left out).
    pub binds: Vec<Bind>,
    /// The parameter block's bytes.
    pub params: Vec<u8>,
    pub workgroups: [u32; 3],
    /// Zero when the emitter did not count it.
    pub cost: Cost,
}

impl Dispatch {
    /// The parameter block, typed.
    pub fn params<P: ParamBlock>(&self) -> P {
        bytemuck::pod_read_unaligned(&self.params)
    }
}

/// One operation of a plan.
#[derive(Debug, Clone)]
pub enum Op<'a> {
    /// Writes `data` (u32 words; f32 values as their bits) at element `offset` of `dst`. Uploads
    /// happen before the submission's commands run, so they come first in a plan.
    Upload {
        dst: Bind,
        offset: usize,
        data: &'a [u32],
    },
    Dispatch(Dispatch),
    /// Copies `len` elements.
    Copy {
        src: Bind,
        src_offset: usize,
        dst: Bind,
        dst_offset: usize,
        len: usize,
    },
    /// Reads `len` elements back after the submission completes, without waiting for it; `tag`
    /// identifies the result.
    Read {
        src: Bind,
        offset: usize,
        len: usize,
        tag: u64,
    },
}

/// An ordered list of operations over one memory layout.
#[derive(Debug, Clone, Default)]
pub struct Plan<'a> {
    pub ops: Vec<Op<'a>>,
}

impl<'a> Plan<'a> {
    pub fn dispatches(&self) -> impl Iterator<Item = &Dispatch> {
        self.ops.iter().filter_map(|op| match op {
            Op::Dispatch(d) => Some(d),
            _ => None,
        })
    }

    /// Counted bytes and operations of every dispatch of kernel `name`.
    pub fn cost_of(&self, name: &str) -> Cost {
        self.dispatches()
            .filter(|d| d.kernel.name == name)
            .fold(Cost::default(), |a, d| a + d.cost)
    }

    /// Dispatches that launch at least one workgroup.
    pub fn dispatch_count(&self) -> usize {
        self.dispatches()
            .filter(|d| !d.workgroups.contains(&0))
            .count()
    }
}

/// Builds a plan against a memory layout.
pub struct PlanBuilder<'l, 'a> {
    pub layout: &'l MemoryLayout,
    /// The executor's per-dimension workgroup limit (launch grids respect it).
    pub max_per_dim: u32,
    plan: Plan<'a>,
    dispatched: bool,
}

impl<'l, 'a> PlanBuilder<'l, 'a> {
    pub fn new(layout: &'l MemoryLayout, max_per_dim: u32) -> Self {
        PlanBuilder {
            layout,
            max_per_dim,
            plan: Plan::default(),
            dispatched: false,
        }
    }

    /// The buffer called `name`.
    pub fn id(&self, name: &str) -> BufId {
        self.layout.id(name)
    }

    pub fn upload(&mut self, dst: impl Into<Bind>, offset: usize, data: &'a [u32]) {
        assert!(
            !self.dispatched,
            "uploads must precede the dispatches of a plan (they run before its commands)"
        );
        self.plan.ops.push(Op::Upload {
            dst: dst.into(),
            offset,
            data,
        });
    }

    pub fn dispatch<P: ParamBlock>(
        &mut self,
        kernel: &'static KernelDef,
        binds: &[Bind],
        params: &P,
        workgroups: [u32; 3],
    ) {
        self.dispatch_costed(kernel, binds, params, workgroups, Cost::default());
    }

    /// A dispatch with its counted bytes and operations.
    pub fn dispatch_costed<P: ParamBlock>(
        &mut self,
        kernel: &'static KernelDef,
        binds: &[Bind],
        params: &P,
        workgroups: [u32; 3],
        cost: Cost,
    ) {
        debug_assert_eq!(
            std::mem::size_of::<P>(),
            kernel.params.size,
            "kernel {} takes another parameter block",
            kernel.name
        );
        self.dispatched = true;
        self.plan.ops.push(Op::Dispatch(Dispatch {
            kernel,
            binds: binds.to_vec(),
            params: bytemuck::bytes_of(params).to_vec(),
            workgroups,
            cost,
        }));
    }

    pub fn copy(
        &mut self,
        src: impl Into<Bind>,
        src_offset: usize,
        dst: impl Into<Bind>,
        dst_offset: usize,
        len: usize,
    ) {
        self.dispatched = true;
        self.plan.ops.push(Op::Copy {
            src: src.into(),
            src_offset,
            dst: dst.into(),
            dst_offset,
            len,
        });
    }

    pub fn read(&mut self, src: impl Into<Bind>, offset: usize, len: usize, tag: u64) {
        self.dispatched = true;
        self.plan.ops.push(Op::Read {
            src: src.into(),
            offset,
            len,
            tag,
        });
    }

    pub fn finish(self) -> Plan<'a> {
        self.plan
    }
}
