// SPDX-License-Identifier: Apache-2.0 OR MIT
// Just enough JSON for the tool's --json output: one object built field by field, numbers and
// escaped strings, written on one line.
#pragma once

#include <cstdint>
#include <string>

namespace px_cli {

class JsonObject {
  public:
    JsonObject &field(const char *key, const std::string &value);
    JsonObject &field(const char *key, const char *value) { return field(key, std::string(value)); }
    JsonObject &field(const char *key, uint64_t value);
    JsonObject &field(const char *key, double value);
    JsonObject &field(const char *key, bool value);
    // `json` is already JSON (an object or an array).
    JsonObject &raw(const char *key, const std::string &json);
    std::string str() const { return "{" + body_ + "}"; }

  private:
    void key(const char *k);
    std::string body_;
};

// `s` as a JSON string literal, quotes included (control characters escaped as \uXXXX).
std::string json_string(const std::string &s);

} // namespace px_cli
