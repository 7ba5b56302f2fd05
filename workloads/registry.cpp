// The workloads capbench has: one line each.
#include "workloads/inference.h"
#include "workloads/train_step.h"
#include "workloads/workload.h"

namespace capbench {

const std::vector<const Workload*>& all_workloads() {
  static const std::vector<const Workload*> workloads = {&train_step_workload(),
                                                         &inference_workload()};
  return workloads;
}

const Workload* find_workload(const std::string& name) {
  for (const Workload* w : all_workloads())
    if (w->name() == name) return w;
  return nullptr;
}

std::string workload_names() {
  std::string names;
  for (const Workload* w : all_workloads()) names += (names.empty() ? "" : ", ") + w->name();
  return names;
}

}  // namespace capbench
