//! `.npy` arrays through the `npyz` crate: written as NumPy's `float32` in C order, read from
//! any floating-point `.npy` NumPy writes (`float32` or `float64`, either byte order, C or
//! Fortran order) as `f32` in C order; anything else is refused with the reason.

use std::fs;
use std::path::Path;

use super::{write_atomic, Array};
use crate::{Error, Result};

/// Encodes an array as `.npy` (`<f4`, C order) with the `npyz` crate.
pub fn encode_npy(a: &Array) -> Vec<u8> {
    use npyz::WriterBuilder;
    let shape: Vec<u64> = a.shape.iter().map(|&s| s as u64).collect();
    let mut out = Vec::with_capacity(128 + 4 * a.data.len());
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()
        .expect("writing to memory");
    writer
        .extend(a.data.iter().copied())
        .expect("writing to memory");
    writer.finish().expect("writing to memory");
    out
}

/// Writes an array as `.npy`, atomically.
pub fn write_npy(path: &Path, a: &Array) -> Result<()> {
    write_atomic(path, &encode_npy(a))
}

/// Reads a `.npy` file of floating-point values (NumPy's `float32` or `float64`, either byte
/// order, C or Fortran order; read with the `npyz` crate) as `f32` in C order. Any other dtype,
/// a truncated body or a malformed header is an error naming the file.
pub fn read_npy(path: &Path) -> Result<Array> {
    let bytes = fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_npy(&bytes).map_err(|message| Error::Corrupt {
        path: path.to_path_buf(),
        message,
    })
}

fn decode_npy(bytes: &[u8]) -> std::result::Result<Array, String> {
    use npyz::{DType, Order, TypeChar};
    if !bytes.starts_with(b"\x93NUMPY") {
        return Err("not a .npy file (bad magic bytes)".into());
    }
    let mut body = bytes;
    let header = npyz::NpyHeader::from_reader(&mut body)
        .map_err(|e| format!("unreadable .npy header: {e}"))?;
    let shape: Vec<usize> = header
        .shape()
        .iter()
        .map(|&s| usize::try_from(s).map_err(|_| format!("dimension {s} is beyond this machine")))
        .collect::<std::result::Result<_, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |n, &s| n.checked_mul(s))
        .ok_or_else(|| format!("shape {shape:?} has more values than this machine can address"))?;
    let width = match header.dtype() {
        DType::Plain(ts)
            if ts.type_char() == TypeChar::Float && matches!(ts.size_field(), 4 | 8) =>
        {
            ts.size_field() as usize
        }
        DType::Plain(ts) => {
            return Err(format!(
                "dtype '{ts}' is not floating point of 4 or 8 bytes (save with \
                 x.astype(np.float32))"
            ))
        }
        other => return Err(format!("structured dtype {other:?} is not a plain array")),
    };
    if body.len() as u128 != n as u128 * width as u128 {
        return Err(format!(
            "shape {shape:?} of {width}-byte values needs {} data bytes, found {} (truncated or \
             corrupt)",
            n as u128 * width as u128,
            body.len()
        ));
    }
    let order = header.order();
    let file = npyz::NpyFile::with_header(header, body);
    let read = |e: std::io::Error| format!("unreadable data: {e}");
    let values: Vec<f32> = match width {
        4 => file.into_vec::<f32>().map_err(read)?,
        _ => file
            .into_vec::<f64>()
            .map_err(read)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
    };
    let data = match order {
        Order::C => values,
        Order::Fortran => fortran_to_c(&values, &shape),
    };
    Ok(Array { shape, data })
}

/// The values of a Fortran-ordered array (first index fastest) in C order (last index fastest).
fn fortran_to_c(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        out.push(
            values[index
                .iter()
                .zip(&strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()],
        );
        // the next C-order index: the last axis fastest
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file as NumPy writes it: format 1.0, the header dictionary padded to 64 bytes.
    fn numpy_bytes(descr: &str, fortran: bool, shape: &str, body: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
        header.push_str(&" ".repeat(63 - (10 + header.len()) % 64));
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn float32_round_trips_and_reads_like_numpy_writes_it() {
        let a = Array::new(vec![2, 3], vec![0.5, -1.0, 2.0, 3.25, 1e-3, -7.0]).unwrap();
        assert_eq!(decode_npy(&encode_npy(&a)).unwrap(), a);
        let body: Vec<u8> = a.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let numpy = numpy_bytes("<f4", false, "(2, 3)", &body);
        assert_eq!(decode_npy(&numpy).unwrap(), a);
    }

    #[test]
    fn float64_big_endian_and_fortran_order_are_read_in_c_order() {
        // x = [[0, 1, 2], [3, 4, 5]]: Fortran order stores the columns 0 3 1 4 2 5
        let want = Array::new(vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let f64s = |v: &[f64], big: bool| -> Vec<u8> {
            v.iter()
                .flat_map(|x| {
                    if big {
                        x.to_be_bytes()
                    } else {
                        x.to_le_bytes()
                    }
                })
                .collect()
        };
        let c = numpy_bytes(
            "<f8",
            false,
            "(2, 3)",
            &f64s(&[0., 1., 2., 3., 4., 5.], false),
        );
        assert_eq!(decode_npy(&c).unwrap(), want);
        let fortran = f64s(&[0., 3., 1., 4., 2., 5.], true);
        let f = numpy_bytes(">f8", true, "(2, 3)", &fortran);
        assert_eq!(decode_npy(&f).unwrap(), want);
        // three axes: element (i, j, k) of a [2, 2, 2] array at i + 2 j + 4 k in Fortran order
        let values: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let c_order: Vec<f32> = (0..8)
            .map(|n| {
                let (i, j, k) = (n / 4, (n / 2) % 2, n % 2);
                values[i + 2 * j + 4 * k]
            })
            .collect();
        assert_eq!(fortran_to_c(&values, &[2, 2, 2]), c_order);
    }

    #[test]
    fn other_dtypes_truncation_and_garbage_are_refused_with_the_reason() {
        let ints = numpy_bytes("<i4", false, "(2,)", &[1, 0, 0, 0, 2, 0, 0, 0]);
        let e = decode_npy(&ints).unwrap_err();
        assert!(e.contains("dtype '<i4' is not floating point"), "{e}");
        let short = numpy_bytes("<f4", false, "(4,)", &[0; 12]);
        let e = decode_npy(&short).unwrap_err();
        assert!(e.contains("needs 16 data bytes, found 12"), "{e}");
        assert!(decode_npy(b"PK\x03\x04")
            .unwrap_err()
            .contains("bad magic bytes"));
        let e = decode_npy(&numpy_bytes("<f4", false, "(2, 3", &[])).unwrap_err();
        assert!(e.contains("unreadable .npy header"), "{e}");
    }
}
