// Typed, path-tracking access to a JSON document: every failure is a ConfigError naming the
// file, the JSON path ($.runs[2].batch) and what was expected.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/errors.h"

namespace capbench {

using json = nlohmann::json;

// configs/<subdir>/NAME.json for a bare name; a name containing '/' or ending in .json is a path.
std::string config_file_path(const std::string& name_or_path, const std::string& config_dir,
                             const std::string& subdir);

// Limits every JSON file capbench reads is held to, so that no input can exhaust the stack (the
// JSON library's dump and destruction recurse per level) or memory, or block a read for ever.
constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxJsonFileBytes = size_t{1} << 30;

// Reads and parses a regular file (never a FIFO or a device, which can block or never end);
// a missing, unreadable, oversized, too deeply nested or malformed file, or a number beyond a
// double, is a ConfigError at path "$".
json load_json_file(const std::string& path);
// The same checks on text already in memory; `file` names it in errors.
json parse_json_text(const std::string& text, const std::string& file);

// dump() that never throws: invalid UTF-8 in a string becomes U+FFFD, and numbers that are not
// finite become the strings "NaN", "Infinity" and "-Infinity" (JSON has no literal for them;
// every reader of capbench accepts those strings where it expects a number).
std::string dump_json(const json& value, int indent = -1);

class JsonView {
 public:
  JsonView(const json& value, std::string file, std::string path = "$")
      : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

  const json& raw() const { return *value_; }
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  bool has(const std::string& key) const;
  JsonView at(const std::string& key) const;  // required field of an object
  std::vector<JsonView> items() const;        // elements of an array
  JsonView object() const;                    // this, checked to be an object

  int64_t as_int() const;
  int64_t as_positive_int() const;
  int64_t as_nonnegative_int() const;
  // An integer in [lo, hi]: every size has a bound before any arithmetic is done on it.
  int64_t as_int_in(int64_t lo, int64_t hi) const;
  // Any number, non-finite ones included ("NaN", "Infinity", "-Infinity"; null reads as NaN).
  double as_number() const;
  double as_positive_number() const;
  // A finite number in [lo, hi].
  double as_number_in(double lo, double hi) const;
  std::string as_string() const;
  bool as_bool() const;
  std::vector<std::string> as_string_list() const;  // a string or an array of strings

  // Optional fields with defaults.
  int64_t get_positive_int(const std::string& key, int64_t fallback) const;
  int64_t get_nonnegative_int(const std::string& key, int64_t fallback) const;
  double get_number(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  int64_t get_int_in(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const;
  double get_number_in(const std::string& key, double fallback, double lo, double hi) const;

  [[noreturn]] void fail(const std::string& expected) const;

 private:
  const json* value_;
  std::string file_, path_;
};

}  // namespace capbench
