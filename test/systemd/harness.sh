#!/usr/bin/env bash
# Boots systemd as PID 1 of fresh PID, mount, network, cgroup, UTS and IPC namespaces, with the compliance-sync units
# installed as shipped, for test/systemd/real.test.ts. Nothing on the host changes: /etc and /usr/bin are overlays
# whose changes live in memory; /tmp, /run, /var/tmp, /var/lib, /var/cache and /var/log are private tmpfs; the network
# is loopback only; no host service starts (the default unit is an empty target).
#
#   harness.sh probe                 exit 0 if this machine can do it, else print why not and exit 3
#   harness.sh boot SCRATCH REPO     boot; print the host PID of the namespaced systemd once it runs
#   harness.sh exec PID CMD...       run CMD inside (as root)
#   harness.sh shutdown PID          end it (SIGKILL of a PID namespace's init ends every process in it)
#
# SCRATCH (a host folder) is visible inside as /run/cs-harness/host: config.json, x-bearer-token and archive.db are
# installed from it; the boot log goes there. REPO is the checkout whose dist/cli.js becomes /usr/bin/compliance-sync.
set -euo pipefail

SYSTEMD=/lib/systemd/systemd

skip() {
  echo "$*"
  exit 3
}

probe() {
  [ "$(id -u)" = 0 ] || skip "needs root (namespaces, mounts and systemd as PID 1); running as uid $(id -u)"
  command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
  command -v nsenter >/dev/null || skip "nsenter (util-linux) is not installed"
  if [ ! -x "$SYSTEMD" ]; then
    if command -v apt-get >/dev/null; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd) >/dev/null 2>&1 || true
    fi
    [ -x "$SYSTEMD" ] || skip "$SYSTEMD is missing and could not be installed (apt-get install systemd)"
  fi
  local out
  if ! out=$(unshare --pid --fork --mount --net --cgroup --uts --ipc --propagation private --mount-proc \
    bash -c 'mount -t cgroup2 cgroup2 /sys/fs/cgroup && mount -t tmpfs tmpfs /run &&
             mkdir -p /run/o/u /run/o/w && mount -t overlay overlay -o lowerdir=/etc,upperdir=/run/o/u,workdir=/run/o/w /etc' 2>&1); then
    skip "namespaces, cgroup2 or overlayfs are not available here: ${out:-unshare failed}"
  fi
}

cgroup_of() {
  echo "/sys/fs/cgroup/unified/cs-harness-$1"
}

boot() {
  local scratch=$1 repo=$2
  probe >/dev/null
  # systemd must own a cgroup2 tree: give it a fresh cgroup of ours as the root of its cgroup namespace.
  local unified=/sys/fs/cgroup/unified
  [ -d "$unified" ] || unified=/sys/fs/cgroup
  local cg="$unified/cs-harness-$$"
  mkdir "$cg"
  echo "$cg" >"$scratch/cgroup"
  local node
  node=$(readlink -f "$(command -v node)")
  (
    echo $BASHPID >"$cg/cgroup.procs"
    exec setsid unshare --pid --fork --mount --net --cgroup --uts --ipc --propagation private --mount-proc \
      bash "$0" inside "$scratch" "$repo" "$node" </dev/null >"$scratch/boot.log" 2>&1
  ) &
  # The namespaced systemd is the one process whose parent is our unshare.
  local unshare_pid=$! pid=""
  for _ in $(seq 100); do
    kill -0 "$unshare_pid" 2>/dev/null || break
    pid=$(pgrep -P "$unshare_pid" -x systemd || true)
    if [ -n "$pid" ] && in_ns "$pid" systemctl is-system-running --wait >/dev/null 2>&1; then
      echo "$pid"
      return 0
    fi
    sleep 0.1
  done
  echo "systemd did not come up; boot log:" >&2
  cat "$scratch/boot.log" >&2
  shutdown "${pid:-$unshare_pid}" "$scratch"
  return 1
}

# Runs in the new namespaces: private mounts, the install, then systemd as PID 1.
inside() {
  local scratch=$1 repo=$2 node=$3
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
  mount -t tmpfs -o mode=755 tmpfs /run
  mkdir -p /run/cs-harness/host /run/cs-harness/repo
  mount --bind "$scratch" /run/cs-harness/host
  # The checkout may itself live under /tmp (a CI clone), which the tmpfs below hides: reach it through /run.
  mount --bind "$repo" /run/cs-harness/repo
  repo=/run/cs-harness/repo
  local dir
  for dir in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$dir"; done
  for dir in /var/lib /var/cache /var/log; do mount -t tmpfs -o mode=755 tmpfs "$dir"; done
  for dir in /etc /usr/bin; do
    local layer="/run/cs-harness/overlay$dir"
    mkdir -p "$layer/upper" "$layer/work"
    mount -t overlay overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" "$dir"
  done

  # The install, as systemd/README.md tells an administrator.
  printf '#!/bin/sh\nexec %s %s/dist/cli.js "$@"\n' "$node" "$repo" >/usr/bin/compliance-sync
  chmod 0755 /usr/bin/compliance-sync
  install -d /etc/sysusers.d /etc/systemd/system
  install -m 0644 "$repo/systemd/compliance-sync.conf" /etc/sysusers.d/
  systemd-sysusers /etc/sysusers.d/compliance-sync.conf
  install -m 0644 "$repo/systemd/compliance-sync.service" "$repo/systemd/compliance-sync-reconcile.service" /etc/systemd/system/
  install -d -m 0755 /etc/compliance-sync
  install -m 0644 /run/cs-harness/host/config.json /etc/compliance-sync/config.json
  install -m 0600 -o root -g root /run/cs-harness/host/x-bearer-token /etc/compliance-sync/x-bearer-token
  install -d -m 0700 -o compliance-sync -g compliance-sync /var/lib/compliance-sync
  install -m 0600 -o compliance-sync -g compliance-sync /run/cs-harness/host/archive.db /var/lib/compliance-sync/archive.db
  # Nothing of the host starts: the default unit is an empty target with the journal beside it.
  printf '[Unit]\nDescription=compliance-sync test target\nWants=systemd-journald.socket\n' >/etc/systemd/system/cs-test.target
  : >/etc/machine-id

  # LoadCredential= mounts the credential directory with shared propagation; a private / leaves it empty.
  mount --make-rshared /
  export container=cs-harness
  exec "$SYSTEMD" --unit=cs-test.target --log-target=console --log-color=no
}

in_ns() {
  local pid=$1
  shift
  nsenter --target "$pid" --mount --pid --net --uts --ipc --cgroup -- "$@"
}

shutdown() {
  local pid=$1 scratch=${2:-}
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$scratch" ] && [ -f "$scratch/cgroup" ]; then
    find "$(cat "$scratch/cgroup")" -depth -type d -exec rmdir {} + 2>/dev/null || true
  fi
}

case "${1:-}" in
  probe) probe ;;
  boot) boot "$2" "$3" ;;
  inside) inside "$2" "$3" "$4" ;;
  exec)
    pid=$2
    shift 2
    in_ns "$pid" "$@"
    ;;
  shutdown) shutdown "$2" "${3:-}" ;;
  *)
    echo "usage: $0 probe | boot SCRATCH REPO | exec PID CMD... | shutdown PID [SCRATCH]" >&2
    exit 64
    ;;
esac
