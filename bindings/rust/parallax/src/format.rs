// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Formats: what a buffer's bytes are (typed frames), and checked typed views of them.
//!
//! A [`Format`] says that a buffer holds an array of one [`Dtype`] and a shape of 1 to 8
//! dimensions at its first byte (`px_format_t`). [`Buffer::format`](crate::Buffer::format) reads
//! it, [`Buffer::set_format`](crate::Buffer::set_format) sets it; channels and streams carry it
//! with the buffer. [`Buffer::as_slice_of`](crate::Buffer::as_slice_of) and
//! [`Slot::as_mut_slice_of`](crate::Slot::as_mut_slice_of) view the bytes as `&[T]` /
//! `&mut [T]` for the [`Element`] types, after checking the dtype, contiguity, alignment and
//! size.
use parallax_sys as sys;

use crate::error::{Error, Result, Status};

/// Dimensions a format may have (`PX_FORMAT_MAX_DIMS`).
pub const MAX_DIMS: usize = sys::PX_FORMAT_MAX_DIMS as usize;

/// The element type of a typed buffer (`PX_DTYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// `PX_DTYPE_U8`
    U8,
    /// `PX_DTYPE_I8`
    I8,
    /// `PX_DTYPE_U16`
    U16,
    /// `PX_DTYPE_I16`
    I16,
    /// `PX_DTYPE_U32`
    U32,
    /// `PX_DTYPE_I32`
    I32,
    /// `PX_DTYPE_U64`
    U64,
    /// `PX_DTYPE_I64`
    I64,
    /// `PX_DTYPE_F16`: IEEE half precision (viewed as `u16` bits: Rust has no stable `f16`).
    F16,
    /// `PX_DTYPE_BF16`: bfloat16 (viewed as `u16` bits).
    BF16,
    /// `PX_DTYPE_F32`
    F32,
    /// `PX_DTYPE_F64`
    F64,
    /// A code this crate does not know (a newer library): its buffers can be received and
    /// their format read, but not viewed as a typed slice.
    Unknown(u32),
}

impl Dtype {
    /// The dtype of a C code (`PX_DTYPE_*`); unknown codes give [`Dtype::Unknown`].
    pub fn from_code(code: u32) -> Dtype {
        match code {
            sys::PX_DTYPE_U8 => Dtype::U8,
            sys::PX_DTYPE_I8 => Dtype::I8,
            sys::PX_DTYPE_U16 => Dtype::U16,
            sys::PX_DTYPE_I16 => Dtype::I16,
            sys::PX_DTYPE_U32 => Dtype::U32,
            sys::PX_DTYPE_I32 => Dtype::I32,
            sys::PX_DTYPE_U64 => Dtype::U64,
            sys::PX_DTYPE_I64 => Dtype::I64,
            sys::PX_DTYPE_F16 => Dtype::F16,
            sys::PX_DTYPE_BF16 => Dtype::BF16,
            sys::PX_DTYPE_F32 => Dtype::F32,
            sys::PX_DTYPE_F64 => Dtype::F64,
            other => Dtype::Unknown(other),
        }
    }

    /// The C code (`PX_DTYPE_*`).
    pub fn code(self) -> u32 {
        match self {
            Dtype::U8 => sys::PX_DTYPE_U8,
            Dtype::I8 => sys::PX_DTYPE_I8,
            Dtype::U16 => sys::PX_DTYPE_U16,
            Dtype::I16 => sys::PX_DTYPE_I16,
            Dtype::U32 => sys::PX_DTYPE_U32,
            Dtype::I32 => sys::PX_DTYPE_I32,
            Dtype::U64 => sys::PX_DTYPE_U64,
            Dtype::I64 => sys::PX_DTYPE_I64,
            Dtype::F16 => sys::PX_DTYPE_F16,
            Dtype::BF16 => sys::PX_DTYPE_BF16,
            Dtype::F32 => sys::PX_DTYPE_F32,
            Dtype::F64 => sys::PX_DTYPE_F64,
            Dtype::Unknown(code) => code,
        }
    }

    /// Bytes of one element, as the loaded library counts them (`px_dtype_size`); 0 for a
    /// dtype it does not know.
    pub fn size(self) -> usize {
        // SAFETY: a pure function of its argument.
        unsafe { sys::px_dtype_size(self.code()) }
    }
}

