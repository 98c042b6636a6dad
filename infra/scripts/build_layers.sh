#!/usr/bin/env bash
# Builds the Lambda serving-dependency layer (python3.12, arm64) without Docker: pip downloads
# the manylinux aarch64 wheels of what infra/stack/packaging.py names (bounds from
# pyproject.toml) and unpacks them into build/layers/deps/python. The analysis functions run
# from a container image instead (decision 117). Skips the work when the requirement list has
# not changed since the last build, then checks every zip function against Lambda's 250 MB.
#
#   ANALYSIS_PROBE=1 bash infra/scripts/build_layers.sh
# also installs the image's requirements into build/layers/analysis-probe and prints its size:
# what a second layer for the analysis functions would weigh (decision 117's measurement).
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=build/layers/deps
PY=${PYTHON:-.venv/bin/python}
PIP_FLAGS=(--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
           --implementation cp --python-version 3.12 --only-binary=:all:)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=${JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION:-20}
packaging() { "$PY" -m infra.scripts.layer_plan "$@"; }
mapfile -t REQUIREMENTS < <(packaging serving)
(( ${#REQUIREMENTS[@]} )) || { echo "error: no serving requirements" >&2; exit 1; }

install() {  # <target dir> <requirement>...
  local target=$1; shift
  rm -rf "$target"
  mkdir -p "$target/python"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-compile \
    "${PIP_FLAGS[@]}" --target "$target/python" "$@"
  # Tests, caches and console scripts are never imported at runtime.
  find "$target/python" -depth -type d \( -name __pycache__ -o -name tests -o -name test \) \
    -exec rm -rf {} +
  rm -rf "$target/python/bin"
  # Python-only tooling no Lambda imports.
  rm -rf "$target/python"/onnxruntime/{transformers,tools,quantization} \
    "$target/python"/numpy/f2py "$target/python"/sklearn/datasets/{data,descr,images}
  # boto3/botocore are in the Lambda runtime already; pip may pull them in via powertools.
  rm -rf "$target/python"/boto3 "$target/python"/botocore "$target/python"/s3transfer
}

# The stamp names what the layer was built from: the pinned requirements and the pip flags.
stamp_text() { printf '%s\n' "${REQUIREMENTS[@]}" "${PIP_FLAGS[@]}"; }

if [[ -f "$OUT/.stamp" && -d "$OUT/python" ]] && diff -q <(stamp_text) "$OUT/.stamp" >/dev/null; then
  echo "deps layer up to date: $OUT"
else
  install "$OUT" "${REQUIREMENTS[@]}"
  stamp_text > "$OUT/.stamp"
  echo "deps layer built: $OUT"
fi
packaging check-sizes "$OUT/python"

if [[ -n "${ANALYSIS_PROBE:-}" ]]; then
  mapfile -t IMAGE_REQUIREMENTS < <(packaging image)
  install build/layers/analysis-probe "${IMAGE_REQUIREMENTS[@]}"
  echo "analysis requirements as one layer (the image's packages, stripped the same way):" \
       "$(du -sb build/layers/analysis-probe/python | awk '{printf "%.1f MB", $1 / 1048576}')"
fi
