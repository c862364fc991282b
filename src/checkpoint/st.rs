//! Deterministic, checksummed safetensors files.
//!
//! The writer lays the header out with sorted keys (the `safetensors` crate serialises metadata from a
//! `HashMap`, whose order changes from run to run), so the same tensors give the same bytes. The
//! header's metadata carries `sha256`, the SHA-256 of the data section; the reader verifies it, so a
//! file changed after it was written (flipped bytes, a truncated copy) is refused with a clear message
//! rather than loaded. Files are parsed by the `safetensors` crate.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::hex;
use anyhow::{Context, bail, ensure};
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

/// Metadata key of the data checksum.
pub const CHECKSUM_KEY: &str = "sha256";

/// One tensor to write.
pub struct Tensor<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Data<'a>,
}

/// A tensor's values: parameters and moments are f32; lazy Adam's row step counts are u32.
#[derive(Clone, Copy)]
pub enum Data<'a> {
    F32(&'a [f32]),
    U32(&'a [u32]),
}

impl Data<'_> {
    fn len(&self) -> usize {
        match self {
            Data::F32(d) => d.len(),
            Data::U32(d) => d.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Data::F32(d) => bytemuck::cast_slice(d),
            Data::U32(d) => bytemuck::cast_slice(d),
        }
    }

    fn dtype(&self) -> &'static str {
        match self {
            Data::F32(_) => "F32",
            Data::U32(_) => "U32",
        }
    }
}

impl<'a> From<&'a [f32]> for Data<'a> {
    fn from(d: &'a [f32]) -> Data<'a> {
        Data::F32(d)
    }
}

/// The file's bytes: 8-byte header length, the JSON header (sorted keys, padded with spaces to a
/// multiple of 8), then every tensor's little-endian data in name order. `metadata` gains `sha256`.
pub fn serialize(tensors: &[Tensor<'_>], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut order: Vec<&Tensor<'_>> = tensors.iter().collect();
    order.sort_by(|a, b| a.name.cmp(&b.name));
    let mut data: Vec<u8> = Vec::with_capacity(order.iter().map(|t| t.data.len() * 4).sum());
    let mut header = serde_json::Map::new();
    for t in &order {
        assert_eq!(
            t.shape.iter().product::<usize>(),
            t.data.len(),
            "tensor {}: shape",
            t.name
        );
        let start = data.len();
        data.extend_from_slice(t.data.bytes());
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": t.data.dtype(), "shape": t.shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut meta = metadata.clone();
    meta.insert(CHECKSUM_KEY.into(), hex(&Sha256::digest(&data)));
    header.insert(
        "__metadata__".into(),
        serde_json::to_value(meta).expect("strings"),
    );
    let mut json = serde_json::to_vec(&header).expect("serialisable");
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + data.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    out
}

/// A parsed, verified file.
pub struct File {
    bytes: Vec<u8>,
    pub metadata: BTreeMap<String, String>,
    /// Whether the file carried a checksum (files of older versions do not).
    pub checksummed: bool,
}

impl File {
    /// Reads `path`, parses it and verifies its checksum.
    pub fn read(path: &Path) -> anyhow::Result<File> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        File::parse(bytes, path)
    }

    pub fn parse(bytes: Vec<u8>, path: &Path) -> anyhow::Result<File> {
        let (header_len, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a valid safetensors file ({e}); it is damaged or not a cobrar-gpu checkpoint",
                path.display()
            )
        })?;
        let metadata: BTreeMap<String, String> = meta
            .metadata()
            .clone()
            .map(|m| m.into_iter().collect())
            .unwrap_or_default();
        let checksummed = metadata.contains_key(CHECKSUM_KEY);
        if let Some(want) = metadata.get(CHECKSUM_KEY) {
            let got = hex(&Sha256::digest(&bytes[8 + header_len..]));
            if &got != want {
                bail!(
                    "{}: corrupted: the tensor data's checksum does not match the one written with it \
                     (sha256 {got}, expected {want}); restore the file or retrain",
                    path.display()
                );
            }
        }
        // Parse once more through the crate's full validation (offsets, sizes).
        SafeTensors::deserialize(&bytes).map_err(|e| {
            anyhow::anyhow!("{}: not a valid safetensors file ({e})", path.display())
        })?;
        Ok(File {
            bytes,
            metadata,
            checksummed,
        })
    }

    /// Tensor `name` as f32 values with its shape; `None` when absent.
    pub fn tensor(
        &self,
        name: &str,
        path: &Path,
    ) -> anyhow::Result<Option<(Vec<usize>, Vec<f32>)>> {
        self.typed(name, path, Dtype::F32)
    }

    /// Tensor `name` as u32 values with its shape; `None` when absent.
    pub fn tensor_u32(
        &self,
        name: &str,
        path: &Path,
    ) -> anyhow::Result<Option<(Vec<usize>, Vec<u32>)>> {
        self.typed(name, path, Dtype::U32)
    }

    fn typed<T: bytemuck::Pod>(
        &self,
        name: &str,
        path: &Path,
        dtype: Dtype,
    ) -> anyhow::Result<Option<(Vec<usize>, Vec<T>)>> {
        let st = SafeTensors::deserialize(&self.bytes).expect("validated in parse");
        let t = match st.tensor(name) {
            Ok(t) => t,
            Err(safetensors::SafeTensorError::TensorNotFound(_)) => return Ok(None),
            Err(e) => bail!("{}: tensor {name}: {e}", path.display()),
        };
        ensure!(
            t.dtype() == dtype,
            "{}: tensor {name} is {:?}, expected {dtype:?}",
            path.display(),
            t.dtype()
        );
        Ok(Some((
            t.shape().to_vec(),
            bytemuck::pod_collect_to_vec(t.data()),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [7u32];
        let meta = BTreeMap::from([
            ("z".to_string(), "last".to_string()),
            ("a".into(), "first".into()),
        ]);
        serialize(
            &[
                Tensor {
                    name: "w".into(),
                    shape: vec![2, 3],
                    data: Data::F32(&a),
                },
                Tensor {
                    name: "b".into(),
                    shape: vec![1],
                    data: Data::U32(&b),
                },
            ],
            &meta,
        )
    }

    #[test]
    fn same_tensors_same_bytes_and_the_crate_reads_them() {
        let bytes = sample();
        assert_eq!(bytes, sample());
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("w").unwrap().shape(), &[2, 3]);
        let f = File::parse(bytes, Path::new("x")).unwrap();
        assert!(f.checksummed);
        assert_eq!(f.metadata["a"], "first");
        assert_eq!(
            f.tensor_u32("b", Path::new("x")).unwrap().unwrap().1,
            vec![7]
        );
        assert_eq!(f.tensor("w", Path::new("x")).unwrap().unwrap().1[5], 6.0);
        let e = f.tensor("b", Path::new("x")).unwrap_err().to_string();
        assert!(e.contains("tensor b is U32, expected F32"), "{e}");
        assert!(f.tensor("nope", Path::new("x")).unwrap().is_none());
    }

    #[test]
    fn a_changed_byte_is_refused() {
        let mut bytes = sample();
        let n = bytes.len();
        bytes[n - 3] ^= 0x40; // in the data section
        let e = File::parse(bytes, Path::new("m.safetensors"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("m.safetensors: corrupted"), "{e}");
        let mut bytes = sample();
        bytes[12] = b'}'; // in the header
        assert!(File::parse(bytes, Path::new("m")).is_err());
        assert!(File::parse(vec![1, 2, 3], Path::new("m")).is_err());
    }
}
