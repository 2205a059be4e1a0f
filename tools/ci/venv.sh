#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install what the tests and the local
# bake need. Sourced by the two README commands; prints nothing on a warm run.
# Usage: source tools/ci/venv.sh
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${BAKERY_VENV:-$repo_root/.venv}"
python="${BAKERY_PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "bakery.ami needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
  exit 1
fi
stamp="$venv/.bakery-requirements.sha256"
want="$(cat "$repo_root/requirements.txt" "$repo_root/tests/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # shellcheck source=tools/ci/heartbeat.sh
  source "$repo_root/tools/ci/heartbeat.sh"
  echo "== setting up $venv (Python packages from PyPI; about a minute on a quiet machine)"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  (cd "$repo_root/tests" && bakery_with_heartbeat "installing Python packages into $venv" \
    "$venv/bin/python" -m pip install --quiet -r requirements.txt)
  echo "== $venv is ready"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"

# System packages: debootstrap builds the local builder's Debian root filesystem.
need_apt=()
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
for pkg in ${BAKERY_EXTRA_APT:-}; do
  command -v "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need_apt[*]} (install them, or run as root so this script can)" >&2
    exit 1
  fi
  echo "== installing ${need_apt[*]}"
  # shellcheck source=tools/ci/heartbeat.sh
  source "$repo_root/tools/ci/heartbeat.sh"
  bakery_with_heartbeat "apt-get update" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive bakery_with_heartbeat "installing ${need_apt[*]}" \
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Make this checkout visible to Ansible as bakery.ami without installing it.
# (outside the checkout, so no tree walk of the repository meets a link back into itself)
BAKERY_COLLECTIONS="${BAKERY_COLLECTIONS:-${XDG_CACHE_HOME:-$HOME/.cache}/bakery-ami/collections/$(echo "$repo_root" | sha256sum | cut -c1-12)}"
mkdir -p "$BAKERY_COLLECTIONS/ansible_collections/bakery"
ln -sfn "$repo_root" "$BAKERY_COLLECTIONS/ansible_collections/bakery/ami"
export ANSIBLE_COLLECTIONS_PATH="$BAKERY_COLLECTIONS"
export BAKERY_REPO_ROOT="$repo_root"
