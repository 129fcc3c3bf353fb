#!/bin/sh
# mpirun_netns_agent.sh NETNS_EXEC PREFIX [SSH-OPTIONS] HOST WORDS... — Open MPI's
# rsh launch agent for the emulated hosts of tests/support/netns_cluster.cpp.
#
# Open MPI's rsh launcher runs `AGENT HOST orted ...` the way it would run ssh:
# the remote command comes as words that ssh would join with spaces and hand to
# the remote shell (some of them carry their own shell quoting). So do the same:
# enter HOST with NETNS_EXEC (tests/netns/netns_exec.sh) and give the joined
# words to sh -c. cohort_cluster_bench passes it as
#   --mca plm_rsh_agent 'build/bin/mpirun_netns_agent.sh .../netns_exec.sh PREFIX'
set -eu
[ $# -ge 4 ] || { echo "usage: mpirun_netns_agent.sh NETNS_EXEC PREFIX HOST WORDS..." >&2; exit 2; }
netns_exec=$1
prefix=$2
shift 2
# ssh-style options before the host name (Open MPI adds none for an agent that
# is not called ssh or rsh, but tolerate them).
while [ $# -gt 0 ]; do
  case $1 in
    -*) shift ;;
    *) break ;;
  esac
done
host=$1
shift
exec "$netns_exec" "$prefix" "$host" /bin/sh -c "$*"
