#!/usr/bin/env bash
# bakery_with_heartbeat WHAT COMMAND...: run COMMAND, printing "== WHAT: still working (N s)" every
# $BAKERY_HEARTBEAT_SECONDS (default 20) while it runs, so a quiet step (pip, debootstrap) is never
# mistaken for a hung one; returns COMMAND's exit code. Sourced by tools/ci/venv.sh.
bakery_with_heartbeat() {
  local what="$1" every="${BAKERY_HEARTBEAT_SECONDS:-20}" started=$SECONDS next pid rc
  shift
  "$@" &
  pid=$!
  next=$((started + every))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ "$SECONDS" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      echo "== $what: still working ($((SECONDS - started)) s)"
      next=$((next + every))
    fi
  done
  rc=0
  wait "$pid" || rc=$?
  return "$rc"
}
