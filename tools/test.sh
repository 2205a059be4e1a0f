#!/usr/bin/env bash
# The whole test suite: the README's test command, and what CI runs (.ci/run).
#   bash tools/test.sh              every step
#   bash tools/test.sh unit lint    only the named steps
# Steps: lint, package, sanity, unit, endpoint, integration, firstboot, reliability, molecule, changelog.
# Every step runs; the script exits non-zero if any failed, listing which.
# Everything the steps write to a temporary directory goes into one per-run directory (TMPDIR), removed
# at the end; a last check, "leftovers", fails when the run left an entry in the system temporary
# directory or a mount behind. BAKERY_TMP_IGNORE lists glob patterns of entries other programs of a
# shared machine may make meanwhile (empty by default).
set -uo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=tools/ci/venv.sh
source tools/ci/venv.sh || exit 1
set +e

# shellcheck source=tools/ci/leftovers.sh
source tools/ci/leftovers.sh
leftovers_begin || exit 1
trap leftovers_end EXIT
# Python writes its output as it goes (pytest's progress reaches the log, and the heartbeat, at once)
export PYTHONUNBUFFERED=1

all_steps=(lint package sanity unit endpoint integration firstboot reliability molecule changelog)
steps=("$@")
[ "${#steps[@]}" -gt 0 ] || steps=("${all_steps[@]}")
failed=()
failed_logs=()
passed=()

# pytest exits 5 when it collected no test: that is a failure here, never a silent pass.
# The slowest tests of each step are listed at its end, to see where the suite's time goes.
run_pytest() { python -m pytest -p no:cacheprovider -ra --durations=12 --durations-min=5 "$@"; }
# The steps whose tests mostly wait (on bakes, on the endpoint's timeline, on first boots) run BAKERY_TEST_WORKERS
# tests at a time (pytest-xdist; 0 runs them one by one). Tests that share a module-scoped run are
# kept on one worker, and each worker bakes in a cache of its own (tests/conftest.py).
run_pytest_parallel() { run_pytest -n "${BAKERY_TEST_WORKERS:-2}" "$@"; }

# ansible-test's pep8 sanity test, run in seconds: its limit and its ignore list (read from the
# installed ansible-test, so the two never differ).
pep8_like_sanity() {
  local ignore
  ignore="$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_util/controller/sanity/pep8/current-ignore.txt"
  python -m pycodestyle --max-line-length 160 --ignore "$(grep -E '^[A-Z][0-9]+' "$ignore" | paste -sd, -)" "$@"
}
step_lint() {
  yamllint -s . && ansible-lint --offline --profile production \
    && ruff check plugins tests tools bench \
    && pep8_like_sanity plugins tests tools bench \
    && mypy
}
step_package() { bash tools/ci/package.sh; }
step_sanity() { bash tools/ci/sanity.sh; }
step_unit() { run_pytest tests/unit; }
step_endpoint() { run_pytest tests/endpoint; }
step_integration() { run_pytest_parallel tests/integration; }
step_firstboot() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "firstboot: needs root (debootstrap, chroot, mounts)" >&2
    return 1
  fi
  run_pytest_parallel tests/firstboot
}
step_reliability() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "reliability: needs root (the whole local bake runs in it)" >&2
    return 1
  fi
  run_pytest_parallel tests/reliability
}
# One molecule scenario, its output in a log of its own (scenarios run side by side).
molecule_scenario() {
  local role=$1 name root
  name="$(basename "$role")"
  # each scenario's root lives in this run's directory: two checkouts never share one
  root="$TMPDIR/molecule-$name/root"
  (cd "$role" && env "BAKERY_MOLECULE_${name^^}_ROOT=$root" "BAKERY_MOLECULE_ROOT=$root" molecule test) \
    >"$TMPDIR/molecule-$name.log" 2>&1
}
# The scenarios mostly wait (first boots, the local endpoint, Ansible's own start): BAKERY_TEST_WORKERS
# (default 2) run at a time, each in a directory, root, endpoint and molecule state of its own; each
# scenario's output is printed whole once it ends.
step_molecule() {
  local rc=0 role name workers="${BAKERY_TEST_WORKERS:-2}" roles=() pids=() statuses=() i
  [ "$workers" -ge 1 ] 2>/dev/null || workers=1
  for role in roles/*/; do
    [ -d "$role/molecule/default" ] && roles+=("${role%/}")
  done
  if [ "${#roles[@]}" -eq 0 ]; then
    echo "molecule: no scenario found under roles/*/molecule/default" >&2
    return 1
  fi
  for i in "${!roles[@]}"; do
    # at most $workers scenarios at once: wait for the one started $workers scenarios ago
    # (a pid's status is kept when waited for: bash forgets it once collected)
    if [ "$i" -ge "$workers" ]; then
      wait "${pids[$((i - workers))]}"
      statuses[$((i - workers))]=$?
    fi
    molecule_scenario "${roles[$i]}" &
    pids+=($!)
  done
  for i in "${!roles[@]}"; do
    name="$(basename "${roles[$i]}")"
    if [ -z "${statuses[$i]:-}" ]; then
      wait "${pids[$i]}"
      statuses[i]=$?
    fi
    echo "== molecule test: ${roles[$i]}"
    cat "$TMPDIR/molecule-$name.log"
    if [ "${statuses[$i]}" -ne 0 ]; then
      echo "molecule: scenario $name failed"
      rc=1
    fi
  done
  return $rc
}
step_changelog() { antsibull-changelog lint; }

