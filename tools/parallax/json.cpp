// SPDX-License-Identifier: Apache-2.0 OR MIT
#include "json.hpp"

#include <cmath>
#include <cstdio>

namespace px_cli {

std::string json_string(const std::string &s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += ch; // UTF-8 passes through as is
        }
    }
    return out + "\"";
}

void JsonObject::key(const char *k) {
    if (!body_.empty())
        body_ += ',';
    body_ += json_string(k) + ':';
}

JsonObject &JsonObject::field(const char *k, const std::string &value) {
    key(k);
    body_ += json_string(value);
    return *this;
}

JsonObject &JsonObject::field(const char *k, uint64_t value) {
    key(k);
    body_ += std::to_string(value);
    return *this;
}

JsonObject &JsonObject::field(const char *k, double value) {
    key(k);
    // JSON has no NaN or infinity; a figure that cannot be computed is null.
    if (!std::isfinite(value)) {
        body_ += "null";
        return *this;
    }
    char num[32];
    std::snprintf(num, sizeof num, "%.6g", value);
    body_ += num;
    return *this;
}

JsonObject &JsonObject::field(const char *k, bool value) {
    key(k);
    body_ += value ? "true" : "false";
    return *this;
}

JsonObject &JsonObject::raw(const char *k, const std::string &json) {
    key(k);
    body_ += json;
    return *this;
}

} // namespace px_cli
