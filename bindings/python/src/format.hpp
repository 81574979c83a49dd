// SPDX-License-Identifier: Apache-2.0 OR MIT
// Typed frames for Python: parallax.Format (a buffer's px_format_t as an immutable value),
// parallax.DType, and the conversions the buffer protocol, DLPack, Buffer.set_format and
// MemoryPool.loan_array share.
#pragma once

#include <cstddef>
#include <cstdint>

#include <pybind11/pybind11.h>

#include "parallax/parallax.h"

namespace pxpy {

namespace py = pybind11;

// parallax.Format: what a buffer's bytes are. Strides are kept as set (all 0: C-contiguous),
// so a Format applied elsewhere means exactly what it meant here.
struct PyFormat {
    px_format_t f;
};

// The PEP 3118 format string of a dtype. bf16 has no PEP 3118 code: it is exported as "H"
// (its raw 16 bits as uint16), which numpy can view as ml_dtypes.bfloat16 if wanted.
const char *pep3118_format(uint32_t dtype);

// The byte strides of `f` (its ndim entries): as set, or C-contiguous when all are 0.
void byte_strides(const px_format_t &f, int64_t *out);

// Whether strides `strides` (in bytes) lay `f` out C-contiguously (dimensions of extent 1
// and empty arrays are contiguous whatever their strides, as numpy counts them).
bool is_c_contiguous(const px_format_t &f, const int64_t *strides);

// The bytes from the first element to the end of the last one (0 for an empty array); false
// when that overflows or a shape or stride is negative.
bool format_extent(const px_format_t &f, size_t &out);

// (dtype, shape, strides, fourcc) as Python gives them -> a px_format_t (unused fields 0).
// dtype: a DType, a numpy dtype or anything numpy.dtype() accepts, or "bfloat16"/"bf16".
// shape: an int or a sequence of 1 to 8 ints >= 0; strides: None or as many ints (bytes);
// fourcc: an int < 2**32 or a 4-character str/bytes ("RGB3"). TypeError for a wrong type,
// InvalidArgument naming the argument for a wrong value. The library checks the rest (strides
// against the element size and the buffer) when the format is applied.
px_format_t format_from_args(py::handle dtype, py::handle shape, py::handle strides,
                             py::handle fourcc);

// A Format argument (a parallax.Format) or nullptr when `value` is not one.
const px_format_t *format_arg(py::handle value);

// The format of `buf` as a Python object: a parallax.Format, or None when untyped.
py::object format_of(const px_buffer_t *buf);

// numpy, imported on first use (ImportError naming `what` when it is not installed).
py::module_ numpy(const char *what);

// Registers DType and Format.
void bind_format(py::module_ &m);

} // namespace pxpy
