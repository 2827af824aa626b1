# Shared set-up for scripts/run and scripts/test: a virtualenv in .venv with the pinned
# requirements. On a fresh Debian machine it installs python3-venv first (as root, or via sudo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  # apt_install PACKAGE...: install the Debian packages that are missing.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_venv() {
  # ensure_venv REQUIREMENTS_FILE: .venv exists and holds exactly what the file pins.
  local req="$1"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv python3-dev
  fi
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local stamp=".venv/.installed-$(cat requirements.txt "$req" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r "$req"
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
}