/// A fourcc pixel-format code from its four characters, `a | b << 8 | c << 16 | d << 24` (the
/// V4L2 and DRM convention), e.g. `fourcc(b"RGB3")`.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

/// What a typed buffer's bytes are (`px_format_t`): an array of `dtype` with `shape` (1 to 8
/// dimensions, elements per dimension) and `strides` (bytes between neighbours along each
/// dimension) at the buffer's first byte, plus an optional fourcc pixel-format code.
///
/// ```
/// use parallax::{fourcc, Dtype, Format};
///
/// let rgb = Format::new(Dtype::U8, &[1080, 1920, 3])?.with_fourcc(fourcc(b"RGB3"));
/// assert_eq!(rgb.shape(), &[1080, 1920, 3]);
/// assert_eq!(rgb.strides(), &[1920 * 3, 3, 1]); // C-contiguous (row-major)
/// assert_eq!(rgb.nbytes(), 1080 * 1920 * 3);
/// // Every other column of a 4x4 f32 image: not contiguous, so no typed slice of it.
/// let cols = Format::with_strides(Dtype::F32, &[4, 2], &[16, 8])?;
/// assert!(!cols.is_contiguous());
/// # Ok::<(), parallax::Error>(())
/// ```
///
/// Constructors check the shape alone (1 to 8 dimensions, strides multiples of the element
/// size, sizes that fit in `i64`); whether it fits a buffer is checked by
/// [`Buffer::set_format`](crate::Buffer::set_format), with the library's message.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Format {
    dtype: Dtype,
    ndim: usize,
    fourcc: u32,
    shape: [usize; MAX_DIMS],
    strides: [usize; MAX_DIMS], // always the effective strides, never the C side's all-zero
}

impl Format {
    /// A C-contiguous (row-major) array of `dtype` with `shape`.
    pub fn new(dtype: Dtype, shape: &[usize]) -> Result<Format> {
        let f = Format::checked_shape("Format::new", dtype, shape)?;
        Ok(Format {
            strides: f.contiguous_strides(),
            ..f
        })
    }

    /// An array of `dtype` with `shape` and byte `strides` (one per dimension, each a multiple
    /// of the element size: the C API's rule).
    pub fn with_strides(dtype: Dtype, shape: &[usize], strides: &[usize]) -> Result<Format> {
        let what = "Format::with_strides";
        let mut f = Format::checked_shape(what, dtype, shape)?;
        if strides.len() != shape.len() {
            return Err(invalid(format!(
                "{what}: {} strides for {} dimensions",
                strides.len(),
                shape.len()
            )));
        }
        let size = dtype.size();
        for (d, &s) in strides.iter().enumerate() {
            if !s.is_multiple_of(size) || i64::try_from(s).is_err() {
                return Err(invalid(format!(
                    "{what}: stride {d} is {s} bytes, not a multiple of the {size}-byte \
                     element that fits in i64"
                )));
            }
        }
        f.strides[..strides.len()].copy_from_slice(strides);
        Ok(f)
    }

    /// The same format with a fourcc pixel-format code (see [`fourcc`]; 0 for none).
    pub fn with_fourcc(self, fourcc: u32) -> Format {
        Format { fourcc, ..self }
    }

    fn checked_shape(what: &str, dtype: Dtype, shape: &[usize]) -> Result<Format> {
        if dtype.size() == 0 {
            return Err(invalid(format!("{what}: unknown dtype {}", dtype.code())));
        }
        if shape.is_empty() || shape.len() > MAX_DIMS {
            return Err(invalid(format!(
                "{what}: {} dimensions; a format has 1 to {MAX_DIMS} (Buffer::clear_format \
                 makes a buffer untyped)",
                shape.len()
            )));
        }
        if let Some(d) = shape.iter().position(|&n| i64::try_from(n).is_err()) {
            return Err(invalid(format!(
                "{what}: dimension {d} has {} elements, more than i64 holds",
                shape[d]
            )));
        }
        let mut f = Format {
            dtype,
            ndim: shape.len(),
            fourcc: 0,
            shape: [0; MAX_DIMS],
            strides: [0; MAX_DIMS],
        };
        f.shape[..shape.len()].copy_from_slice(shape);
        Ok(f)
    }

