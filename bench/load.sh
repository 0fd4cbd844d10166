#!/usr/bin/env bash
# Load benchmark on 127.0.0.1: the same wrk settings against
#   1. a fixed upstream (nginx `return 200`) directly,
#   2. nginx `proxy_pass` to it,
#   3. a pass-through proxy component on the Upshift host (bench/passthrough:
#      the runtime's own HTTP cost, no gateway work),
#   4. Upshift with the full chain (route + API-key auth + rate limit +
#      weighted split), one request per instance (the default) and with
#      `--instance-concurrency 16`.
# Each is measured saturated (N connections) and unloaded (one connection:
# the latency a request gains). Servers are pinned to CPU 0 and wrk to
# CPU 1. Also reports the host's memory under load and its cold start
# (process start to first response, with precompiled components). Prints a
# Markdown table.
#
# Needs: nginx, wrk (Debian packages), a release build of the host and the
# components (bash tests/run.sh or `cargo run --release -- build`).
# Usage: bash bench/load.sh [seconds per run, default 10] [connections, default 32]
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-10}
connections=${2:-32}
upstream_port=18081
nginx_port=18082
upshift_port=18083
passthrough_port=18084
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in nginx wrk taskset curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx-light wrk)" >&2; exit 1; }
done
bin=target/release/upshift
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
cargo build --quiet --release --target wasm32-wasip2 -p upshift-bench-passthrough

# One nginx: the fixed upstream and the proxy in front of it.
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream fixed { server 127.0.0.1:$upstream_port; keepalive 64; }
  server {
    listen 127.0.0.1:$upstream_port;
    location / { default_type application/json; return 200 '{"ok":true}'; }
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://fixed;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
taskset -c 0 nginx -c "$work/nginx.conf" -p "$work"

# Upshift with a fresh store, then the full-chain config.
start_upshift() {
  taskset -c 0 "$bin" up --listen "127.0.0.1:$upshift_port" --state-dir "$work/state" "$@" \
    2> "$work/upshift.log" &
  pids+=($!)
  upshift_pid=$!
}
stop_upshift() {
  kill "$upshift_pid"; wait "$upshift_pid" 2>/dev/null || true
}
wait_ok() {
  for _ in $(seq 1 3000); do
    curl -fs -o /dev/null "$@" && return 0
    sleep 0.002
  done
  echo "no answer from $*:" >&2; cat "$work"/*.log >&2; exit 1
}
start_upshift
wait_ok "http://127.0.0.1:$upshift_port/admin/health"
cat > "$work/bench.yaml" <<EOF
services:
  - name: fixed
    versions:
      - { name: v1, weight: 90, targets: [{ url: "http://127.0.0.1:$upstream_port" }] }
      - { name: v2, weight: 10, targets: [{ url: "http://127.0.0.1:$upstream_port" }] }
routes:
  # The limit is counted on every request and never reached.
  - { name: bench, paths: [/bench], service: fixed, auth: { api_key: { header: x-api-key } },
      rate_limit: { requests: 100000000, per: 1m, by: consumer } }
consumers:
  - { name: bench, api_keys: [bench-key-0001] }
EOF
"$bin" apply -f "$work/bench.yaml" --admin "http://127.0.0.1:$upshift_port" > /dev/null
key=(-H 'x-api-key: bench-key-0001')
upshift_url="http://127.0.0.1:$upshift_port/bench"
wait_ok "${key[@]}" "$upshift_url"

# Cold start with the precompiled cache in place (the first start filled
# it): spawn to first proxied 200. The restarted process then takes the
# load, so its peak RSS is that of serving, not of compiling.
stop_upshift
t0=$(date +%s%N)
start_upshift
wait_ok "${key[@]}" "$upshift_url"
cold_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

# wrk → "rps p50_ms p99_ms"
measure() {
  local connections=$1 url=$2; shift 2
  taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" --latency "$@" "$url" > "$work/wrk.txt"
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec/ { rps = $2 }
    /Non-2xx/ { bad = $NF }
    END { if (bad) { print "non-2xx responses: " bad > "/dev/stderr"; exit 1 } printf "%.0f %.3f %.3f\n", rps, p50, p99 }
  ' "$work/wrk.txt"
}
# A saturated and an unloaded run of one URL: "rps p50 p99 rps p50 p99".
both() {
  local url=$1; shift
  echo "$(measure "$connections" "$url" "$@") $(measure 1 "$url" "$@")"
}

read -r up_rps up_p50 up_p99 up1_rps up1_p50 up1_p99 < <(both "$upshift_url" "${key[@]}")
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$upshift_pid/status")
stop_upshift
start_upshift --instance-concurrency 16
wait_ok "${key[@]}" "$upshift_url"
read -r shared_rps shared_p50 shared_p99 shared1_rps shared1_p50 shared1_p99 < <(both "$upshift_url" "${key[@]}")
shared_rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$upshift_pid/status")
stop_upshift

SPIN_VARIABLE_UPSTREAM="127.0.0.1:$upstream_port" taskset -c 0 "$bin" up \
  --manifest bench/passthrough/spin.toml --listen "127.0.0.1:$passthrough_port" \
  --state-dir "$work/passthrough" 2> "$work/passthrough.log" &
pids+=($!)
wait_ok "http://127.0.0.1:$passthrough_port/bench"
read -r pass_rps pass_p50 pass_p99 pass1_rps pass1_p50 pass1_p99 < <(both "http://127.0.0.1:$passthrough_port/bench")

read -r direct_rps direct_p50 direct_p99 direct1_rps direct1_p50 direct1_p99 < <(both "http://127.0.0.1:$upstream_port/bench")
read -r nginx_rps nginx_p50 nginx_p99 nginx1_rps nginx1_p50 nginx1_p99 < <(both "http://127.0.0.1:$nginx_port/bench")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# name, then the six numbers of `both`
row() {
  echo "| $1 | $2 | $(ratio "$2" "$nginx_rps")× | $3 | $4 | $6 | $(added "$6" "$direct1_p50") | $7 | $(added "$7" "$direct1_p99") |"
}
cat <<EOF
wrk -t1, ${duration}s per run, servers on CPU 0, wrk on CPU 1 ($(nproc) cores, $(uname -m)).
Saturated: $connections connections. Unloaded: 1 connection; "added" is over the upstream direct.

| target | req/s | vs nginx proxy | p50 ms | p99 ms | unloaded p50 ms | added | unloaded p99 ms | added |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
$(row "upstream direct (nginx return 200)" $direct_rps $direct_p50 $direct_p99 $direct1_rps $direct1_p50 $direct1_p99)
$(row "nginx proxy_pass" $nginx_rps $nginx_p50 $nginx_p99 $nginx1_rps $nginx1_p50 $nginx1_p99)
$(row "pass-through component on the Upshift host" $pass_rps $pass_p50 $pass_p99 $pass1_rps $pass1_p50 $pass1_p99)
$(row "Upshift full chain" $up_rps $up_p50 $up_p99 $up1_rps $up1_p50 $up1_p99)
$(row "Upshift full chain, --instance-concurrency 16" $shared_rps $shared_p50 $shared_p99 $shared1_rps $shared1_p50 $shared1_p99)

- Upshift peak RSS under load: $((rss_kib / 1024)) MiB ($((shared_rss_kib / 1024)) MiB with shared instances)
- Upshift cold start to first proxied response (precompiled components): ${cold_ms} ms
EOF
