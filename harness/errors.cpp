#include "harness/errors.h"

namespace capbench {

ConfigError::ConfigError(std::string file, std::string json_path, std::string expected)
    : std::runtime_error(file + ": " + json_path + ": expected " + expected),
      file_(std::move(file)),
      json_path_(std::move(json_path)),
      expected_(std::move(expected)) {}

}  // namespace capbench
