// SPDX-License-Identifier: Apache-2.0 OR MIT
// Writes the hand-made seeds of fuzz_wire_decode into the directory given: one valid record of
// every type the wire format has, and near misses (bad magic, wrong size, lying count). Run it
// again when the wire format changes: build/fuzz/px_fuzz_seeds fuzz/corpus/wire_decode
#include <cstdio>
#include <string>

#include "core/ipc/wire.hpp"

namespace wire = px::ipc::wire;

namespace {

bool write(const std::string &dir, const char *name, const void *p, size_t n) {
    std::string path = dir + "/seed-" + name;
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f)
        return false;
    bool ok = std::fwrite(p, 1, n, f) == n;
    return std::fclose(f) == 0 && ok;
}

bool write(const std::string &dir, const char *name, const wire::Bytes &b) {
    return write(dir, name, b.data, b.size);
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
        return 2;
    }
    std::string dir = argv[1];
    bool ok = true;

    wire::Hello hello;
    hello.pid = 4242;
    ok &= write(dir, "hello", wire::encode(hello));

    wire::SegmentInfo seg;
    seg.segment_id = 1;
    seg.memory_type = 1;
    seg.size = 1 << 20;
    seg.page_size = 4096;
    ok &= write(dir, "segment", wire::encode(seg));

    wire::Data d;
    d.segment_id = 1;
    d.offset = 4096;
    d.len = 65536;
    d.token = 7;
    d.meta.sequence = 99;
    d.meta.pts_ns = 1'000'000;
    d.meta.user_len = 4;
    d.meta.user[0] = 'f';
    ok &= write(dir, "data", wire::encode(d));
    // A stream's records (protocol 4): a numbered frame, a welcome, and an unknown kind.
    wire::Data framed = d;
    framed.tag = {wire::DataKind::frame, 12345};
    ok &= write(dir, "data-stream-frame", wire::encode(framed));
    wire::Data welcome = d;
    welcome.tag = {wire::DataKind::stream_welcome, 1};
    ok &= write(dir, "data-stream-welcome", wire::encode(welcome));

    // Typed frames (protocol 5): a format record, and a typed data record.
    px::Format image;
    image.dtype = 1; // u8
    image.ndim = 3;
    image.fourcc = 0x33424752;
    image.shape[0] = 1080;
    image.shape[1] = 1920;
    image.shape[2] = 3;
    ok &= write(dir, "format", wire::encode(image));
    px::Format padded;
    padded.dtype = 11; // f32, rows of 12 padded to 16
    padded.ndim = 2;
    padded.shape[0] = 8;
    padded.shape[1] = 12;
    padded.strides[0] = 64;
    padded.strides[1] = 4;
    ok &= write(dir, "format-strided", wire::encode(padded));
    wire::Data typed = framed;
    typed.typed = true;
    ok &= write(dir, "data-typed", wire::encode(typed));

    ok &= write(dir, "unregister", wire::encode(wire::Unregister{1}));
    ok &= write(dir, "wake", wire::encode_wake());

    wire::Returns one{{7}};
    ok &= write(dir, "returns-1", wire::encode(one));
    wire::Returns full;
    for (uint64_t t = 1; t <= wire::max_returns_per_record; ++t)
        full.tokens.push_back(t);
    ok &= write(dir, "returns-max", wire::encode(full));

    // Near misses: each must be refused.
    wire::Bytes bad = wire::encode(hello);
    bad.data[0] ^= 1;
    ok &= write(dir, "bad-magic", bad);
    wire::Bytes short_data = wire::encode(d);
    ok &= write(dir, "short-data", short_data.data, short_data.size - 1);
    wire::Bytes lying = wire::encode(one);
    lying.data[8] = 60; // claims 60 tokens, carries 1
    ok &= write(dir, "returns-lying-count", lying);
    ok &= write(dir, "header-only", wire::encode_wake().data, wire::header_size - 1);
    wire::Bytes unknown_kind = wire::encode(framed);
    unknown_kind.data[12] = wire::max_data_kind + 1;
    ok &= write(dir, "data-unknown-kind", unknown_kind);
    wire::Bytes unknown_bit = wire::encode(typed);
    unknown_bit.data[14] |= 2; // bit 17 of the kind field, beside the typed bit
    ok &= write(dir, "data-unknown-bit", unknown_bit);
    px::Format wide = image;
    wide.ndim = 9;
    ok &= write(dir, "format-ndim-9", wire::encode(wide));
    px::Format unknown_dtype = image;
    unknown_dtype.dtype = 13;
    ok &= write(dir, "format-unknown-dtype", wire::encode(unknown_dtype));
    px::Format overflowing = padded;
    overflowing.dtype = 1;
    overflowing.strides[0] = INT64_MAX;
    ok &= write(dir, "format-overflowing-strides", wire::encode(overflowing));
    wire::Bytes short_format = wire::encode(image);
    ok &= write(dir, "format-short", short_format.data, short_format.size - 1);

    if (!ok) {
        std::perror("px_fuzz_seeds");
        return 1;
    }
    return 0;
}