# The lines of a step's log that say what failed, without colour codes.
failure_excerpt() {
  local step="$1" log="$2" lines
  lines="$(sed 's/\x1b\[[0-9;]*m//g' "$log" 2>/dev/null \
    | grep -aE '^(FAILED|ERROR) |^(ERROR|FATAL): |:[0-9]+:[0-9]+: [EWFBC][0-9]+ |^\[ERROR\]|fatal: |FAILED!|failed=[1-9]|^E +[A-Za-z]|^[A-Z]+[0-9]+ [A-Z]|^ *--> |Found [0-9]+ errors?|Traceback|^molecule: |^[a-z]+: .*(failed|error)' \
    | tail -n 12)"
  echo "$step failed:"
  if [ -n "$lines" ]; then echo "$lines"; else echo "(no failure line found; the step's output is above)"; fi
}

for step in "${steps[@]}"; do
  if ! declare -F "step_$step" >/dev/null; then
    echo "unknown step '$step'; steps are: ${all_steps[*]}" >&2
    exit 2
  fi
  echo
  echo "=============== $step ==============="
  start=$SECONDS
  # A line after 30 s without output, so a long test (a whole bake) is never mistaken for a hang. The
  # forwarder is not waited for to the end of its input: a process a step left behind could hold it.
  # The output is also kept in the run's directory, for the excerpt of a failed step after the summary.
  step_log="$TMPDIR/step-$step.log"
  "step_$step" > >(tee "$step_log" | python -m tools.heartbeat --what "$step" --every "${BAKERY_HEARTBEAT_SECONDS:-30}") 2>&1
  rc=$?
  forwarder=$!
  for _ in $(seq 50); do kill -0 "$forwarder" 2>/dev/null || break; sleep 0.1; done
  kill "$forwarder" 2>/dev/null
  if [ "$rc" -eq 0 ]; then
    passed+=("$step ($((SECONDS - start)) s)")
  else
    failed+=("$step ($((SECONDS - start)) s)")
    failed_logs+=("$step:$step_log")
  fi
done

# What the run left behind, checked once after all steps (a leak is never hidden by a failed step).
echo
echo "=============== leftovers ==============="
if leftovers_check; then passed+=("leftovers"); else failed+=("leftovers"); fi

echo
echo "=============== summary ==============="
for s in "${passed[@]}"; do echo "passed: $s"; done
for s in "${failed[@]}"; do echo "FAILED: $s"; done
echo "steps: ${#passed[@]} passed, ${#failed[@]} failed"
# Last, so that a reader of only the end of the output still sees why: the failure lines of each
# failed step (a failed test, a fatal task, a failed molecule scenario), at most 12 per step.
for entry in "${failed_logs[@]}"; do
  echo "--- why $(failure_excerpt "${entry%%:*}" "${entry#*:}")"
done
[ "${#failed[@]}" -eq 0 ]
