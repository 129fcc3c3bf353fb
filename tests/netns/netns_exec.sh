#!/bin/sh
# netns_exec.sh PREFIX HOST CMD [ARGS...] — run CMD inside emulated host HOST of
# the cluster PREFIX made by tests/support/netns_cluster.cpp: its network
# namespace, its hostname (UTS) and SysV IPC namespaces, and, in a private mount
# namespace made for this one command, its own /dev/shm and /etc/hosts.
# Every step execs, so the pid of this script becomes CMD's pid.
# As a cohort launch agent: --agent 'tests/netns/netns_exec.sh PREFIX {host}'.
set -eu
[ $# -ge 3 ] || { echo "usage: netns_exec.sh PREFIX HOST CMD [ARGS...]" >&2; exit 2; }
prefix=$1
host=$2
shift 2
anchors=/run/$prefix
[ -e "/run/netns/$prefix-$host" ] || { echo "netns_exec.sh: no host $host in cluster $prefix" >&2; exit 1; }
# Run from inside another emulated host (a master daemon starting the others),
# /dev/shm is that host's own: the root one is bound under the anchors too.
shm=/dev/shm/$prefix-$host
[ -d "$shm" ] || shm=$anchors/devshm/$prefix-$host
exec nsenter --net="/run/netns/$prefix-$host" --uts="$anchors/$host.uts" --ipc="$anchors/$host.ipc" -- \
  unshare --mount --propagation private -- \
  sh -c 'mount --bind "$1" /dev/shm && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"' \
  netns_exec "$shm" "$anchors/$host.hosts" "$@"
