# Sourced by bin/grantline and bin/test: makes sure uv and the workspace's virtualenv exist.
# Needs only Python 3.11 on the PATH; uv itself is installed from PyPI into .tools/ when missing.
set -eu
GRANTLINE_ROOT=$(cd "$(dirname "$0")/.." && pwd)
export UV_PYTHON_DOWNLOADS=never
# Use the system certificate store (corporate proxies and mirrors add their CA there).
export UV_NATIVE_TLS="${UV_NATIVE_TLS:-true}"
export UV_PROJECT_ENVIRONMENT="$GRANTLINE_ROOT/.venv"
if command -v uv >/dev/null 2>&1; then
  UV=uv
elif [ -x "$GRANTLINE_ROOT/.tools/bin/uv" ]; then
  UV="$GRANTLINE_ROOT/.tools/bin/uv"
else
  PY=$(command -v python3.11 || command -v python3)
  echo "bootstrap: installing uv into .tools/ (one time)" >&2
  if "$PY" -m venv "$GRANTLINE_ROOT/.tools" 2>/dev/null; then
    "$GRANTLINE_ROOT/.tools/bin/pip" install --quiet --disable-pip-version-check "uv>=0.9,<1"
  else
    # Some distributions ship Python without venv; pip can still install uv into a folder.
    rm -rf "$GRANTLINE_ROOT/.tools"
    "$PY" -m pip install --quiet --disable-pip-version-check --target "$GRANTLINE_ROOT/.tools/lib" "uv>=0.9,<1"
    mkdir -p "$GRANTLINE_ROOT/.tools/bin"
    ln -sf "$GRANTLINE_ROOT/.tools/lib/bin/uv" "$GRANTLINE_ROOT/.tools/bin/uv"
  fi
  UV="$GRANTLINE_ROOT/.tools/bin/uv"
fi
PY311=$(command -v python3.11 || command -v python3)
( cd "$GRANTLINE_ROOT" && "$UV" sync --frozen --quiet --python "$PY311" )
