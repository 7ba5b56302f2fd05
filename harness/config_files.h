// Reading the configuration files below the harness into the plain structs the layers below
// take: models (configs/models/*.json) and device profiles (configs/devices/*.json). Every
// field is validated on load; a bad one is a ConfigError naming the file, the JSON path and what
// was expected.
#pragma once

#include <string>

#include "backends/throttle/device_profile.h"
#include "workloads/model_config.h"

namespace capbench {

// configs/models/NAME.json, or a path (a name with '/' or ending in .json).
ModelConfig load_model_config(const std::string& name_or_path, const std::string& config_dir);

// configs/devices/NAME.json, or a path.
DeviceProfile load_device_profile(const std::string& name_or_path, const std::string& config_dir);

}  // namespace capbench
