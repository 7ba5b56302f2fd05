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

// Reads and parses a file; unreadable or malformed files are ConfigErrors at path "$".
json load_json_file(const std::string& path);

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
  double as_number() const;
  double as_positive_number() const;
  std::string as_string() const;
  bool as_bool() const;
  std::vector<std::string> as_string_list() const;  // a string or an array of strings

  // Optional fields with defaults.
  int64_t get_positive_int(const std::string& key, int64_t fallback) const;
  int64_t get_nonnegative_int(const std::string& key, int64_t fallback) const;
  double get_number(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;

  [[noreturn]] void fail(const std::string& expected) const;

 private:
  const json* value_;
  std::string file_, path_;
};

}  // namespace capbench
