#include "harness/json_access.h"

#include <fstream>
#include <sstream>

namespace capbench {
namespace {

std::string describe(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

}  // namespace

std::string config_file_path(const std::string& name_or_path, const std::string& config_dir,
                             const std::string& subdir) {
  const bool is_path =
      name_or_path.find('/') != std::string::npos ||
      (name_or_path.size() > 5 && name_or_path.compare(name_or_path.size() - 5, 5, ".json") == 0);
  return is_path ? name_or_path : config_dir + "/" + subdir + "/" + name_or_path + ".json";
}

json load_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, "$", "a readable file (cannot open it)");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw ConfigError(path, "$", "a readable file (read failed)");
  try {
    return json::parse(buffer.str());
  } catch (const json::parse_error& e) {
    throw ConfigError(path, "$", std::string("valid JSON (") + e.what() + ")");
  }
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

double JsonView::as_number() const {
  if (!value_->is_number()) fail("a number, got " + describe(*value_));
  return value_->get<double>();
}

double JsonView::as_positive_number() const {
  if (!value_->is_number() || value_->get<double>() <= 0)
    fail("a positive number, got " + describe(*value_));
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

}  // namespace capbench
