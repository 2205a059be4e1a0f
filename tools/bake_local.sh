#!/usr/bin/env bash
# The main job: a complete bake on the embedded local default; its test stage first-boots the image
# (bake_test, the local boot check) before the image is copied.
#   - sets up the virtual environment (tools/ci/venv.sh) and the cached Debian 12 root
#   - starts the local AWS endpoint on 127.0.0.1 with the seed catalog (a Debian 12 source image
#     owned by Debian's account in every region the example uses)
#   - runs playbooks/bake.yml -e @examples/local.yml (tools/ansible/boot_check.yml re-checks an image on demand)
#   - stops the endpoint; exits non-zero on any failure
# Usage: bash tools/bake_local.sh [extra ansible-playbook arguments, e.g. -e bake_level=minimal]
# Outputs: ./bake-output/{bake-manifest.json,bake-report.json,launch-user-data.yml}
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
if [ "$(id -u)" -ne 0 ]; then
  echo "bake_local.sh: the local builder needs root (it mounts proc/sys/dev in a Debian root and uses chroot); run it as root" >&2
  exit 1
fi
# shellcheck source=ci/venv.sh
source tools/ci/venv.sh

export BAKERY_CATALOG="${BAKERY_CATALOG:-$repo_root/tools/local_aws/catalogs/local-default.json}"
export BAKERY_OUTPUT_DIR="${BAKERY_OUTPUT_DIR:-$PWD/bake-output}"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-1}" ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCALHOST_WARNING=0
export ANSIBLE_INVENTORY_UNPARSED_WARNING=0

python - "$@" <<'PY'
import os, sys, time
sys.path.insert(0, os.getcwd())
from tools import heartbeat
from tools.local_aws.control import LocalAws
from tools.rootfs import harness

started = time.monotonic()
print("== Debian 12 root image (debootstrap from the apt sources' Debian mirror on the first run, about a minute; "
      "cached afterwards)", flush=True)
with heartbeat.quiet_step("building the Debian 12 root"):
    image = harness.ensure_image()
print("== Debian 12 root image: %s" % image, flush=True)
common = ["-i", "localhost,", "-c", "local", "-e", "@examples/local.yml",
          "-e", "bake_output_dir=" + os.environ["BAKERY_OUTPUT_DIR"]]
with LocalAws.start(port=0, amis=os.environ["BAKERY_CATALOG"]) as aws:
    print("== local AWS endpoint: %s" % aws.url, flush=True)
    extra = ["-e", "bake_endpoint_url=" + aws.url] + sys.argv[1:]
    playbook = "playbooks/bake.yml"
    print("== ansible-playbook %s" % playbook, flush=True)
    # Ansible prints nothing while a task waits (for images, copies): a line after 20 s of silence
    code = heartbeat.run(["ansible-playbook", playbook] + common + extra, playbook,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    if code != 0:
        print("== %s failed (exit %d)" % (playbook, code), file=sys.stderr)
        sys.exit(code)
print("== local bake passed in %.0f s; outputs in %s"
      % (time.monotonic() - started, os.environ["BAKERY_OUTPUT_DIR"]))
PY
