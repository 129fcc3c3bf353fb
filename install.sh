#!/usr/bin/env bash
# install.sh — build cohort from this checkout and run a first parallel job.
#
#   ./install.sh            install the build dependencies (Debian 12), configure,
#                           build into build/, run 'cohort run -n 4 build/bin/hello'
#   ./install.sh --no-deps  skip the package step (you installed them yourself)
#
# As root it runs apt-get itself; otherwise it uses sudo when there is one, and
# else prints the apt-get command for you to run. Packages already installed are
# not touched. Environment: BUILD_TYPE (default RelWithDebInfo), BUILD_DIR
# (default build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
install_deps=1
for arg in "$@"; do
  case "$arg" in
    --no-deps) install_deps=0 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n==> %s\n' "$*"; }

# Build tools, the fabric libraries the transports use (libfabric, UCX), hwloc
# for binding tasks to cores, Boost.Serialization for C++ objects, GoogleTest,
# Open MPI for the reference benchmarks, gfortran for the Fortran bindings.
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libfabric-dev libucx-dev libhwloc-dev libboost-serialization-dev
  libgtest-dev libgmock-dev
  openmpi-bin libopenmpi-dev gfortran
  libssl-dev ca-certificates
  iproute2 nftables util-linux   # the emulated multi-host tests (network namespaces)
  hwloc-nox                      # lstopo: synthetic multi-package topologies in the binding tests
  # `cohort bench pingpong`: the fabrics' own ping-pongs as references for the ofi
  # and ucx transports (fi_pingpong, ucx_perftest), and gnuplot for --plot PNGs.
  libfabric-bin ucx-utils gnuplot-nox
  # tests/slurm (root): `cohort start` inside an allocation starts its daemons
  # with srun; the test runs its own one-node slurmctld + slurmd (auth/none).
  slurmctld slurmd slurm-client
)

install_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install.sh: this is not a Debian-like system; install the equivalents of:" >&2
    echo "  ${PACKAGES[*]}" >&2
    return 0
  fi
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "build dependencies: all installed"
    return 0
  fi
  say "installing: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "install.sh: not root and no sudo; as root, run:" >&2
      echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
      echo "then run ./install.sh again (or ./install.sh --no-deps)." >&2
      exit 1
    fi
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

if [ "$install_deps" -eq 1 ]; then install_packages; fi

say "configuring ($BUILD_TYPE) in $BUILD_DIR/"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE"

say "building"
cmake --build "$BUILD_DIR"

say "a first parallel job: $BUILD_DIR/bin/cohort run -n 4 $BUILD_DIR/bin/hello"
"$BUILD_DIR/bin/cohort" run -n 4 "$BUILD_DIR/bin/hello"

say "done. The programs are in $BUILD_DIR/bin; the tests run with:"
echo "  ctest --test-dir $BUILD_DIR --output-on-failure"
