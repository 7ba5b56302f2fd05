#pragma once

#include <string>

namespace capbench {

// Escapes & < > " ' for text and attribute values in HTML and XML alike.
std::string escape_markup(const std::string& text);

}  // namespace capbench
