#!/usr/bin/env bash
# Builds the Lambda runtime-dependency layer (python3.12, arm64) without Docker:
# pip downloads the manylinux aarch64 wheels and unpacks them into build/layers/deps/python.
# Skips the work when the pinned requirement list has not changed since the last build.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=build/layers/deps
PY=${PYTHON:-.venv/bin/python}
LIMIT_BYTES=$((250 * 1024 * 1024))   # Lambda: function + layers, unzipped
REQUIREMENTS=(onnxruntime numpy pydantic aws-lambda-powertools scipy orjson msgspec scikit-learn)
PIP_FLAGS=(--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
           --implementation cp --python-version 3.12 --only-binary=:all:)

# The stamp names what the layer was built from: the requirements, the pip flags and the
# version bounds in pyproject.toml (a bumped lower bound rebuilds the layer).
stamp_text() {
  printf '%s\n' "${REQUIREMENTS[@]}" "${PIP_FLAGS[@]}"
  grep -E '^\s*"(onnxruntime|numpy|pydantic|aws-lambda-powertools|scipy|orjson|msgspec|scikit-learn)[<>=~!]' pyproject.toml || true
}

if [[ -f "$OUT/.stamp" && -d "$OUT/python" ]] && diff -q <(stamp_text) "$OUT/.stamp" >/dev/null; then
  echo "deps layer up to date: $OUT"
else
  rm -rf "$OUT"
  mkdir -p "$OUT/python"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-compile \
    "${PIP_FLAGS[@]}" --target "$OUT/python" "${REQUIREMENTS[@]}"
  # Tests, caches and console scripts are never imported at runtime.
  find "$OUT/python" -depth -type d \( -name __pycache__ -o -name tests -o -name test \) \
    -exec rm -rf {} +
  rm -rf "$OUT/python/bin"
  # Python-only tooling no Lambda imports (room under the 250 MB limit with scikit-learn and
  # scipy, which compare, training and experiment statistics need).
  rm -rf "$OUT/python"/onnxruntime/{transformers,tools,quantization} "$OUT/python"/numpy/f2py \
    "$OUT/python"/sklearn/datasets/{data,descr,images}
  # boto3/botocore are in the Lambda runtime already; pip may pull them in via powertools.
  rm -rf "$OUT/python"/boto3 "$OUT/python"/botocore "$OUT/python"/s3transfer
  stamp_text > "$OUT/.stamp"
  echo "deps layer built: $OUT"
fi

dir_bytes() { du -sb --exclude=__pycache__ --exclude='*.egg-info' "$@" | awk '{s += $1} END {print s}'; }
deps=$(dir_bytes "$OUT/python")
shared=$(dir_bytes layers/shared/python)
largest_fn=0
for fn in functions/*/; do
  [[ -d "$fn" ]] || continue
  size=$(dir_bytes "$fn")
  (( size > largest_fn )) && largest_fn=$size
done
total=$((deps + shared + largest_fn))
echo "unzipped: deps $((deps / 1024 / 1024)) MB + shared $((shared / 1024)) KB" \
     "+ largest function $((largest_fn / 1024)) KB = $((total / 1024 / 1024)) MB (limit 250 MB)"
if (( total >= LIMIT_BYTES )); then
  echo "error: the function and its layers exceed Lambda's 250 MB unzipped limit" >&2
  exit 1
fi
