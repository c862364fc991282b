//! What the kernel definitions and the CPU executor share: the twins' float type, a kernel's pair of
//! twins, and the view of one dispatch a twin works on. A leaf of the runtime (it names no kernel, plan
//! or executor), so `kernel` can name its twins and `cpu` can call them without a cycle between them.

use super::memory::Bind;
use super::params::ParamBlock;

/// The float type of a CPU twin: `f32` to mirror the GPU, `f64` for finite-difference checks. Twins do
/// their arithmetic in f64 either way and round their outputs to `T`.
pub trait Real: Copy + Default + PartialOrd + Send + Sync + std::fmt::Debug + 'static {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    /// This type's twin of a kernel.
    fn twin(t: &Twin) -> fn(&mut CpuCall<'_, Self>);
}

impl Real for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn twin(t: &Twin) -> fn(&mut CpuCall<'_, f32>) {
        t.f32
    }
}

impl Real for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
    fn twin(t: &Twin) -> fn(&mut CpuCall<'_, f64>) {
        t.f64
    }
}

/// The CPU twin of a kernel, for both float types of the CPU executor.
#[derive(Clone, Copy)]
pub struct Twin {
    pub f32: fn(&mut CpuCall<'_, f32>),
    pub f64: fn(&mut CpuCall<'_, f64>),
}

impl Twin {
    pub fn get<T: Real>(&self) -> fn(&mut CpuCall<'_, T>) {
        T::twin(self)
    }
}

/// The value of override constant `name` among a kernel's `constants` (panics when the kernel does
/// not set it: a bug).
pub fn constant(kernel: &str, constants: &[(&'static str, f64)], name: &str) -> f64 {
    constants
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("kernel {kernel} sets no constant {name}"))
}

/// A host buffer: f32 buffers hold `T`, u32 buffers raw words; one vector per chunk.
#[derive(Debug, Clone)]
pub enum HostBuf<T> {
    F(Vec<Vec<T>>),
    U(Vec<Vec<u32>>),
}

/// What a CPU twin sees of one dispatch: its kernel's name and constants, its parameter block and
/// bound buffers. A twin reads and writes the buffers by the name of the WGSL binding it mirrors
/// (`c.f("grads_act")`), resolved through the entry point's reflected storage bindings; a name the
/// entry point does not bind panics, naming the kernel and the name (a bug the twin tests catch).
pub struct CpuCall<'a, T> {
    /// The kernel's name (for messages).
    pub kernel: &'static str,
    pub workgroups: [u32; 3],
    constants: &'static [(&'static str, f64)],
    params: &'a [u8],
    /// The entry point's storage bindings' WGSL names, in binding order (the order of `binds`).
    names: &'a [&'static str],
    binds: &'a [Bind],
    bufs: &'a mut [HostBuf<T>],
}

impl<'a, T: Real> CpuCall<'a, T> {
    /// The call of kernel `kernel` (with override `constants`) on `bufs`, bound by `binds`, whose
    /// entries are the entry point's storage bindings `names` (in binding order).
    pub fn new(
        kernel: &'static str,
        constants: &'static [(&'static str, f64)],
        workgroups: [u32; 3],
        params: &'a [u8],
        names: &'a [&'static str],
        binds: &'a [Bind],
        bufs: &'a mut [HostBuf<T>],
    ) -> CpuCall<'a, T> {
        assert_eq!(
            names.len(),
            binds.len(),
            "kernel {kernel} binds {names:?}, the dispatch passes {} buffers",
            binds.len()
        );
        CpuCall {
            kernel,
            workgroups,
            constants,
            params,
            names,
            binds,
            bufs,
        }
    }

    /// The dispatch's parameter block.
    pub fn params<P: ParamBlock>(&self) -> P {
        bytemuck::pod_read_unaligned(self.params)
    }

    /// Override constant `name` of the kernel.
    pub fn constant(&self, name: &str) -> f64 {
        constant(self.kernel, self.constants, name)
    }

    /// The buffer and chunk bound to the WGSL variable `name`.
    fn binding(&self, name: &str) -> (usize, usize) {
        let Some(slot) = self.names.iter().position(|n| *n == name) else {
            panic!(
                "kernel {}: its entry point binds no storage variable {name} (it binds {:?})",
                self.kernel, self.names
            )
        };
        let b = self.binds[slot];
        (b.buf.0 as usize, b.chunk as usize)
    }

    /// The buffer bound to WGSL variable `name`, as floats.
    pub fn f(&self, name: &str) -> &[T] {
        let (b, c) = self.binding(name);
        match &self.bufs[b] {
            HostBuf::F(v) => &v[c],
            HostBuf::U(_) => panic!("{}: binding {name} is a u32 buffer", self.kernel),
        }
    }

    pub fn f_mut(&mut self, name: &str) -> &mut [T] {
        let (b, c) = self.binding(name);
        let kernel = self.kernel;
        match &mut self.bufs[b] {
            HostBuf::F(v) => &mut v[c],
            HostBuf::U(_) => panic!("{kernel}: binding {name} is a u32 buffer"),
        }
    }

    /// The buffer bound to WGSL variable `name`, as u32 words.
    pub fn u(&self, name: &str) -> &[u32] {
        let (b, c) = self.binding(name);
        match &self.bufs[b] {
            HostBuf::U(v) => &v[c],
            HostBuf::F(_) => panic!("{}: binding {name} is an f32 buffer", self.kernel),
        }
    }

    pub fn u_mut(&mut self, name: &str) -> &mut [u32] {
        let (b, c) = self.binding(name);
        let kernel = self.kernel;
        match &mut self.bufs[b] {
            HostBuf::U(v) => &mut v[c],
            HostBuf::F(_) => panic!("{kernel}: binding {name} is an f32 buffer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::memory::BufId;

    fn with_call(f: impl FnOnce(&mut CpuCall<'_, f32>)) {
        let names = ["grads_act", "index"];
        let binds = [Bind::from(BufId(1)), Bind::from(BufId(0))];
        let mut bufs = vec![
            HostBuf::U(vec![vec![7u32; 2]]),
            HostBuf::F(vec![vec![0.5f32; 3]]),
        ];
        let mut call = CpuCall::new("k.test", &[], [1, 1, 1], &[], &names, &binds, &mut bufs);
        f(&mut call);
    }

    #[test]
    fn a_twin_reads_the_buffer_bound_to_the_wgsl_name() {
        with_call(|c| {
            assert_eq!(c.f("grads_act"), &[0.5; 3]);
            c.u_mut("index")[1] = 9;
            assert_eq!(c.u("index"), &[7, 9]);
        });
    }

    #[test]
    #[should_panic(expected = "kernel k.test: its entry point binds no storage variable grad ")]
    fn an_unknown_binding_name_panics_naming_kernel_and_name() {
        with_call(|c| {
            c.f("grad");
        });
    }
}
