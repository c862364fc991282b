//! Records a sequence of dispatches into one command buffer: normally all in one compute pass; when
//! profiling, each dispatch in its own pass bracketed by GPU timestamps, so every kernel's time can be
//! read back by name (the per-kernel figures of `cobrar-gpu bench`).

use anyhow::{Context, ensure};

use super::GpuContext;
use super::kernel::Kernel;

/// GPU timestamps for up to `capacity` dispatches per recording.
pub struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    capacity: u32,
    period_ns: f64,
}

impl Profiler {
    /// `None` when the device has no timestamp queries.
    pub fn new(ctx: &GpuContext, capacity: u32) -> Option<Profiler> {
        if !ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let count = 2 * capacity;
        let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("kernel timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let bytes = (count as u64 * 8).next_multiple_of(wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT);
        let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp read-back"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let period_ns = ctx.queue.get_timestamp_period() as f64;
        Some(Profiler {
            queries,
            resolve,
            staging,
            capacity,
            period_ns,
        })
    }
}

/// Dispatch recorder over one command encoder.
pub struct Recorder<'p> {
    encoder: wgpu::CommandEncoder,
    pass: Option<wgpu::ComputePass<'static>>,
    profiler: Option<&'p Profiler>,
    labels: Vec<&'static str>,
}

impl<'p> Recorder<'p> {
    pub fn new(ctx: &GpuContext, label: &str, profiler: Option<&'p Profiler>) -> Recorder<'p> {
        let encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        Recorder {
            encoder,
            pass: None,
            profiler,
            labels: Vec::new(),
        }
    }

    /// Records one dispatch of `kernel` (skipped when a dimension is 0).
    pub fn dispatch(
        &mut self,
        kernel: &Kernel,
        group: &wgpu::BindGroup,
        uniform_offset: u32,
        workgroups: [u32; 3],
    ) {
        if workgroups.contains(&0) {
            return;
        }
        match self.profiler {
            Some(p) if (self.labels.len() as u32) < p.capacity => {
                let i = self.labels.len() as u32;
                self.labels.push(kernel.def.name);
                let mut pass = self
                    .encoder
                    .begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(kernel.def.name),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: &p.queries,
                            beginning_of_pass_write_index: Some(2 * i),
                            end_of_pass_write_index: Some(2 * i + 1),
                        }),
                    });
                kernel.dispatch(&mut pass, group, uniform_offset, workgroups);
            }
            _ => {
                let encoder = &mut self.encoder;
                let pass = self.pass.get_or_insert_with(|| {
                    encoder
                        .begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: None,
                            timestamp_writes: None,
                        })
                        .forget_lifetime()
                });
                kernel.dispatch(pass, group, uniform_offset, workgroups);
            }
        }
    }

    /// Closes any open pass and gives the encoder back (to add copies).
    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        &mut self.encoder
    }

    /// Finishes the command buffer; with a profiler, also resolves the timestamps.
    pub fn finish(mut self) -> (wgpu::CommandBuffer, Vec<&'static str>) {
        self.pass = None;
        if let Some(p) = self.profiler
            && !self.labels.is_empty()
        {
            let n = 2 * self.labels.len() as u32;
            self.encoder
                .resolve_query_set(&p.queries, 0..n, &p.resolve, 0);
            self.encoder
                .copy_buffer_to_buffer(&p.resolve, 0, &p.staging, 0, n as u64 * 8);
        }
        (self.encoder.finish(), self.labels)
    }
}

/// Reads the kernel times (ns) of the last profiled submission: (kernel name, nanoseconds) per dispatch.
pub fn read_times(
    ctx: &GpuContext,
    p: &Profiler,
    labels: &[&'static str],
) -> anyhow::Result<Vec<(&'static str, f64)>> {
    if labels.is_empty() {
        return Ok(Vec::new());
    }
    let n = 2 * labels.len();
    let slice = p.staging.slice(0..n as u64 * 8);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    rx.recv()
        .context("timestamp read-back cancelled")?
        .map_err(|e| anyhow::anyhow!("timestamp read-back: {e}"))?;
    let stamps: Vec<u64> = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| anyhow::anyhow!("timestamp read-back: {e}"))?;
        bytemuck::pod_collect_to_vec(&view[..])
    };
    p.staging.unmap();
    ensure!(stamps.len() == n, "timestamp count");
    Ok(labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            (
                l,
                stamps[2 * i + 1].saturating_sub(stamps[2 * i]) as f64 * p.period_ns,
            )
        })
        .collect())
}
