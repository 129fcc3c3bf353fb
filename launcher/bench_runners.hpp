// launcher/bench_runners.hpp — what `cohort bench pingpong` runs (cmd_bench.cpp):
// the plan of steps (one per transport label, each with the references that
// use the same path), the cohort pingpong in a VM, and the reference
// programs (Open MPI's mpirun, fi_pingpong, ucx_perftest), each parsed into
// a PingpongSeries by bench_report.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <cohort/cohort.hpp>

#include "base/status.hpp"
#include "launcher/bench_report.hpp"
#include "launcher/cli_args.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {

struct BenchArgs {
  std::vector<std::size_t> sizes;
  long iters = 1000;
  long reps = 3;
  std::chrono::seconds timeout{60};  // without progress
};

enum class RefKind { kOpenMpi, kFiPingpong, kUcxPerftest };

struct Reference {
  RefKind kind;
  std::string path;  // openmpi: tcp | vader | ucx; fi_pingpong: provider; ucx_perftest: UCX_TLS
  std::string tls;   // openmpi over ucx: UCX_TLS
};

struct Step {
  std::string label;       // the transport column: tcp, shm, ofi:PROV, ucx:TLS
  std::string transport;   // what COHORT_TRANSPORTS names, and what the tasks must report
  std::vector<std::string> env;
  std::vector<Reference> refs;
};

/// "openmpi", "fi_pingpong", "ucx_perftest": the CSV's system column.
const char* system_name(RefKind k);

/// The steps for --transport SPEC (all, shm, tcp, ofi, ucx, ofi:PROV, ucx:TLS),
/// with the default ofi providers and UCX_TLS values when those are empty.
Result<std::vector<Step>> plan(const std::string& spec, std::vector<std::string> ofi,
                               std::vector<std::string> ucx, bool mpi, bool ref);

// The VM the cohort pingpongs run in: the running one, else a private one
// started on first use and stopped at the end of the benchmark.
class CohortVm {
 public:
  CohortVm(const Globals& g, bool private_vm) : g_(g), private_(private_vm) {}
  ~CohortVm() {
    if (vm_) vm_->stop(session_.get());
  }
  Result<Session*> session() {
    if (session_) return session_.get();
    if (!private_) session_ = connect_tool(g_);
    if (!session_) {
      COHORT_ASSIGN_OR_RETURN(vm_, PrivateVm::start());
      session_ = std::make_unique<Session>(vm_->session_options());
    }
    return session_.get();
  }

 private:
  Globals g_;
  bool private_;
  std::unique_ptr<PrivateVm> vm_;
  std::unique_ptr<Session> session_;
};

/// The cohort pingpong of `step` (COHORT_TRANSPORTS forced) in `vm`.
Status run_cohort(CohortVm& vm, const Step& step, const BenchArgs& b, PingpongSeries* out,
                  std::string* method);
/// The references; `method` says how each was run.
Status run_openmpi(const Reference& r, const BenchArgs& b, PingpongSeries* out,
                   std::string* method);
Status run_fi_pingpong(const Reference& r, const BenchArgs& b, PingpongSeries* out,
                       std::string* method);
Status run_ucx_perftest(const Reference& r, const BenchArgs& b, PingpongSeries* out,
                        std::string* method);

}  // namespace cohort::cli
