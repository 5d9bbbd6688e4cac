#!/usr/bin/env bash
# Real OpenStack Swift (proxy, account, container and object servers; 1 replica; keystoneauth)
# and Keystone v3 (python3-keystone under uwsgi; SQLite in WAL mode; fernet tokens; in-process
# cache), plus memcached, from Debian 12's packages, all on 127.0.0.1, for the integration tests
# (tests/integration/test_swift_real.py). It installs nothing: `scripts/setup test` does that.
#
#   tests/peers/openstack_peers.sh start          configure and start (idempotent), print the env file
#   tests/peers/openstack_peers.sh stop [--purge] stop exactly what start started (--purge: and
#                                                 delete the state directory)
#   tests/peers/openstack_peers.sh status         exit 0 when everything runs and answers
#   tests/peers/openstack_peers.sh env            print the env file's path
#
# Everything (configs, data, logs, PIDs, the chosen ports, the env file) lives in the state
# directory: $UNSHELVER_PEERS_STATE, default /tmp/unshelver-openstack-peers. Ports are free high
# ports (20000-32767, below the kernel's ephemeral range) chosen at the first start and kept while
# they stay free. Keystone's IDs and the application credential survive restarts with the state.
# The env file holds KEY=VALUE lines: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME,
# OS_APP_CRED_ID, OS_APP_CRED_SECRET, SWIFT_ACCOUNT_URL and more (see tests/peers/README.md).
#
# Exit codes: 0 done, 1 failed (logs in $STATE/log), 2 usage, 3 Debian packages missing.
set -Eeuo pipefail

HOST=127.0.0.1
STATE=${UNSHELVER_PEERS_STATE:-/tmp/unshelver-openstack-peers}
PY=/usr/bin/python3   # Debian's Python: the packages live there (not a pyenv or venv python3)
# Fixed test credentials: throw-away services that only listen on loopback.
ADMIN_PASSWORD=peers-admin-pass
DEMO_PASSWORD=peers-demo-pass
SWIFT_SERVICE_PASSWORD=peers-swift-pass
APP_CRED_NAME=unshelver-peers
APP_CRED_SECRET=peers-app-cred-secret
# Started in this order; stopped in reverse, the log sink last.
SERVICES=(logsink memcached swift-account swift-container swift-object swift-proxy keystone)