    /// The format of a C struct; `None` for ndim 0 (untyped). The library validated it (a
    /// received one too), but nothing is trusted: anything out of range is `None`.
    pub(crate) fn from_c(c: &sys::px_format_t) -> Option<Format> {
        let ndim = usize::try_from(c.ndim)
            .ok()
            .filter(|n| (1..=MAX_DIMS).contains(n))?;
        let mut f = Format {
            dtype: Dtype::from_code(c.dtype),
            ndim,
            fourcc: c.fourcc,
            shape: [0; MAX_DIMS],
            strides: [0; MAX_DIMS],
        };
        for d in 0..ndim {
            f.shape[d] = usize::try_from(c.shape[d]).ok()?;
            f.strides[d] = usize::try_from(c.strides[d]).ok()?;
        }
        if f.strides[..ndim].iter().all(|&s| s == 0) {
            f.strides = f.contiguous_strides(); // the C API's "all 0 means C-contiguous"
        }
        Some(f)
    }

    /// The C struct: strides all 0 when they are the contiguous ones (what the C API means by
    /// "C-contiguous"), so that a contiguous format reads back the same from any side.
    pub(crate) fn to_c(self) -> sys::px_format_t {
        let mut c = sys::px_format_t {
            dtype: self.dtype.code(),
            ndim: self.ndim as u32,
            fourcc: self.fourcc,
            ..sys::px_format_t::default()
        };
        let explicit = self.strides != self.contiguous_strides();
        for d in 0..self.ndim {
            // Both checked to fit in i64 by every constructor.
            c.shape[d] = self.shape[d] as i64;
            c.strides[d] = if explicit { self.strides[d] as i64 } else { 0 };
        }
        c
    }

    /// Row-major byte strides for this shape (saturating: a shape too large to exist is
    /// refused by the library when set, so the exact value never matters then).
    fn contiguous_strides(&self) -> [usize; MAX_DIMS] {
        let mut strides = [0; MAX_DIMS];
        let mut step = self.dtype.size();
        for d in (0..self.ndim).rev() {
            strides[d] = step;
            step = step.saturating_mul(self.shape[d]);
        }
        strides
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Number of dimensions (1 to 8).
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// Elements per dimension (`ndim` of them).
    pub fn shape(&self) -> &[usize] {
        &self.shape[..self.ndim]
    }

    /// Bytes between neighbours along each dimension (`ndim` of them); the row-major ones
    /// when the format is contiguous.
    pub fn strides(&self) -> &[usize] {
        &self.strides[..self.ndim]
    }

    /// The fourcc pixel-format code, 0 if none.
    pub fn fourcc(&self) -> u32 {
        self.fourcc
    }

    /// Number of elements (the product of the shape); `None` if it overflows `usize`.
    pub fn elements(&self) -> Option<usize> {
        self.shape()
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// Bytes the elements take when packed: `elements() * dtype().size()` (saturating).
    pub fn nbytes(&self) -> usize {
        self.elements()
            .and_then(|n| n.checked_mul(self.dtype.size()))
            .unwrap_or(usize::MAX)
    }

    /// Whether the elements are packed in row-major order, as a `&[T]` lays them out. As in
    /// numpy, the stride of a dimension of extent 1 plays no part, and an empty array is
    /// contiguous.
    pub fn is_contiguous(&self) -> bool {
        if self.shape().contains(&0) {
            return true;
        }
        let packed = self.contiguous_strides();
        (0..self.ndim).all(|d| self.shape[d] == 1 || self.strides[d] == packed[d])
    }
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("Format");
        s.field("dtype", &self.dtype)
            .field("shape", &self.shape())
            .field("strides", &self.strides());
        if self.fourcc != 0 {
            let c = self.fourcc.to_le_bytes();
            s.field("fourcc", &String::from_utf8_lossy(&c));
        }
        s.finish()
    }
}

fn invalid(message: String) -> Error {
    Error::new(Status::Invalid, message)
}

mod sealed {
    pub trait Sealed {}
}

/// The element types a buffer can be viewed as: `u8`, `i8`, `u16`, `i16`, `u32`, `i32`,
/// `u64`, `i64`, `f32`, `f64`, each for its own [`Dtype`]; `u16` also views
/// [`Dtype::F16`] and [`Dtype::BF16`] buffers as their raw bits (Rust has no stable half
/// float; `half::f16::from_bits` and the like take them). Sealed: every bit pattern of these
/// types is a valid value, which is what makes the views safe.
pub trait Element: sealed::Sealed + Copy + 'static {
    /// The dtype whose elements are this type.
    const DTYPE: Dtype;
    /// Whether a buffer of `dtype` can be viewed as this type.
    fn views(dtype: Dtype) -> bool {
        dtype == Self::DTYPE
    }
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
        }
    )*};
}

