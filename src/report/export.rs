//! Embeddings for serving: every user's and item's final embedding with its original id, as
//! safetensors and as NumPy `.npy`. Under a cosine scorer the rows are L2-normalised (each divided by
//! max(‖e‖, 1e-8), exactly the model's cosine), so an inner-product index (Faiss and the like) ranks
//! items as the model does — up to the μ clamp, which only ties items whose cosine is below μ.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use safetensors::{Dtype, tensor::TensorView};

use crate::eval::ranking::Scorer;
use crate::kernels::score_loss::NORM_EPS;
use crate::util::write_atomic;

/// One side's embeddings: `ids.len()` rows of `dim`.
pub struct Table<'a> {
    pub name: &'static str,
    pub ids: &'a [String],
    pub values: Vec<f32>,
    pub dim: usize,
}

/// Divides every row by max(‖row‖, 1e-8) (the norm taken in f64, as the twins do).
pub fn normalise_rows(values: &mut [f32], dim: usize) {
    for row in values.chunks_mut(dim) {
        let norm = row
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(NORM_EPS);
        for v in row {
            *v = (*v as f64 / norm) as f32;
        }
    }
}

/// A little-endian f32 `.npy` file (format version 1.0) of shape `shape`.
pub fn npy_f32(values: &[f32], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64
    // and ended by a newline.
    let total = (10 + header.len() + 1).next_multiple_of(64);
    header.push_str(&" ".repeat(total - 10 - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + values.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(bytemuck::cast_slice(values));
    out
}

/// The files an export to `out` writes: `out` (safetensors), and beside it `<stem>.users.npy`,
/// `<stem>.items.npy`, `<stem>.users.txt`, `<stem>.items.txt` (original ids, one per row).
pub fn output_paths(out: &Path) -> Vec<PathBuf> {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "embeddings".into());
    let dir = out.parent().unwrap_or(Path::new(""));
    let mut paths = vec![out.to_path_buf()];
    for side in ["users", "items"] {
        paths.push(dir.join(format!("{stem}.{side}.npy")));
        paths.push(dir.join(format!("{stem}.{side}.txt")));
    }
    paths
}

/// Writes both tables (normalised first when `scorer` is a cosine) to `out` and beside it.
pub fn write(
    out: &Path,
    tables: &mut [Table<'_>],
    scorer: Scorer,
    metadata: &[(&str, String)],
) -> anyhow::Result<Vec<PathBuf>> {
    let normalise = scorer.normalise_for_inner_product();
    if normalise {
        for t in tables.iter_mut() {
            normalise_rows(&mut t.values, t.dim);
        }
    }
    let paths = output_paths(out);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let bytes: Vec<Vec<u8>> = tables
        .iter()
        .map(|t| bytemuck::cast_slice(&t.values).to_vec())
        .collect();
    let views = tables
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            Ok((
                t.name.to_string(),
                TensorView::new(Dtype::F32, vec![t.ids.len(), t.dim], b)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let mut meta: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    meta.insert(
        "scorer".into(),
        if normalise {
            "inner product of these L2-normalised rows = the model's cosine".into()
        } else {
            "inner product".into()
        },
    );
    let data = safetensors::serialize(views, Some(meta))?;
    write_atomic(out, &data)?;
    for (k, t) in tables.iter().enumerate() {
        write_atomic(
            &paths[1 + 2 * k],
            &npy_f32(&t.values, &[t.ids.len(), t.dim]),
        )?;
        let mut text = t.ids.join("\n");
        text.push('\n');
        write_atomic(&paths[2 + 2 * k], text.as_bytes())
            .with_context(|| format!("writing the {} ids", t.name))?;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_describes_the_array() {
        let b = npy_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(
            header.contains("'shape': (2, 3)") && header.ends_with('\n'),
            "{header}"
        );
        assert_eq!(&b[10 + hlen..10 + hlen + 4], &1.0f32.to_le_bytes());
        assert_eq!(b.len(), 10 + hlen + 24);
    }

    #[test]
    fn normalised_rows_have_unit_norm_and_zero_rows_stay_zero() {
        let mut v = vec![3.0, 4.0, 0.0, 0.0];
        normalise_rows(&mut v, 2);
        assert_eq!(v, vec![0.6, 0.8, 0.0, 0.0]);
    }
}
