#!/bin/bash
# Runs name-service lookups through nslcd against a test LDAP server, in a private mount
# namespace: /etc/nslcd.conf, /etc/nsswitch.conf and /run (where libnss-ldapd's socket path,
# /run/nslcd/socket, is compiled in) are bind-mounted over only for this process and its
# children, so no system file is changed and the rest of the machine never sees nslcd.
# Run as: unshare --mount --propagation private nss-lookup.sh DIR 'cmd' ['cmd'...]
# DIR holds nslcd.conf and nsswitch.conf; nslcd's debug log goes to DIR/nslcd.log.
set -euo pipefail
dir=$1
shift
mount -t tmpfs -o mode=0755 hearth-nss /run
mkdir /run/nslcd
chown nslcd:nslcd /run/nslcd
mount --bind "$dir/nslcd.conf" /etc/nslcd.conf
mount --bind "$dir/nsswitch.conf" /etc/nsswitch.conf
# nslcd in the foreground (-d), bounded in time even if this script is killed.
timeout 120 nslcd -d >"$dir/nslcd.log" 2>&1 &
nslcd_pid=$!
trap 'kill "$nslcd_pid" 2>/dev/null || true; wait "$nslcd_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -S /run/nslcd/socket ] && break
  sleep 0.1
done
[ -S /run/nslcd/socket ] || { echo "nslcd did not start" >&2; cat "$dir/nslcd.log" >&2; exit 1; }
for cmd in "$@"; do
  echo "### cmd: $cmd"
  rc=0
  sh -c "$cmd" || rc=$?
  echo "### rc=$rc"
done
