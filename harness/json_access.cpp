#include "harness/json_access.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

namespace capbench {
namespace {

std::string describe(const json& v) {
  std::string s = dump_json(v);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// Nesting depth of JSON text, counted outside strings: checked before the parser sees it.
int nesting_depth(const std::string& text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > kMaxJsonDepth) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

json finite_only(const json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    const double d = v.get<double>();
    return std::isnan(d) ? "NaN" : (d > 0 ? "Infinity" : "-Infinity");
  }
  if (v.is_object()) {
    json out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) out[it.key()] = finite_only(it.value());
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const json& item : v) out.push_back(finite_only(item));
    return out;
  }
  return v;
}

bool has_non_finite(const json& v) {
  if (v.is_number_float()) return !std::isfinite(v.get<double>());
  if (v.is_structured())
    for (const json& item : v)
      if (has_non_finite(item)) return true;
  return false;
}

// The number a value stands for, where capbench's writers may have put a non-finite one.
bool number_of(const json& v, double* out) {
  if (v.is_number()) {
    *out = v.get<double>();
    return true;
  }
  if (v.is_null()) {  // how JSON libraries write NaN
    *out = std::nan("");
    return true;
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "NaN")
      *out = std::nan("");
    else if (s == "Infinity")
      *out = HUGE_VAL;
    else if (s == "-Infinity")
      *out = -HUGE_VAL;
    else
      return false;
    return true;
  }
  return false;
}

}  // namespace

std::string dump_json(const json& value, int indent) {
  const json& safe = has_non_finite(value) ? finite_only(value) : value;
  return safe.dump(indent, ' ', false, json::error_handler_t::replace);
}

json parse_json_text(const std::string& text, const std::string& file) {
  if (nesting_depth(text) > kMaxJsonDepth)
    throw ConfigError(file, "$",
                      "JSON nested at most " + std::to_string(kMaxJsonDepth) + " levels deep");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {  // parse errors, and numbers beyond a double (1e999)
    throw ConfigError(file, "$", std::string("valid JSON (") + e.what() + ")");
  }
}

std::string config_file_path(const std::string& name_or_path, const std::string& config_dir,
                             const std::string& subdir) {
  const bool is_path =
      name_or_path.find('/') != std::string::npos ||
      (name_or_path.size() > 5 && name_or_path.compare(name_or_path.size() - 5, 5, ".json") == 0);
  return is_path ? name_or_path : config_dir + "/" + subdir + "/" + name_or_path + ".json";
}

json load_json_file(const std::string& path) {
  // Opened without blocking, then checked: a FIFO would block the open, and a device (or a
  // folder) is no configuration file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    throw ConfigError(
        path, "$", std::string("a readable file (cannot open it: ") + std::strerror(errno) + ")");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    throw ConfigError(
        path, "$",
        "a regular file (this is a " +
            std::string(S_ISDIR(st.st_mode)                          ? "folder"
                        : S_ISFIFO(st.st_mode)                       ? "FIFO"
                        : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "device"
                                                                     : "special file") +
            ")");
  if (static_cast<uint64_t>(st.st_size) > kMaxJsonFileBytes)
    throw ConfigError(path, "$",
                      "a file of at most " + std::to_string(kMaxJsonFileBytes >> 20) + " MiB");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, &text[got], text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw ConfigError(path, "$",
                        std::string("a readable file (read failed: ") + std::strerror(errno) + ")");
    if (n == 0) break;  // shrank while being read: parse what is there
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return parse_json_text(text, path);
}

void JsonView::fail(const std::string& expected) const {
  throw ConfigError(file_, path_, expected);
}

bool JsonView::has(const std::string& key) const {
  return value_->is_object() && value_->contains(key);
}

JsonView JsonView::object() const {
  if (!value_->is_object()) fail("an object, got " + describe(*value_));
  return *this;
}