element!(u8 => U8, i8 => I8, i16 => I16, u32 => U32, i32 => I32, u64 => U64, i64 => I64,
         f32 => F32, f64 => F64);

impl sealed::Sealed for u16 {}
impl Element for u16 {
    const DTYPE: Dtype = Dtype::U16;
    fn views(dtype: Dtype) -> bool {
        matches!(dtype, Dtype::U16 | Dtype::F16 | Dtype::BF16)
    }
}

/// How many `T` a typed view of `len` bytes at `ptr` holds, or why there is none. With a
/// format: its dtype must be one `T` views, it must be contiguous, and the view is its
/// elements (the library checked they lie inside the buffer; checked again here). Untyped:
/// the whole range, whose length must be a multiple of `size_of::<T>()`. Either way the first
/// byte must be aligned for `T`.
pub(crate) fn typed_len<T: Element>(
    what: &str,
    format: Option<&Format>,
    ptr: *const u8,
    len: usize,
) -> Result<usize> {
    let t = std::any::type_name::<T>();
    let size = std::mem::size_of::<T>();
    let count = match format {
        Some(f) => {
            if !T::views(f.dtype) {
                return Err(invalid(format!(
                    "{what}::<{t}>: the buffer's dtype is {:?}, which {t} does not view",
                    f.dtype
                )));
            }
            if !f.is_contiguous() {
                return Err(invalid(format!(
                    "{what}::<{t}>: the format is not contiguous (shape {:?}, strides {:?}); \
                     a slice can only view packed row-major elements",
                    f.shape(),
                    f.strides()
                )));
            }
            match f
                .elements()
                .filter(|n| n.checked_mul(size).is_some_and(|b| b <= len))
            {
                Some(n) => n,
                None => {
                    return Err(invalid(format!(
                        "{what}::<{t}>: shape {:?} does not fit the buffer's {len} bytes",
                        f.shape()
                    )))
                }
            }
        }
        None => {
            if !len.is_multiple_of(size) {
                return Err(invalid(format!(
                    "{what}::<{t}>: {len} bytes are not a whole number of {size}-byte elements"
                )));
            }
            len / size
        }
    };
    if count > 0 && ptr.align_offset(std::mem::align_of::<T>()) != 0 {
        return Err(invalid(format!(
            "{what}::<{t}>: the data at {ptr:p} is not aligned to {} bytes",
            std::mem::align_of::<T>()
        )));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_codes_and_sizes_are_the_libraries() {
        let all = [
            (Dtype::U8, 1),
            (Dtype::I8, 1),
            (Dtype::U16, 2),
            (Dtype::I16, 2),
            (Dtype::U32, 4),
            (Dtype::I32, 4),
            (Dtype::U64, 8),
            (Dtype::I64, 8),
            (Dtype::F16, 2),
            (Dtype::BF16, 2),
            (Dtype::F32, 4),
            (Dtype::F64, 8),
        ];
        for (i, (d, size)) in all.into_iter().enumerate() {
            assert_eq!(d.code(), i as u32 + 1, "{d:?}"); // PX_DTYPE_U8 = 1, in this order
            assert_eq!(Dtype::from_code(d.code()), d);
            assert_eq!(d.size(), size, "{d:?}");
        }
        assert_eq!(Dtype::from_code(99), Dtype::Unknown(99));
        assert_eq!(Dtype::Unknown(99).size(), 0);
        assert_eq!(Dtype::from_code(0), Dtype::Unknown(0));
    }

    #[test]
    fn elements_match_their_dtype_size() {
        fn check<T: Element>() {
            assert_eq!(T::DTYPE.size(), std::mem::size_of::<T>(), "{:?}", T::DTYPE);
        }
        check::<u8>();
        check::<i8>();
        check::<u16>();
        check::<i16>();
        check::<u32>();
        check::<i32>();
        check::<u64>();
        check::<i64>();
        check::<f32>();
        check::<f64>();
        assert!(u16::views(Dtype::F16) && u16::views(Dtype::BF16) && !i16::views(Dtype::F16));
    }

    #[test]
    fn contiguous_formats_go_to_c_with_zero_strides_and_back() {
        let f = Format::new(Dtype::U16, &[2, 3, 4])
            .unwrap()
            .with_fourcc(fourcc(b"Y16 "));
        assert_eq!(f.strides(), &[24, 8, 2]);
        let c = f.to_c();
        assert_eq!(
            (c.dtype, c.ndim, c.fourcc),
            (sys::PX_DTYPE_U16, 3, fourcc(b"Y16 "))
        );
        assert_eq!(&c.shape[..4], &[2, 3, 4, 0]);
        assert_eq!(c.strides, [0; MAX_DIMS]);
        assert_eq!(Format::from_c(&c), Some(f));
        // Explicit strides that happen to be contiguous are the same format.
        let same = Format::with_strides(Dtype::U16, &[2, 3, 4], &[24, 8, 2]).unwrap();
        assert_eq!(same.with_fourcc(fourcc(b"Y16 ")), f);
        // Padded rows keep their strides.
        let padded = Format::with_strides(Dtype::U8, &[2, 3], &[4, 1]).unwrap();
        assert_eq!(&padded.to_c().strides[..3], &[4, 1, 0]);
        assert_eq!(Format::from_c(&padded.to_c()), Some(padded));
        assert_eq!(Format::from_c(&sys::px_format_t::default()), None);
    }

    #[test]
    fn contiguity_ignores_unit_dimensions_and_empty_arrays() {
        assert!(Format::with_strides(Dtype::U8, &[1, 4], &[999, 1])
            .unwrap()
            .is_contiguous());
        assert!(Format::with_strides(Dtype::U8, &[0, 4], &[1, 7])
            .unwrap()
            .is_contiguous());
        assert!(!Format::with_strides(Dtype::U8, &[2, 4], &[8, 1])
            .unwrap()
            .is_contiguous());
        assert!(!Format::with_strides(Dtype::U8, &[2, 2], &[1, 2])
            .unwrap()
            .is_contiguous());
    }

    #[test]
    fn bad_shapes_are_refused_naming_the_rule() {
        let msg = |r: Result<Format>| r.unwrap_err().message().to_string();
        assert!(msg(Format::new(Dtype::U8, &[])).contains("0 dimensions"));
        assert!(msg(Format::new(Dtype::U8, &[1; 9])).contains("9 dimensions"));
        assert!(msg(Format::new(Dtype::Unknown(77), &[1])).contains("unknown dtype 77"));
        assert!(msg(Format::new(Dtype::U8, &[usize::MAX])).contains("more than i64"));
        assert!(msg(Format::with_strides(Dtype::U8, &[2, 2], &[2])).contains("1 strides"));
        assert!(msg(Format::with_strides(Dtype::F32, &[2], &[6])).contains("multiple"));
    }

    #[test]
    fn typed_len_checks_dtype_contiguity_size_and_alignment() {
        let words = [0u64; 4]; // 32 aligned bytes
        let p = words.as_ptr().cast::<u8>();
        let f32s = Format::new(Dtype::F32, &[2, 3]).unwrap();
        assert_eq!(typed_len::<f32>("v", Some(&f32s), p, 32).unwrap(), 6);
        assert_eq!(typed_len::<u32>("v", None, p, 32).unwrap(), 8);
        let e = typed_len::<u32>("v", Some(&f32s), p, 32).unwrap_err();
        assert!(e.message().contains("dtype is F32"), "{}", e.message());
        let e = typed_len::<f32>("v", Some(&f32s), p, 20).unwrap_err();
        assert!(e.message().contains("does not fit"), "{}", e.message());
        let e = typed_len::<u32>("v", None, p, 30).unwrap_err();
        assert!(e.message().contains("whole number"), "{}", e.message());
        let e = typed_len::<u32>("v", None, p.wrapping_add(2), 16).unwrap_err();
        assert!(e.message().contains("not aligned"), "{}", e.message());
        let strided = Format::with_strides(Dtype::F32, &[2, 2], &[16, 4]).unwrap();
        let e = typed_len::<f32>("v", Some(&strided), p, 32).unwrap_err();
        assert!(e.message().contains("not contiguous"), "{}", e.message());
    }
}
