// SPDX-License-Identifier: Apache-2.0 OR MIT
// DLPack (https://dmlc.github.io/dlpack/latest/c_api.html): the structs of its stable C ABI,
// written from the specification (version 1.0) rather than vendoring dlpack.h, and
// Buffer.__dlpack__ / __dlpack_device__.
#pragma once

#include <cstdint>

#include <pybind11/pybind11.h>

namespace pxpy {

namespace dl {

constexpr uint32_t major_version = 1;
constexpr uint32_t minor_version = 0;

constexpr int32_t device_cpu = 1; // kDLCPU

// DLDataTypeCode
constexpr uint8_t code_int = 0;
constexpr uint8_t code_uint = 1;
constexpr uint8_t code_float = 2;
constexpr uint8_t code_bfloat = 4;

constexpr uint64_t flag_read_only = 1u << 0; // DLPACK_FLAG_BITMASK_READ_ONLY
constexpr uint64_t flag_is_copied = 1u << 1; // DLPACK_FLAG_BITMASK_IS_COPIED

struct Version {
    uint32_t major;
    uint32_t minor;
};

struct Device {
    int32_t device_type; // DLDeviceType, an int-sized C enum
    int32_t device_id;
};

struct DataType {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
};

struct Tensor {
    void *data;
    Device device;
    int32_t ndim;
    DataType dtype;
    int64_t *shape;
    int64_t *strides; // in elements, not bytes
    uint64_t byte_offset;
};

// The legacy (pre-1.0) capsule "dltensor".
struct ManagedTensor {
    Tensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(ManagedTensor *self);
};

// The 1.x capsule "dltensor_versioned".
struct ManagedTensorVersioned {
    Version version;
    void *manager_ctx;
    void (*deleter)(ManagedTensorVersioned *self);
    uint64_t flags;
    Tensor dl_tensor;
};

static_assert(sizeof(Tensor) == 48, "DLTensor layout");
static_assert(sizeof(ManagedTensor) == 64, "DLManagedTensor layout");
static_assert(sizeof(ManagedTensorVersioned) == 80, "DLManagedTensorVersioned layout");

} // namespace dl

// Installs __dlpack__ and __dlpack_device__ on the Buffer class.
void bind_dlpack(pybind11::handle buffer_class);

} // namespace pxpy
