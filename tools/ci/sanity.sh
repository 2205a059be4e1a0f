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

# A contributor runs ansible-test in the checkout, where the files the tarball leaves out (tools/,
# bench/, .ci/, the molecule scenarios) are checked too: run it on those, in a copy of the tracked
# files (a checkout's own .venv and outputs would be checked otherwise).
checkout_sanity() {
  local clone="$work/checkout/ansible_collections/bakery/ami" dep
  [ -d "$repo_root/.git" ] || [ -f "$repo_root/.git" ] || { echo "== not a git checkout: checkout sanity skipped"; return 0; }
  mkdir -p "$clone"
  (cd "$repo_root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -P -t "$clone" 2>/dev/null) || true
  # ansible-test lists a collection's files from git: the copy is a repository of its own
  (cd "$clone" && git init -q && git add -A) || return 1
  for dep in amazon/aws community/general; do
    if [ -d "$deps/$dep" ]; then
      mkdir -p "$work/checkout/ansible_collections/${dep%/*}"
      ln -s "$deps/$dep" "$work/checkout/ansible_collections/$dep"
    fi
  done
  local targets=() path
  for path in "$clone"/.ci "$clone"/bench "$clone"/tools "$clone"/roles/*/molecule; do
    [ -e "$path" ] && targets+=("${path#"$clone"/}/")
  done
  echo "== ansible-test sanity in a copy of the checkout, on what the tarball leaves out: ${targets[*]}"
  (cd "$clone" && run_sanity "${targets[@]}")
}

log="$work/sanity.log"
if run_sanity "$@" 2>&1 | tee "$log"; then
  checkout_sanity
  exit $?
fi
# Where the pip bootstrap download is impossible, ansible-test names the path it wanted to cache
# it at: place the offline stand-in there and run again. With normal internet access the
# download works and this branch never runs.
wanted="$(sed -n 's/.*can be manually downloaded and saved to: \(\S*\).*/\1/p' "$log" | head -n 1)"
if [ -n "$wanted" ] && [ ! -e "$wanted" ]; then
  echo "== pip bootstrap download failed; using the offline stand-in at $wanted"
  mkdir -p "$(dirname "$wanted")"
  cp "$repo_root/tools/ci/pip_bootstrap_standin.py" "$wanted"
  run_sanity "$@" && checkout_sanity
else
  exit 1
fi
