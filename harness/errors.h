// Errors a user can act on. ConfigError names the file, the JSON path and what was expected; the
// CLI prints it as one line and exits with code 2.
#pragma once

#include <stdexcept>
#include <string>

namespace capbench {

class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, std::string json_path, std::string expected);
  const std::string& file() const { return file_; }
  const std::string& json_path() const { return json_path_; }
  const std::string& expected() const { return expected_; }

 private:
  std::string file_, json_path_, expected_;
};

// A bad command-line value: printed as one line, exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr int kExitBadInput = 2;

// `text` as one printable line: newlines, tabs and other control characters become escapes
// (\n, \t, \x1b), and bytes that are not UTF-8 become \xNN, so that a message quoting a bad
// input is always exactly one line.
std::string one_line(const std::string& text);

}  // namespace capbench