JsonView JsonView::at(const std::string& key) const {
  object();
  auto it = value_->find(key);
  if (it == value_->end())
    throw ConfigError(file_, path_ + "." + key, "a value (field is missing)");
  return JsonView(*it, file_, path_ + "." + key);
}

std::vector<JsonView> JsonView::items() const {
  if (!value_->is_array()) fail("an array, got " + describe(*value_));
  std::vector<JsonView> out;
  for (size_t i = 0; i < value_->size(); ++i)
    out.emplace_back((*value_)[i], file_, path_ + "[" + std::to_string(i) + "]");
  return out;
}

int64_t JsonView::as_int() const {
  if (!value_->is_number_integer()) fail("an integer, got " + describe(*value_));
  return value_->get<int64_t>();
}

int64_t JsonView::as_positive_int() const {
  if (!value_->is_number_integer() || value_->get<int64_t>() <= 0)
    fail("a positive integer, got " + describe(*value_));
  return value_->get<int64_t>();
}

int64_t JsonView::as_nonnegative_int() const {
  if (!value_->is_number_integer() || value_->get<int64_t>() < 0)
    fail("a non-negative integer, got " + describe(*value_));
  return value_->get<int64_t>();
}

int64_t JsonView::as_int_in(int64_t lo, int64_t hi) const {
  const bool fits =
      value_->is_number_integer() &&
      !(value_->is_number_unsigned() && value_->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX));
  if (!fits || value_->get<int64_t>() < lo || value_->get<int64_t>() > hi)
    fail(fmt::format("an integer in [{}, {}], got {}", lo, hi, describe(*value_)));
  return value_->get<int64_t>();
}

double JsonView::as_number() const {
  double v = 0;
  if (!number_of(*value_, &v)) fail("a number, got " + describe(*value_));
  return v;
}

double JsonView::as_positive_number() const {
  if (!value_->is_number() || !(value_->get<double>() > 0))
    fail("a positive number, got " + describe(*value_));
  return value_->get<double>();
}

double JsonView::as_number_in(double lo, double hi) const {
  if (!value_->is_number() || !(value_->get<double>() >= lo && value_->get<double>() <= hi))
    fail(fmt::format("a number in [{:g}, {:g}], got {}", lo, hi, describe(*value_)));
  return value_->get<double>();
}

std::string JsonView::as_string() const {
  if (!value_->is_string()) fail("a string, got " + describe(*value_));
  return value_->get<std::string>();
}

bool JsonView::as_bool() const {
  if (!value_->is_boolean()) fail("true or false, got " + describe(*value_));
  return value_->get<bool>();
}

std::vector<std::string> JsonView::as_string_list() const {
  if (value_->is_string()) return {value_->get<std::string>()};
  std::vector<std::string> out;
  if (!value_->is_array()) fail("a string or an array of strings, got " + describe(*value_));
  for (const auto& item : items()) out.push_back(item.as_string());
  if (out.empty()) fail("a non-empty array of strings");
  return out;
}

int64_t JsonView::get_positive_int(const std::string& key, int64_t fallback) const {
  return has(key) ? at(key).as_positive_int() : fallback;
}
int64_t JsonView::get_nonnegative_int(const std::string& key, int64_t fallback) const {
  return has(key) ? at(key).as_nonnegative_int() : fallback;
}
double JsonView::get_number(const std::string& key, double fallback) const {
  return has(key) ? at(key).as_number() : fallback;
}
std::string JsonView::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? at(key).as_string() : fallback;
}
int64_t JsonView::get_int_in(const std::string& key, int64_t fallback, int64_t lo,
                             int64_t hi) const {
  return has(key) ? at(key).as_int_in(lo, hi) : fallback;
}
double JsonView::get_number_in(const std::string& key, double fallback, double lo,
                               double hi) const {
  return has(key) ? at(key).as_number_in(lo, hi) : fallback;
}

}  // namespace capbench