log() { printf 'openstack_peers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
started_at=$(date +%s%N)
elapsed() { local now; now=$(date +%s%N); printf '%d.%01d s' $(((now - started_at) / 1000000000)) $(((now - started_at) / 100000000 % 10)); }

case "$STATE" in /*) ;; *) echo "openstack_peers: UNSHELVER_PEERS_STATE must be an absolute path" >&2; exit 2 ;; esac
RUN="$STATE/run" LOGS="$STATE/log" LIB="$STATE/lib" SW="$STATE/etc/swift" KS="$STATE/keystone"
ENV_FILE="$STATE/env"

# ------------------------------------------------------------------------------------ processes
# A PID file names the leader of a session of its own (setsid); a process counts as ours only while
# its command line names the state directory, so a recycled PID is never signalled.
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$STATE/"; }
leader() {   # leader NAME: prints the PID when that service's leader is alive and ours
  local file="$RUN/$1.pid" pid
  [ -s "$file" ] || return 1
  pid=$(<"$file")
  ours "$pid" && echo "$pid"
}
session_members() {   # every live process of ours in the session that PID leads (uwsgi's worker...)
  local stat pid line fields
  for stat in /proc/[0-9]*/stat; do
    { line=$(<"$stat"); } 2>/dev/null || continue
    # after "pid (comm) ": state ppid pgrp session ...; comm may hold spaces and parentheses
    read -r -a fields <<<"${line##*) }"
    [ "${fields[3]:-}" = "$1" ] || continue
    pid=${stat#/proc/}; pid=${pid%/stat}
    ours "$pid" && echo "$pid"
  done
  return 0
}
start_bg() {   # start_bg NAME COMMAND...: own session, no inherited lock, output to $LOGS/NAME.log
  local name=$1; shift
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
}
stop_sessions() {   # stop_sessions NAME...: SIGTERM the leaders, then stragglers; SIGKILL after 10 s
  local name sid pid sessions=() left i
  for name in "$@"; do
    [ -s "$RUN/$name.pid" ] || continue
    sessions+=("$(<"$RUN/$name.pid")")
  done
  [ ${#sessions[@]} -gt 0 ] || return 0
  # Only the leader: a uwsgi worker that gets SIGTERM itself exits, and its master starts a new one.
  for sid in "${sessions[@]}"; do
    ours "$sid" && { kill -TERM "$sid" 2>/dev/null || true; }
  done
  for ((i = 0; i < 100; i++)); do
    left=""
    for sid in "${sessions[@]}"; do left+=$(session_members "$sid"); done
    [ -z "$left" ] && break
    if [ "$i" = 50 ]; then   # leaders that have gone but left processes behind
      for sid in "${sessions[@]}"; do
        ours "$sid" && continue
        for pid in $(session_members "$sid"); do kill -TERM "$pid" 2>/dev/null || true; done
      done
    fi
    sleep 0.1
  done
  if [ -n "$left" ]; then
    for sid in "${sessions[@]}"; do
      for pid in $(session_members "$sid"); do
        log "pid $pid still running 10 s after SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      done
    done
  fi
  for name in "$@"; do rm -f "$RUN/$name.pid"; done
}
stop_all() {
  rm -f "$STATE/ready"
  [ -d "$RUN" ] || return 0
  # Everything but the log sink first, so that their last lines still reach the log.
  stop_sessions keystone swift-proxy swift-object swift-container swift-account memcached
  stop_sessions logsink
  rm -f "$RUN/log.sock" "$RUN/memcached.self.pid"
}

http_ok() { curl -sf --noproxy '*' --max-time 3 -o /dev/null "$1"; }
healthy() {
  local name
  [ -e "$STATE/ready" ] && [ -s "$ENV_FILE" ] && [ -s "$STATE/ports" ] || return 1
  for name in "${SERVICES[@]}"; do leader "$name" >/dev/null || return 1; done
  # shellcheck disable=SC1091
  . "$STATE/ports"
  http_ok "http://$HOST:$PROXY_PORT/healthcheck" && http_ok "http://$HOST:$KEYSTONE_PORT/v3"
}

lock() {   # serialises start and stop of one state directory
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 180 9 || die "another start or stop of $STATE did not finish within 180 s"
}

# ------------------------------------------------------------------------------------ packages
missing_packages() {
  local missing=() pair
  for pair in swift-proxy:/usr/bin/swift-proxy-server swift-account:/usr/bin/swift-account-server \
      swift-container:/usr/bin/swift-container-server swift-object:/usr/bin/swift-object-server \
      memcached:/usr/bin/memcached python3-keystone:/usr/bin/keystone-wsgi-public \
      python3-keystonemiddleware:/usr/lib/python3/dist-packages/keystonemiddleware/auth_token \
      uwsgi-core:/usr/bin/uwsgi-core uwsgi-plugin-python3:/usr/lib/uwsgi/plugins/python3_plugin.so \
      curl:/usr/bin/curl python3:$PY swift:/etc/swift/swift.conf; do
    [ -e "${pair#*:}" ] || missing+=("${pair%%:*}")
  done
  echo "${missing[*]}"
}

# ------------------------------------------------------------------------------------ commands
cmd_env() {
  echo "$ENV_FILE"
  [ -s "$ENV_FILE" ] || { log "no env file yet: run '$0 start'"; return 1; }
}

cmd_status() {
  if healthy; then echo "running ($STATE)"; else echo "not running ($STATE)"; return 1; fi
}

cmd_stop() {
  lock
  stop_all
  if [ "${1:-}" = "--purge" ]; then
    rm -rf "$STATE"
    log "stopped; removed $STATE"
  else
    log "stopped (state kept in $STATE)"
  fi
}

cmd_start() {
  lock
  if healthy; then
    log "already running ($(elapsed))"
    cat "$ENV_FILE"
    return 0
  fi
  local missing
  missing=$(missing_packages)
  if [ -n "$missing" ]; then
    log "Debian packages missing: $missing. Install them with: scripts/setup test"
    exit 3
  fi
  stop_all   # leftovers of an earlier, unfinished start
  trap cleanup_failed_start EXIT
  mkdir -p "$RUN" "$LOGS" "$LIB" "$SW" "$STATE/srv/node/d1" "$STATE/cache" "$KS/fernet-keys" "$KS/credential-keys"
  chmod 700 "$KS/fernet-keys" "$KS/credential-keys"
  write_helpers
  # Free ports (kept from the last start while they stay free) and a storage directory with user
  # xattrs, which Swift's object server needs.
  local ports_outcome
  ports_outcome=$(env -u PYTHONPATH -u PYTHONHOME "$PY" "$LIB/peers_helper.py" prepare "$STATE/ports" "$STATE/srv/node/d1") \
    || die "could not prepare ports and storage"
  # shellcheck disable=SC1091
  . "$STATE/ports"
  log "ports ($ports_outcome): swift proxy $PROXY_PORT, account $ACCOUNT_PORT, container $CONTAINER_PORT, object $OBJECT_PORT, keystone $KEYSTONE_PORT, memcached $MEMCACHED_PORT"
  write_swift_configs
  write_keystone_configs

  # The log sink first: Swift's servers look for their log socket when they start.
  rm -f "$RUN/log.sock"
  start_bg logsink env -u PYTHONPATH -u PYTHONHOME "$PY" "$LIB/peers_helper.py" logsink "$RUN/log.sock" "$LOGS/swift.log"
  local i
  for ((i = 0; i < 100; i++)); do [ -S "$RUN/log.sock" ] && break; sleep 0.02; done
  [ -S "$RUN/log.sock" ] || die "the log sink did not create $RUN/log.sock (see $LOGS/logsink.log)"
  local memcached_user=()
  [ "$(id -u)" = 0 ] && memcached_user=(-u root)
  # -U 0: no UDP. -P: its own PID file, which also puts the state directory in its command line.
  start_bg memcached /usr/bin/memcached -l "$HOST" -p "$MEMCACHED_PORT" -U 0 -m 64 -c 256 "${memcached_user[@]}" -P "$RUN/memcached.self.pid"
  local server
  for server in account container object; do
    start_bg "swift-$server" env -u PYTHONPATH -u PYTHONHOME "/usr/bin/swift-$server-server" "$SW/$server-server.conf"
  done
  # The proxy imports the access-log filter from $LIB (see peers_access_log.py).
  start_bg swift-proxy env -u PYTHONHOME PYTHONPATH="$LIB" /usr/bin/swift-proxy-server "$SW/proxy-server.conf"

  # Keystone's database and keys, once per state directory, while Swift's servers start.
  if [ ! -e "$KS/bootstrapped" ]; then
    log "keystone: first start, creating its database and keys"
    bootstrap_keystone
  fi
  start_bg keystone env -u PYTHONPATH -u PYTHONHOME /usr/bin/uwsgi-core --ini "$KS/uwsgi.ini"

  local pids=()
  for server in "${SERVICES[@]}"; do pids+=("$server:$(<"$RUN/$server.pid")"); done
  env -u PYTHONPATH -u PYTHONHOME "$PY" "$LIB/peers_helper.py" wait 60 "${pids[@]}" -- \
    "http://$HOST:$ACCOUNT_PORT/healthcheck" "http://$HOST:$CONTAINER_PORT/healthcheck" \
    "http://$HOST:$OBJECT_PORT/healthcheck" "http://$HOST:$PROXY_PORT/healthcheck" \
    "http://$HOST:$KEYSTONE_PORT/v3" \
    || { tail -n 20 "$LOGS"/*.log >&2 || true; die "the services did not come up"; }
  log "services answer ($(elapsed))"

  # Users, projects, the catalog and the application credential: only when the ports changed
  # (the catalog holds them) or nothing was provisioned yet; it is idempotent anyway.
  local signature="v1 keystone=$KEYSTONE_PORT proxy=$PROXY_PORT"
  if [ ! -s "$ENV_FILE" ] || [ "$(cat "$STATE/provisioned" 2>/dev/null)" != "$signature" ]; then
    KS_URL="http://$HOST:$KEYSTONE_PORT/v3" SWIFT_URL="http://$HOST:$PROXY_PORT" STATE="$STATE" \
      ADMIN_PASSWORD=$ADMIN_PASSWORD DEMO_PASSWORD=$DEMO_PASSWORD SWIFT_SERVICE_PASSWORD=$SWIFT_SERVICE_PASSWORD \
      APP_CRED_NAME=$APP_CRED_NAME APP_CRED_SECRET=$APP_CRED_SECRET \
      env -u PYTHONPATH -u PYTHONHOME "$PY" "$LIB/peers_helper.py" provision "$ENV_FILE" \
      || die "keystone provisioning failed (see $LOGS/keystone.log)"
    echo "$signature" >"$STATE/provisioned"
    log "keystone provisioned ($(elapsed))"
  fi
  # A real round trip every time: tokens (password and application credential), container PUT,
  # object PUT with If-None-Match: *.
  env -u PYTHONPATH -u PYTHONHOME "$PY" "$LIB/peers_helper.py" smoke "$ENV_FILE" \
    || die "smoke test against Swift failed (see $LOGS/swift.log, $LOGS/keystone.log)"
  touch "$STATE/ready"
  trap - EXIT
  log "started in $(elapsed); env file: $ENV_FILE"
  cat "$ENV_FILE"
}

cleanup_failed_start() {   # a start that fails leaves nothing running (UNSHELVER_PEERS_KEEP=1: it does)
  local status=$?
  if [ "$status" -ne 0 ] && [ "${UNSHELVER_PEERS_KEEP:-0}" != 1 ]; then
    stop_all
    log "start failed; nothing left running; logs in $LOGS"
  fi
}

bootstrap_keystone() {
  local keystone_manage=(env -u PYTHONPATH -u PYTHONHOME /usr/bin/keystone-manage --config-file "$KS/keystone.conf")
  local manage_log="$LOGS/keystone-manage.log" user group
  user=$(id -un) group=$(id -gn)
  rm -f "$KS/keystone.db" "$KS/keystone.db-wal" "$KS/keystone.db-shm"
  # Each keystone-manage run spends ~1.5 s importing: the independent ones run side by side.
  "${keystone_manage[@]}" fernet_setup --keystone-user "$user" --keystone-group "$group" >>"$manage_log" 2>&1 &
  local fernet=$!
  "${keystone_manage[@]}" credential_setup --keystone-user "$user" --keystone-group "$group" >>"$manage_log" 2>&1 &
  local credential=$!
  "${keystone_manage[@]}" db_sync >>"$manage_log" 2>&1 || die "keystone-manage db_sync failed (see $manage_log)"
  wait "$fernet" || die "keystone-manage fernet_setup failed (see $manage_log)"
  wait "$credential" || die "keystone-manage credential_setup failed (see $manage_log)"
  "${keystone_manage[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-username admin \
    --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
    --bootstrap-region-id RegionOne --bootstrap-public-url "http://$HOST:$KEYSTONE_PORT/v3" \
    --bootstrap-internal-url "http://$HOST:$KEYSTONE_PORT/v3" --bootstrap-admin-url "http://$HOST:$KEYSTONE_PORT/v3" \
    >>"$manage_log" 2>&1 || die "keystone-manage bootstrap failed (see $manage_log)"
  # WAL (kept by the file): without it a reader's open transaction blocks writers, and two
  # requests at once end in "database is locked" (HTTP 500 after 5 s).
  env -u PYTHONPATH -u PYTHONHOME "$PY" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' "$KS/keystone.db"
  rm -f "$STATE/provisioned"
  touch "$KS/bootstrapped"
}

write_swift_configs() {
  local user server port
  user=$(id -un)
  for server in account container object; do
    case $server in account) port=$ACCOUNT_PORT ;; container) port=$CONTAINER_PORT ;; object) port=$OBJECT_PORT ;; esac
    cat >"$SW/$server-server.conf" <<EOF
# Written by tests/peers/openstack_peers.sh: one process (workers = 0) on loopback.
[DEFAULT]
bind_ip = $HOST
bind_port = $port
workers = 0
user = $user
swift_dir = $SW
devices = $STATE/srv/node
mount_check = false
recon_cache_path = $STATE/cache
log_name = $server-server
log_level = INFO
# A unix datagram socket read by the peers' own log sink: no syslog daemon, no UDP.
log_address = $RUN/log.sock

[pipeline:main]
pipeline = healthcheck $server-server

[app:$server-server]
use = egg:swift#$server

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done
  env -u PYTHONPATH -u PYTHONHOME "$PY" "$LIB/peers_helper.py" rings "$SW" \
    "account:$ACCOUNT_PORT" "container:$CONTAINER_PORT" "object:$OBJECT_PORT" || die "could not build the rings"

  cat >"$SW/proxy-server.conf" <<EOF
# Written by tests/peers/openstack_peers.sh: Keystone auth only (authtoken + keystoneauth),
# accounts AUTH_<project id>, created on first use.
[DEFAULT]
bind_ip = $HOST
bind_port = $PROXY_PORT
workers = 0
user = $user
swift_dir = $SW
log_name = proxy-server
log_level = INFO
log_address = $RUN/log.sock

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk authtoken keystoneauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = http://$HOST:$KEYSTONE_PORT/v3
auth_url = http://$HOST:$KEYSTONE_PORT/v3
auth_type = password
interface = public
project_domain_id = default
user_domain_id = default
project_name = service
username = swift
password = $SWIFT_SERVICE_PASSWORD
delay_auth_decision = True
cache = swift.cache
include_service_catalog = False
service_token_roles_required = True

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member
reseller_admin_role = ResellerAdmin

[filter:cache]
use = egg:swift#memcache
memcache_servers = $HOST:$MEMCACHED_PORT

[filter:proxy-logging]
# Swift's proxy_logging, with its access log sent to log_address (see $LIB/peers_access_log.py)
paste.filter_factory = peers_access_log:filter_factory

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
EOF
}

write_keystone_configs() {
  cat >"$KS/keystone.conf" <<EOF
# Written by tests/peers/openstack_peers.sh
[DEFAULT]
log_file = $LOGS/keystone.log
[database]
connection = sqlite:///$KS/keystone.db
[token]
provider = fernet
expiration = 86400
[fernet_tokens]
key_repository = $KS/fernet-keys
[fernet_receipts]
key_repository = $KS/fernet-keys
[credential]
key_repository = $KS/credential-keys
[identity]
# bcrypt cost 4 instead of 12: a password or application-credential check takes ~5 ms, not ~250 ms
password_hash_rounds = 4
[cache]
# in-process cache: without it every authenticated request costs hundreds of SQL queries
enabled = true
backend = oslo_cache.dict
expiration_time = 600
EOF
  cat >"$KS/uwsgi.ini" <<EOF
# Written by tests/peers/openstack_peers.sh
[uwsgi]
plugins-dir = /usr/lib/uwsgi/plugins
plugins = python3
# HTTP/1.1 with keep-alive, as behind a real web server
http11-socket = $HOST:$KEYSTONE_PORT
wsgi-file = /usr/bin/keystone-wsgi-public
env = OS_KEYSTONE_CONFIG_DIR=$KS
master = true
processes = 1
threads = 16
enable-threads = true
lazy-apps = true
need-app = true
die-on-term = true
no-orphans = true
buffer-size = 65535
EOF
}

write_helpers() {
  cat >"$LIB/peers_access_log.py" <<'EOF'
"""Swift's proxy-logging middleware with its access log sent to `log_address`.

Written by tests/peers/openstack_peers.sh. Swift 2.30's proxy_logging passes only the facility,
level, name, UDP and statsd keys to its access logger, never log_address: its access log would go
to /dev/log or, where that is missing, over UDP to localhost:514 from a socket bound to 0.0.0.0.
"""
from swift.common.middleware import proxy_logging
from swift.common.utils import get_logger


def filter_factory(global_conf, **local_conf):
    proxy_logging.filter_factory(global_conf, **local_conf)  # registers the sensitive headers
    conf = dict(global_conf, **local_conf)
    logger = get_logger({"log_address": conf["log_address"], "log_name": "proxy-access"},
                        log_route="proxy-access", statsd_tail_prefix="proxy-server")
    return lambda app: proxy_logging.ProxyLoggingMiddleware(app, conf, logger=logger)
EOF
  cat >"$LIB/peers_helper.py" <<'EOF'
"""Helper of tests/peers/openstack_peers.sh, which writes it into the state directory.

prepare PORTS_FILE DEVICE_DIR   keep or choose the ports; check the device's user xattrs
rings SWIFT_DIR NAME:PORT...     (re)build a 1-replica ring per server whose port changed
logsink SOCKET FILE              read syslog datagrams from SOCKET, append them to FILE
wait SECONDS NAME:PID... -- URL...   until every URL answers 200 (fails when a PID exits)
provision ENV_FILE               users, projects, roles, catalog, app credential; write ENV_FILE
smoke ENV_FILE                   tokens, container PUT, object PUT with If-None-Match: *
"""
import json
import os
import random
import signal
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HOST = "127.0.0.1"
PORT_NAMES = ("PROXY_PORT", "ACCOUNT_PORT", "CONTAINER_PORT", "OBJECT_PORT", "KEYSTONE_PORT", "MEMCACHED_PORT")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an HTTP proxy


def port_free(port):
    # No SO_REUSEPORT here: eventlet sets it, and would silently share a port with another
    # SO_REUSEPORT listener; this bind fails for any listener on the port, wildcard or not.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
            probe.listen(1)
        except OSError:
            return False
    return True


def read_env(path):
    values = {}
    with open(path) as env_file:
        for line in env_file:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key] = value
    return values


def write_atomically(path, text):
    with open(path + ".tmp", "w") as out:
        out.write(text)
    os.replace(path + ".tmp", path)


def prepare(ports_file, device):
    current = {}
    if os.path.exists(ports_file):
        current = {k: int(v) for k, v in read_env(ports_file).items() if k in PORT_NAMES and v.isdigit()}
    if (len(current) == len(PORT_NAMES) and len(set(current.values())) == len(PORT_NAMES)
            and all(port_free(p) for p in current.values())):
        outcome = "kept"
    else:
        rng, chosen = random.SystemRandom(), []
        while len(chosen) < len(PORT_NAMES):
            port = rng.randrange(20000, 32768)
            if port not in chosen and port_free(port):
                chosen.append(port)
        current = dict(zip(PORT_NAMES, chosen))
        write_atomically(ports_file, "".join(f"{k}={v}\n" for k, v in current.items()))
        outcome = "chosen now"
    probe = os.path.join(device, ".xattr-probe")
    try:
        open(probe, "w").close()
        os.setxattr(probe, "user.peers", b"1")
    except OSError as error:
        sys.exit(f"{device}: no user xattrs ({error}); Swift's object server needs them: "
                 "set UNSHELVER_PEERS_STATE to a directory on ext4 or xfs")
    finally:
        if os.path.exists(probe):
            os.unlink(probe)
    print(outcome)


def rings(swift_dir, *specs):
    from swift.common.ring import RingBuilder
    for spec in specs:
        name, port = spec.split(":")
        stamp_path = os.path.join(swift_dir, name + ".stamp")
        stamp = f"{HOST}:{port}/d1"
        ring_path = os.path.join(swift_dir, name + ".ring.gz")
        if os.path.exists(ring_path) and os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
            continue
        # 2^8 partitions, 1 replica, min_part_hours 0, one device: `swift-ring-builder create 8 1 0`,
        # `add r1z1-127.0.0.1:PORT/d1 1`, `rebalance`, in one process instead of nine.
        builder = RingBuilder(8, 1, 0)
        builder.add_dev({"region": 1, "zone": 1, "ip": HOST, "port": int(port), "device": "d1", "weight": 1.0})
        builder.rebalance()
        builder.save(os.path.join(swift_dir, name + ".builder"))
        builder.get_ring().save(ring_path)
        write_atomically(stamp_path, stamp)


def logsink(socket_path, out_path):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sink.bind(socket_path)
    with open(out_path, "ab", buffering=0) as out:
        while True:
            data = sink.recv(262144).rstrip(b"\x00\n")
            if data.startswith(b"<") and b">" in data[:5]:
                data = data[data.index(b">") + 1:]  # the syslog priority
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            out.write(f"{stamp}Z ".encode() + data + b"\n")


def wait(seconds, *args):
    split = args.index("--")
    pids, pending = args[:split], list(args[split + 1:])
    deadline = time.monotonic() + float(seconds)
    while pending:
        for entry in pids:
            name, pid = entry.split(":")
            if not os.path.exists(f"/proc/{pid}/cmdline") or not open(f"/proc/{pid}/cmdline", "rb").read():
                sys.exit(f"{name} (pid {pid}) exited during start")
        for url in list(pending):
            try:
                with OPENER.open(url, timeout=2) as response:
                    if response.status == 200:
                        pending.remove(url)
            except (OSError, urllib.error.URLError):
                pass
        if pending:
            if time.monotonic() > deadline:
                sys.exit("no answer within %s s from %s" % (seconds, " ".join(pending)))
            time.sleep(0.05)


def call(base, method, path, token=None, body=None, ok=(200, 201, 202, 204), headers=None):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    request = urllib.request.Request(base + path, data=data, method=method)
    if isinstance(body, (dict, list)):
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("X-Auth-Token", token)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with OPENER.open(request, timeout=30) as response:
            status, answer_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, error.headers, error.read()
    if status not in ok:
        raise SystemExit(f"{method} {base}{path} -> {status} {raw[:300]!r}")
    is_json = raw and answer_headers.get("Content-Type", "").startswith("application/json")
    return status, answer_headers, json.loads(raw) if is_json else raw


def password_token(ks, user, password, project):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
    _, headers, answer = call(ks, "POST", "/auth/tokens", body=body, ok=(201,))
    return headers["X-Subject-Token"], answer["token"]


def app_cred_token(ks, cred_id, secret):
    body = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred_id, "secret": secret}}}}
    _, headers, answer = call(ks, "POST", "/auth/tokens", body=body, ok=(201,))
    return headers["X-Subject-Token"], answer["token"]


def provision(env_path):
    e = os.environ
    ks, q = e["KS_URL"], urllib.parse.quote
    admin, _ = password_token(ks, "admin", e["ADMIN_PASSWORD"], "admin")

    def find(collection, query):
        _, _, answer = call(ks, "GET", f"/{collection}?{query}", admin)
        return answer[collection][0] if answer[collection] else None

    def ensure(collection, kind, query, body):
        found = find(collection, query)
        if not found:
            _, _, answer = call(ks, "POST", "/" + collection, admin, {kind: body})
            found = answer[kind]
        return found["id"]

    def ensure_user(name, password, project_id):
        user = find("users", "name=" + q(name))
        if not user:
            _, _, answer = call(ks, "POST", "/users", admin, {"user": {
                "name": name, "password": password, "domain_id": "default", "default_project_id": project_id}})
            return answer["user"]["id"]
        # The password is reset only when it no longer works: a change revokes the user's tokens.
        status, _, _ = call(ks, "POST", "/auth/tokens", body={"auth": {"identity": {"methods": ["password"],
                            "password": {"user": {"id": user["id"], "password": password}}}}}, ok=(201, 401))
        if status != 201:
            call(ks, "PATCH", "/users/" + user["id"], admin, {"user": {"password": password}})
            time.sleep(1.1)  # revocations have a one-second resolution
        return user["id"]

    service_project = ensure("projects", "project", "name=service", {"name": "service", "domain_id": "default"})
    demo_project = ensure("projects", "project", "name=demo", {"name": "demo", "domain_id": "default"})
    admin_role = ensure("roles", "role", "name=admin", {"name": "admin"})
    member_role = ensure("roles", "role", "name=member", {"name": "member"})
    ensure("roles", "role", "name=ResellerAdmin", {"name": "ResellerAdmin"})
    swift_user = ensure_user("swift", e["SWIFT_SERVICE_PASSWORD"], service_project)
    demo_user = ensure_user("demo", e["DEMO_PASSWORD"], demo_project)
    call(ks, "PUT", f"/projects/{service_project}/users/{swift_user}/roles/{admin_role}", admin)
    call(ks, "PUT", f"/projects/{demo_project}/users/{demo_user}/roles/{member_role}", admin)

    swift_endpoint = e["SWIFT_URL"] + "/v1/AUTH_%(project_id)s"
    for service_type, name, url in (("identity", "keystone", ks), ("object-store", "swift", swift_endpoint)):
        service = ensure("services", "service", "type=" + q(service_type),
                         {"type": service_type, "name": name, "enabled": True})
        for interface in ("public", "internal", "admin"):
            _, _, answer = call(ks, "GET", f"/endpoints?service_id={service}&interface={interface}", admin)
            endpoints = answer["endpoints"]
            if not endpoints:
                call(ks, "POST", "/endpoints", admin, {"endpoint": {
                    "service_id": service, "interface": interface, "url": url, "region_id": "RegionOne"}})
            elif endpoints[0]["url"] != url:  # the ports changed since the last start
                call(ks, "PATCH", "/endpoints/" + endpoints[0]["id"], admin, {"endpoint": {"url": url}})

    # The application credential belongs to demo, on project demo, with a fixed secret. Only the
    # user can create one for themselves, with a token scoped to the project.
    demo, _ = password_token(ks, "demo", e["DEMO_PASSWORD"], "demo")
    path = f"/users/{demo_user}/application_credentials"
    _, _, answer = call(ks, "GET", f"{path}?name={q(e['APP_CRED_NAME'])}", demo)
    credential = answer["application_credentials"][0] if answer["application_credentials"] else None
    if credential:
        status, _, _ = call(ks, "POST", "/auth/tokens", body={"auth": {"identity": {
            "methods": ["application_credential"], "application_credential": {
                "id": credential["id"], "secret": e["APP_CRED_SECRET"]}}}}, ok=(201, 401, 404))
        if status != 201:
            call(ks, "DELETE", f"{path}/{credential['id']}", demo)
            credential = None
    if not credential:
        _, _, answer = call(ks, "POST", path, demo, {"application_credential": {
            "name": e["APP_CRED_NAME"], "secret": e["APP_CRED_SECRET"],
            "description": "tests/peers/openstack_peers.sh"}})
        credential = answer["application_credential"]

    values = {
        "UNSHELVER_PEERS_STATE": e["STATE"],
        "OS_AUTH_URL": ks, "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne",
        "OS_INTERFACE": "public", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_USERNAME": "demo", "OS_PASSWORD": e["DEMO_PASSWORD"], "OS_PROJECT_NAME": "demo",
        "OS_USER_ID": demo_user, "OS_PROJECT_ID": demo_project,
        "OS_APP_CRED_ID": credential["id"], "OS_APP_CRED_NAME": e["APP_CRED_NAME"],
        "OS_APP_CRED_SECRET": e["APP_CRED_SECRET"],
        "OS_ADMIN_USERNAME": "admin", "OS_ADMIN_PASSWORD": e["ADMIN_PASSWORD"], "OS_ADMIN_PROJECT_NAME": "admin",
        "SWIFT_URL": e["SWIFT_URL"],
        "SWIFT_ACCOUNT_URL": swift_endpoint.replace("%(project_id)s", demo_project),
    }
    write_atomically(env_path, "# tests/peers/openstack_peers.sh: real Keystone v3 and Swift on 127.0.0.1\n"
                     + "".join(f"{k}={v}\n" for k, v in values.items()))


def smoke(env_path):
    env = read_env(env_path)
    ks = env["OS_AUTH_URL"]
    _, token = password_token(ks, env["OS_USERNAME"], env["OS_PASSWORD"], env["OS_PROJECT_NAME"])
    urls = [ep["url"] for entry in token["catalog"] if entry["type"] == "object-store"
            for ep in entry["endpoints"] if ep["interface"] == "public"]
    if urls != [env["SWIFT_ACCOUNT_URL"]]:
        sys.exit(f"catalog object-store {urls} != {env['SWIFT_ACCOUNT_URL']}")
    app_token, _ = app_cred_token(ks, env["OS_APP_CRED_ID"], env["OS_APP_CRED_SECRET"])
    account = env["SWIFT_ACCOUNT_URL"]
    call(account, "PUT", "/peers-smoke", app_token, ok=(201, 202))
    call(account, "PUT", "/peers-smoke/ping", app_token, b"{}", ok=(201, 412),
         headers={"Content-Type": "application/json", "If-None-Match": "*"})


if __name__ == "__main__":
    command, arguments = sys.argv[1], sys.argv[2:]
    {"prepare": prepare, "rings": rings, "logsink": logsink, "wait": wait,
     "provision": provision, "smoke": smoke}[command](*arguments)
EOF
}

case "${1:-}" in
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 start | stop [--purge] | status | env" >&2; exit 2 ;;
esac
