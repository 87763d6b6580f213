#!/usr/bin/env bash
# Installs what `cargo build --features mpi` needs on Debian: OpenMPI (mpirun and the
# library the `mpi` crate links) and libclang (the `mpi-sys` crate generates its bindings to
# mpi.h with bindgen when it builds). Nothing is installed when all three are there.
# Usage: scripts/install-mpi.sh
set -euo pipefail

if command -v mpirun >/dev/null && command -v mpicc >/dev/null \
  && ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
  echo "OpenMPI $(mpirun --version | head -1 | awk '{print $NF}') and libclang are present"
  exit 0
fi
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  openmpi-bin libopenmpi-dev libclang-dev
