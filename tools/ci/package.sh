#!/usr/bin/env bash
# The collection as users install it: build the tarball, install it into an empty path, and
# render every module's documentation from there. Also checks that the `ami` action group in
# meta/runtime.yml lists exactly the modules that call AWS
# (those with amazon.aws's common options). Expects tools/ci/venv.sh.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

ansible-galaxy collection build --output-path "$work/dist" "$repo_root"
tarball="$(ls "$work"/dist/bakery-ami-*.tar.gz)"
# Nothing of the test tooling or benchmarks may ship.
if tar -tzf "$tarball" | grep -E '^(tools|bench|\.venv|\.ci)/'; then
  echo "the tarball contains files build_ignore should keep out (listed above)" >&2
  exit 1
fi
ANSIBLE_COLLECTIONS_PATH="$work/empty" ansible-galaxy collection install --offline --no-deps -p "$work/empty" "$tarball"

modules="$(cd "$repo_root/plugins/modules" && ls -1 *.py | grep -v '^__init__' | sed 's/\.py$//' | sort)"
# The group holds exactly the modules that call AWS: those documented with amazon.aws's common options.
aws_modules="$(cd "$repo_root/plugins/modules" && grep -l '^  - amazon.aws.common.modules$' *.py | sed 's/\.py$//' | sort)"
group="$(python - "$repo_root/meta/runtime.yml" <<'PY'
import sys, yaml
print("\n".join(sorted(yaml.safe_load(open(sys.argv[1]))["action_groups"]["ami"])))
PY
)"
if [ "$aws_modules" != "$group" ]; then
  echo "meta/runtime.yml action group 'ami' does not match the modules that take the AWS options:" >&2
  diff <(echo "$group") <(echo "$aws_modules") >&2 || true
  exit 1
fi
count=0
for module in $modules; do
  # From the installed copy only: the checkout is not on this collections path.
  ANSIBLE_NOCOLOR=1 ANSIBLE_COLLECTIONS_PATH="$work/empty" ansible-doc -t module "bakery.ami.$module" > "$work/doc.txt"
  grep -q "^> MODULE bakery.ami.$module" "$work/doc.txt" || { echo "ansible-doc did not render bakery.ami.$module" >&2; exit 1; }
  count=$((count + 1))
done
echo "package: tarball $(basename "$tarball") installs; ansible-doc rendered $count modules"
