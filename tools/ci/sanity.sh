#!/usr/bin/env bash
# ansible-test sanity on the collection as users get it: build the tarball, install it into an
# empty ansible_collections tree, and run every sanity test there. Expects tools/ci/venv.sh.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

ansible-galaxy collection build --force --output-path "$work/dist" "$repo_root" >/dev/null
ANSIBLE_COLLECTIONS_PATH="$work/install" ansible-galaxy collection install --offline --no-deps --force -p "$work/install" "$work"/dist/bakery-ami-*.tar.gz >/dev/null
# Dependencies beside it, from the `ansible` package (ansible-test's import test resolves
# amazon.aws and community.general only from the same ansible_collections tree).
deps="$(python -c 'import ansible_collections; print(list(ansible_collections.__path__)[0])' 2>/dev/null || true)"
for dep in amazon/aws community/general; do
  if [ -d "$deps/$dep" ]; then
    mkdir -p "$work/install/ansible_collections/${dep%/*}"
    ln -s "$deps/$dep" "$work/install/ansible_collections/$dep"
  fi
done
collection="$work/install/ansible_collections/bakery/ami"
# ansible-test reads the tests and their ignore files from the collection tree.
cd "$collection"

run_sanity() { ansible-test sanity --local --python 3.11 --color no "$@"; }

log="$work/sanity.log"
if run_sanity "$@" 2>&1 | tee "$log"; then
  exit 0
fi
# Where the pip bootstrap download is impossible, ansible-test names the path it wanted to cache
# it at: place the offline stand-in there and run again. With normal internet access the
# download works and this branch never runs.
wanted="$(sed -n 's/.*can be manually downloaded and saved to: \(\S*\).*/\1/p' "$log" | head -n 1)"
if [ -n "$wanted" ] && [ ! -e "$wanted" ]; then
  echo "== pip bootstrap download failed; using the offline stand-in at $wanted"
  mkdir -p "$(dirname "$wanted")"
  cp "$repo_root/tools/ci/pip_bootstrap_standin.py" "$wanted"
  run_sanity "$@"
else
  exit 1
fi
