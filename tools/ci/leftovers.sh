#!/usr/bin/env bash
# What a test run leaves behind, for tools/test.sh (sourced):
#   leftovers_begin   note the mount table and the system temporary directory's entries, then make
#                     the run's own temporary directory and point TMPDIR at it
#   leftovers_check   print every mount and every temporary-directory entry the run added (exit 1 if
#                     any), else one line saying there were none
#   leftovers_end     take down mounts under the run's directory (never walking into one), remove it
# BAKERY_TMP_IGNORE: glob patterns of entries that other programs of a shared machine may make
# meanwhile; another run of tools/test.sh has its own bakery-ami-test.* directory and is ignored.

leftovers_mounts() { findmnt -rn -o TARGET | sort; }

leftovers_tmp_entries() {
  local entry pattern
  for entry in "$leftovers_system_tmp"/* "$leftovers_system_tmp"/.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    entry="${entry##*/}"
    case "$entry" in bakery-ami-test.*) continue ;; esac
    for pattern in ${BAKERY_TMP_IGNORE:-}; do
      # shellcheck disable=SC2254
      case "$entry" in $pattern) continue 2 ;; esac
    done
    echo "$entry"
  done | sort
}

leftovers_begin() {
  leftovers_system_tmp="${TMPDIR:-/tmp}"
  leftovers_tmp_before="$(leftovers_tmp_entries)"
  leftovers_mounts_before="$(leftovers_mounts)"
  leftovers_run_tmp="$(mktemp -d "$leftovers_system_tmp/bakery-ami-test.XXXXXX")" || return 1
  export TMPDIR="$leftovers_run_tmp"
}

leftovers_check() {
  local left_mounts left_tmp line
  left_mounts="$(comm -13 <(echo "$leftovers_mounts_before") <(leftovers_mounts))"
  left_tmp="$(comm -13 <(echo "$leftovers_tmp_before") <(leftovers_tmp_entries))"
  if [ -z "$left_mounts" ] && [ -z "$left_tmp" ]; then
    echo "nothing left in $leftovers_system_tmp, no mount left behind"
    return 0
  fi
  while read -r line; do [ -z "$line" ] || echo "mount left behind: $line"; done <<< "$left_mounts"
  while read -r line; do [ -z "$line" ] || echo "left in $leftovers_system_tmp: $line"; done <<< "$left_tmp"
  return 1
}

leftovers_end() {
  [ -n "${leftovers_run_tmp:-}" ] && [ -d "$leftovers_run_tmp" ] || return 0
  findmnt -rn -o TARGET | grep -F "$leftovers_run_tmp/" | sort -r | while read -r target; do
    umount -R -l "$target" 2>/dev/null || true
  done
  rm -rf --one-file-system "$leftovers_run_tmp"
}
