// The run record and the JSON report (schema v1, documented in reports/README.md). JSON is
// canonical; the console table and later formats are derived from it. Writers never leave a half
// file (temp file + rename); readers ignore fields they do not know.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/fidelity.h"
#include "harness/statistics.h"
#include "workloads/workload.h"

namespace capbench {

constexpr int kReportSchemaVersion = 1;

struct RunKey {
  std::string workload, model, backend, device, dtype;
  int64_t batch = 0, seq = 0, prompt = 0, decode_steps = 0, threads = 0;
  std::string emulation_profile;  // empty: no emulation
  std::string emulation_mode;
  std::string emulation_relative_to;  // empty: absolute emulation
  std::string parallel_layout = "single";
  int64_t world = 1;
  int64_t tp = 1;              // layout "tp": the tensor-parallel ranks (world = tp · dp)
  bool virtual_ranks = false;  // one process played one rank of `world`: never a real run's match
  // Canonical one-line form; two runs match when these are equal.
  std::string to_string() const;
};

struct OpRecord {
  std::string op;
  int64_t calls = 0;
  double seconds = 0;                  // measured, op by op with synchronisation around each
  double flops = 0, bytes = 0;         // from the cost model
  double roofline_seconds = 0;         // predicted on the calibrated peaks; 0 when none
  double target_roofline_seconds = 0;  // predicted on the emulated target's rates; 0 when none
  std::string bound;                   // "compute" | "memory" | "" (no peaks known)
};

struct RooflinePrediction {
  bool available = false;
  double seconds = 0;  // of the primary unit (a train step; one decode step)
  std::string bound;
  double peak_flops = 0, peak_bytes_per_s = 0;
  std::string peaks_source;
  // The link model's time for the unit's collectives on the host's own link (0: none).
  double communication_seconds = 0;
};

struct RunRecord {
  RunKey key;
  std::string status = "ok";  // ok | skipped | failed
  std::string reason;
  std::string primary;  // the sample series that compare and the table use
  std::map<std::string, std::vector<double>> samples;  // seconds
  std::map<std::string, Stats> stats;
  std::map<std::string, double> metrics;
  RooflinePrediction roofline;
  std::vector<OpRecord> ops;
  std::string ops_unit;  // what one pass of the per-op breakdown covers
  std::vector<Canary> canaries;
  Validity validity;
  std::map<std::string, double> memory;  // bytes
  nlohmann::json device = nlohmann::json::object();
  nlohmann::json settings = nlohmann::json::object();
  double harness_overhead = 0;  // fraction of timed work spent in the runner itself
  // What a reader must know about the figures (a utilisation left out, and why).
  std::vector<std::string> notes;
  // Emulated runs: profile, mode, relative_to, host and target rates, limited_by, memory fit,
  // and the roofline prediction on the target (reports/README.md). null otherwise.
  nlohmann::json emulation = nullptr;
  // A layer slice's figures extrapolated to its whole model (reports/README.md). null otherwise.
  nlohmann::json extrapolation = nullptr;
  // Runs over several ranks: layout, world, engine, buckets, collectives per kind, per-rank
  // medians (reports/README.md). null for a single rank.
  nlohmann::json parallel = nullptr;
};

struct Report {
  int schema_version = kReportSchemaVersion;
  std::string capbench_version, git_revision, created_utc, suite;
  nlohmann::json host = nlohmann::json::object();
  nlohmann::json calibration = nlohmann::json::object();
  std::vector<RunRecord> runs;
  // Set when a signal stopped the suite: which, during what, and how many runs did not run.
  // The runs above are the ones that finished.
  nlohmann::json interrupted = nullptr;
  // capbench fidelity's checks, backend by backend (harness/fidelity.h); a suite has none.
  std::vector<FidelityResult> fidelity;
  // capbench comm-bench's sweep (harness/comm_bench.h); a suite has none.
  nlohmann::json comm_bench = nullptr;
};

nlohmann::json to_json(const Report& report);
nlohmann::json to_json(const RunRecord& run);
// Throws ConfigError (file, JSON path, expected) on a malformed report or another schema.
Report report_from_json(const nlohmann::json& doc, const std::string& file);
Report read_report(const std::string& path);
// Writes a temporary file created exclusively beside `path` (a unique name), then renames it
// over path: a reader never sees half a report, and two writers never share a temporary file.
// Refuses (UsageError) a path that is a folder, a symbolic link or anything but a regular file.
void write_report_atomic(const Report& report, const std::string& path);
void write_text_atomic(const std::string& text, const std::string& path);
// Checks, before any work, that `path` can be written as write_text_atomic will write it
// (UsageError naming `flag` when not): its folder exists and takes new files, and it is not a
// folder, a symbolic link or a device.
void check_output_path(const std::string& path, const std::string& flag);

}  // namespace capbench
