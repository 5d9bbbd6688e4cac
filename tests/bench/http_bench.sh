#!/usr/bin/env bash
# Benchmark (not a test): Unshelver serving GET /api/status and the launcher page, beside nginx
# serving the very same bytes, in the same run, with one worker each and the same wrk load.
# Prints req/s for both, the ratio, and Unshelver's resident memory (VmRSS, VmHWM).
#
#   tests/bench/http_bench.sh [BINARY]    (scripts/bench builds and runs it)
#
# Targets from the foundation issue: >= 1.0x nginx; RSS <= 10 MB. Nothing here fails on timing.
set -euo pipefail
binary="${1:-build/unshelver}"
duration="${BENCH_DURATION:-5}"
connections="${BENCH_CONNECTIONS:-32}"
rounds="${BENCH_ROUNDS:-3}"
work="$(mktemp -d /tmp/unshelver-bench.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
unshelver_port="$(free_port)"
nginx_port="$(free_port)"

cat > "$work/config.yaml" <<YAML
app:
  title: Benchmark
listen: 127.0.0.1:$unshelver_port
state_dir: $work/state
log_level: warn
buttons:
  - id: gpu
    label: GPU chat
    description: The benchmark's simulated backend.
    provider: sim
    public_base_url: http://chat.localhost/
YAML
"$binary" run --config "$work/config.yaml" 2>"$work/unshelver.log" &
unshelver_pid=$!
pids+=("$unshelver_pid")
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$unshelver_port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
sleep 0.5  # the first observation of the simulated cloud settles the state

# nginx serves exactly the bytes that Unshelver serves.
mkdir -p "$work/nginx/html/api" "$work/nginx/tmp"
curl -fsS "http://127.0.0.1:$unshelver_port/api/status" > "$work/nginx/html/api/status"
curl -fsS "http://127.0.0.1:$unshelver_port/" > "$work/nginx/html/index.html"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp; fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/nginx/html;
    location = /api/status { default_type application/json; }
    location = / { default_type text/html; try_files /index.html =404; }
  }
}
NGINX
# mktemp -d makes a directory only its owner may enter; nginx's worker drops root's rights (to
# nobody or www-data) and would answer 403.
chmod 755 "$work" "$work/nginx" "$work/nginx/html" "$work/nginx/html/api"
chmod 644 "$work/nginx/html/api/status" "$work/nginx/html/index.html"
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$nginx_port/api/status" >/dev/null 2>&1 && break; sleep 0.05; done
# Measure only servers that answer 200 with the whole body: a fast 403 or a cut body is no figure.
for path_file in "/api/status:api/status" "/:index.html"; do
  path="${path_file%%:*}"
  expected="$(stat -c %s "$work/nginx/html/${path_file#*:}")"
  for port in "$unshelver_port" "$nginx_port"; do
    got="$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$port$path")"
    if [ "$got" != "200 $expected" ]; then
      echo "http_bench: 127.0.0.1:$port$path answered '$got' (status, bytes), expected '200 $expected'" >&2
      exit 1
    fi
  done
done

requests_per_second() {
  wrk -t1 -c"$connections" -d"${duration}s" "$1" | awk '/Requests\/sec/ {print $2}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-14s %14s %14s %8s\n' "path" "unshelver r/s" "nginx r/s" "ratio"
for path in /api/status /; do
  ours=(); theirs=()
  # Alternate the two servers so that background load affects both alike; report medians.
  for _ in $(seq "$rounds"); do
    ours+=("$(requests_per_second "http://127.0.0.1:$unshelver_port$path")")
    theirs+=("$(requests_per_second "http://127.0.0.1:$nginx_port$path")")
  done
  a="$(printf '%s\n' "${ours[@]}" | median)"
  b="$(printf '%s\n' "${theirs[@]}" | median)"
  printf '%-14s %14.0f %14.0f %7.2fx\n' "$path" "$a" "$b" "$(echo "$a $b" | awk '{print $1/$2}')"
done
bytes_status="$(stat -c %s "$work/nginx/html/api/status")"
bytes_page="$(stat -c %s "$work/nginx/html/index.html")"
echo "bodies: /api/status $bytes_status bytes, / $bytes_page bytes; wrk -t1 -c$connections -d${duration}s, median of $rounds rounds"
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f MB", kb / 1024 }'; }
rss_kb="$(awk '/^VmRSS/ {print $2}' /proc/$unshelver_pid/status)"
hwm_kb="$(awk '/^VmHWM/ {print $2}' /proc/$unshelver_pid/status)"
pss_kb="$(awk '/^Pss:/ {print $2}' /proc/$unshelver_pid/smaps_rollup)"
private_kb="$(awk '/^Private_(Clean|Dirty):/ {sum += $2} END {print sum}' /proc/$unshelver_pid/smaps_rollup)"
shared_kb="$(awk '/^Shared_(Clean|Dirty):/ {sum += $2} END {print sum}' /proc/$unshelver_pid/smaps_rollup)"
echo "unshelver memory after the load: VmRSS $(mb "$rss_kb") (peak $(mb "$hwm_kb"); target <= 10 MB)"
echo "  of which private $(mb "$private_kb") and shared library pages $(mb "$shared_kb"); PSS $(mb "$pss_kb")"
