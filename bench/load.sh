#!/usr/bin/env bash
# Load benchmark on 127.0.0.1: every target measured in one run, with the
# same client settings, so that the ratios compare. Servers are pinned to
# CPU 0, the load generators to CPU 1.
#
#   proxy   GET /…/items/42?expand=owner&limit=10 with 11 headers, to a fixed
#           upstream (nginx `return 200`): directly; through nginx
#           `proxy_pass`, HAProxy, Caddy `reverse_proxy` (upstream
#           keep-alive everywhere); through a bare hyper proxy
#           (bench/floor: the floor of Rust here, with a current-thread
#           runtime per core and with one multi-thread runtime, the two
#           worker models); through Upshift's native
#           lane on a plain route (one version, no auth) and on the full
#           chain (route + API key + rate limit + 90/10 split + per-version
#           counters), with and without the access log (to a file), and
#           with the access log and OTLP span export (every request
#           sampled, to a collector that accepts and discards); and
#           through the component lane, for reference.
#           Saturated (N connections), unloaded (1 connection: the latency a
#           request adds over direct), and at a constant rate of half of
#           nginx's maximum (oha -q), where the added p99 is what counts.
#   apply   last: the full chain at a constant rate while a 1 MB document
#           (10,000 routes, 1,000 consumers) is applied: request latency
#           across it.
#   ai      an OpenAI chat request (~2 KB) to an Anthropic-format fake
#           provider (nginx answering a fixed ~1 KB Messages answer, or a
#           fixed event stream), whole and streamed: through nginx
#           `proxy_pass` (the same POST, untranslated), Upshift and LiteLLM's
#           proxy (one worker), if installed.
#   memory  the Upshift host's peak RSS under the proxy and the AI load,
#           and its cold start with compiled components cached.
#
# Needs: nginx haproxy caddy wrk curl taskset python3 (Debian), oha
# (cargo install oha), litellm[proxy] (pip, optional), and a release build:
# bash tests/run.sh, or cargo build --release --workspace plus the
# components (cargo run --release -- build).
# Usage: bash bench/load.sh [seconds per run, default 10] [connections, default 32]
set -euo pipefail
# The admin token of the hosts started here, and of the CLI talking to them.
export SPIN_VARIABLE_ADMIN_TOKEN=bench-admin-token UPSHIFT_ADMIN_TOKEN=bench-admin-token
cd "$(dirname "$0")/.."

duration=${1:-10}
connections=${2:-32}
port_upstream=18081
port_nginx=18082
port_haproxy=18083
port_caddy=18084
port_floor=18085
port_upshift=18086
port_component=18087
port_fake_json=18088
port_fake_sse=18089
port_nginx_ai=18090
port_litellm=18091
port_floor_mt=18092
port_logged=18093
port_collector=18094
port_traced=18095
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in nginx haproxy caddy wrk oha curl taskset python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see the header of $0)" >&2; exit 1; }
done
bin=target/release/upshift
floor=target/release/upshift-floor
[ -x "$bin" ] && [ -x "$floor" ] || { echo "build first: cargo build --release --workspace" >&2; exit 1; }

# The fake provider's answers.
python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
text = "Blue-green and canary releases let a team move traffic to a new version a little at a time. " * 9
answer = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench",
          "content": [{"type": "text", "text": text.strip()}], "stop_reason": "end_turn",
          "stop_sequence": None, "usage": {"input_tokens": 512, "output_tokens": 200}}
open(f"{work}/answer.json", "w").write(json.dumps(answer))
words = text.split(" ")
events = [("message_start", {"type": "message_start", "message": {**answer, "content": [], "stop_reason": None,
                                                                     "usage": {"input_tokens": 512, "output_tokens": 1}}}),
          ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})]
for i in range(0, len(words), 8):
    events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": " ".join(words[i:i + 8]) + " "}}))
events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
           ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                              "usage": {"output_tokens": 200}}),
           ("message_stop", {"type": "message_stop"})]
open(f"{work}/stream.sse", "w").write("".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events))
question = "Explain, step by step, how a canary rollout with automatic rollback works. " * 24
for name, model, stream in [("chat", "claude-bench", False), ("chat-stream", "claude-stream", True)]:
    body = {"model": model, "stream": stream, "max_tokens": 400, "temperature": 0.2,
            "messages": [{"role": "system", "content": "You are a concise assistant."},
                         {"role": "user", "content": question.strip()}]}
    open(f"{work}/{name}.json", "w").write(json.dumps(body))
# The 1 MB document: 10,000 routes, 1,000 consumers, and the bench routes.
lines = ["services:",
         "  - { name: fixed, versions: [{ name: v1, weight: 90, targets: [{ url: 'http://127.0.0.1:18081' }] },"
         " { name: v2, weight: 10, targets: [{ url: 'http://127.0.0.1:18081' }] }] }",
         "  - { name: single, versions: [{ name: v1, targets: [{ url: 'http://127.0.0.1:18081' }] }] }"]
for i in range(1000):
    lines.append(f"  - {{ name: svc{i}, versions: [{{ name: v1, targets: [{{ url: 'http://10.0.{i // 250}.{i % 250}:8080' }}] }}] }}")
lines.append("routes:")
lines.append("  - { name: bench, paths: [/bench], service: fixed, auth: { api_key: { header: x-api-key } },"
             " rate_limit: { requests: 100000000, per: 1m, by: consumer } }")
lines.append("  - { name: plain, paths: [/plain], service: single }")
for i in range(10000):
    lines.append(f"  - {{ name: r{i}, paths: [/api/v1/resource{i}], methods: [GET, POST], service: svc{i % 1000} }}")
lines.append("consumers:")
lines.append("  - { name: bench, api_keys: [bench-key-0001] }")
for i in range(1000):
    lines.append(f"  - {{ name: c{i}, api_keys: [key-{i:08}-secret-0123456789] }}")
open(f"{work}/big.yaml", "w").write("\n".join(lines) + "\n")
EOF

# nginx: the fixed upstream, proxy_pass to it, the fake provider (whole and
# streamed) and proxy_pass of the AI request to the fake.
mkdir -p "$work/nginx"
answer=$(cat "$work/answer.json")
stream=$(cat "$work/stream.sse")
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream fixed { server 127.0.0.1:$port_upstream; keepalive 64; }
  upstream fake { server 127.0.0.1:$port_fake_json; keepalive 64; }
  server {
    listen 127.0.0.1:$port_upstream;
    location / { default_type application/json; return 200 '{"ok":true}'; }
  }
  server {
    listen 127.0.0.1:$port_nginx;
    location / { proxy_pass http://fixed; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$port_fake_json;
    location / { default_type application/json; return 200 '$answer'; }
  }
  server {
    listen 127.0.0.1:$port_fake_sse;
    location / { default_type text/event-stream; return 200 '$stream'; }
  }
  server {
    listen 127.0.0.1:$port_nginx_ai;
    location / { proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
taskset -c 0 nginx -c "$work/nginx.conf" -p "$work"

cat > "$work/haproxy.cfg" <<EOF
global
  maxconn 4096
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend bench
  bind 127.0.0.1:$port_haproxy
  default_backend fixed
backend fixed
  server up 127.0.0.1:$port_upstream
EOF
taskset -c 0 haproxy -q -f "$work/haproxy.cfg" &
pids+=($!)

cat > "$work/Caddyfile" <<EOF
{
  admin off
  auto_https off
}
http://127.0.0.1:$port_caddy {
  reverse_proxy 127.0.0.1:$port_upstream
}
EOF
GOMAXPROCS=1 taskset -c 0 caddy run --config "$work/Caddyfile" --adapter caddyfile > "$work/caddy.log" 2>&1 &
pids+=($!)

taskset -c 0 "$floor" "127.0.0.1:$port_floor" "127.0.0.1:$port_upstream" &
pids+=($!)
taskset -c 0 "$floor" "127.0.0.1:$port_floor_mt" "127.0.0.1:$port_upstream" multi-thread &
pids+=($!)

wait_ok() {
  for _ in $(seq 1 5000); do
    curl -fs -o /dev/null "$@" && return 0
    sleep 0.002
  done
  echo "no answer from $*:" >&2; cat "$work"/*.log >&2; exit 1
}

# Upshift, native lane, on a fresh store with the bench routes.
start_upshift() {
  local port=$1; shift
  SPIN_VARIABLE_ANTHROPIC_API_KEY=sk-ant-bench taskset -c 0 "$bin" up \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 100))" \
    --state-dir "$work/state-$port" "$@" 2> "$work/upshift-$port.log" &
  pids+=($!)
  upshift_pid=$!
}
stop_upshift() { kill "$upshift_pid"; wait "$upshift_pid" 2>/dev/null || true; }
cat > "$work/bench.yaml" <<EOF
services:
  - name: fixed
    versions:
      - { name: v1, weight: 90, targets: [{ url: "http://127.0.0.1:$port_upstream" }] }
      - { name: v2, weight: 10, targets: [{ url: "http://127.0.0.1:$port_upstream" }] }
  - { name: single, versions: [{ name: v1, targets: [{ url: "http://127.0.0.1:$port_upstream" }] }] }
routes:
  - { name: bench, paths: [/bench], service: fixed, auth: { api_key: { header: x-api-key } },
      rate_limit: { requests: 100000000, per: 1m, by: consumer } }
  - { name: plain, paths: [/plain], service: single }
  - { name: ai, kind: ai, paths: [/v1], timeout_ms: 60000 }
consumers:
  - { name: bench, api_keys: [bench-key-0001] }
ai:
  providers:
    - { name: fake, kind: anthropic, base_url: "http://127.0.0.1:$port_fake_json", api_key_variable: anthropic_api_key }
    - { name: fake-sse, kind: anthropic, base_url: "http://127.0.0.1:$port_fake_sse", api_key_variable: anthropic_api_key }
  models:
    - { alias: claude-bench, provider: fake, model: claude-bench }
    - { alias: claude-stream, provider: fake-sse, model: claude-bench }
EOF
configure() {
  local port=$1
  wait_ok "http://127.0.0.1:$((port + 100))/admin/health"
  "$bin" apply -f "$work/bench.yaml" --admin "http://127.0.0.1:$((port + 100))" > /dev/null
}
start_upshift "$port_component" --lane component
component_pid=$upshift_pid
configure "$port_component"
start_upshift "$port_logged" --access-log "$work/access.log"
configure "$port_logged"
# An OTLP/HTTP collector that takes every export and keeps nothing, on the
# load generators' CPU.
taskset -c 1 python3 - "$port_collector" > "$work/collector.log" 2>&1 <<'EOF' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Collector(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Collector).serve_forever()
EOF
pids+=($!)
start_upshift "$port_traced" --access-log "$work/access-traced.log" \
  --otlp-endpoint "http://127.0.0.1:$port_collector"
configure "$port_traced"
start_upshift "$port_upshift"
configure "$port_upshift"

headers=(
  -H 'accept: application/json' -H 'user-agent: bench/1.0' -H 'x-api-key: bench-key-0001'
  -H 'accept-encoding: gzip, deflate' -H 'accept-language: en-US,en;q=0.9'
  -H 'cache-control: no-cache' -H 'x-request-source: load-bench' -H 'x-tenant: acme'
  -H 'cookie: session=3f6b2a9c; theme=dark'
  -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
)
path="/items/42?expand=owner&limit=10"
wait_ok "${headers[@]}" "http://127.0.0.1:$port_upshift/bench$path"
wait_ok "http://127.0.0.1:$port_caddy$path"

# Cold start with the compiled-code cache filled by the first start: spawn
# to first proxied 200. The restarted host then takes the load, so its peak
# RSS is that of serving.
stop_upshift
t0=$(date +%s%N)
start_upshift "$port_upshift"
wait_ok "${headers[@]}" "http://127.0.0.1:$port_upshift/bench$path"
cold_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
native_pid=$upshift_pid

# Its most resident memory so far, sampled every 50 ms from CPU 1: the
# kernel's VmHWM is not kept up to date when mimalloc gives pages back
# with madvise.
taskset -c 1 bash -c '
  peak=0
  while rss=$(awk "/VmRSS/ {print \$2}" "/proc/$1/status" 2>/dev/null) && [ -n "$rss" ]; do
    [ "$rss" -gt "$peak" ] && peak=$rss && echo "$peak" > "$2"
    sleep 0.05
  done' _ "$native_pid" "$work/rss-peak" &
pids+=($!)
peak_rss_kib() { cat "$work/rss-peak"; }

# wrk → "rps p50_ms p99_ms"
wrk_run() {
  local conns=$1 url=$2; shift 2
  taskset -c 1 wrk -t1 -c"$conns" -d"${duration}s" --latency "$@" "$url" > "$work/wrk.txt"
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec/ { rps = $2 }
    /Non-2xx/ { bad = $NF }
    END { if (bad) { print "non-2xx responses: " bad > "/dev/stderr"; exit 1 } printf "%.0f %.3f %.3f\n", rps, p50, p99 }
  ' "$work/wrk.txt"
}
# oha at a constant rate → "p50_ms p99_ms max_ms"
oha_run() {
  local rate=$1 url=$2; shift 2
  taskset -c 1 oha --no-tui -q "$rate" -z "${duration}s" -c "$connections" --output-format json "$@" "$url" > "$work/oha.json"
  python3 - "$work/oha.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
ok = r["statusCodeDistribution"]
bad = sum(n for code, n in ok.items() if not code.startswith("2"))
if bad: sys.exit(f"non-2xx responses: {ok}")
p = r["latencyPercentiles"]
print(f'{p["p50"] * 1000:.3f} {p["p99"] * 1000:.3f} {r["summary"]["slowest"] * 1000:.3f}')
EOF
}

# Proxy targets: name, URL.
targets=(
  "upstream direct (nginx return 200)|http://127.0.0.1:$port_upstream$path"
  "nginx proxy_pass|http://127.0.0.1:$port_nginx$path"
  "HAProxy|http://127.0.0.1:$port_haproxy$path"
  "Caddy reverse_proxy|http://127.0.0.1:$port_caddy$path"
  "bare hyper proxy (bench/floor)|http://127.0.0.1:$port_floor$path"
  "bare hyper proxy, multi-thread runtime|http://127.0.0.1:$port_floor_mt$path"
  "Upshift native, plain route|http://127.0.0.1:$port_upshift/plain$path"
  "Upshift native, full chain|http://127.0.0.1:$port_upshift/bench$path"
  "Upshift native, full chain, access log on|http://127.0.0.1:$port_logged/bench$path"
  "Upshift native, full chain, access log and tracing on|http://127.0.0.1:$port_traced/bench$path"
  "Upshift component lane, full chain|http://127.0.0.1:$port_component/bench$path"
)
declare -A rps p50 p99 u50 u99
for entry in "${targets[@]}"; do
  name=${entry%%|*}; url=${entry#*|}
  read -r "rps[$name]" "p50[$name]" "p99[$name]" < <(wrk_run "$connections" "$url" "${headers[@]}")
  read -r _ "u50[$name]" "u99[$name]" < <(wrk_run 1 "$url" "${headers[@]}")
done
rss_proxy_kib=$(peak_rss_kib)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
direct="upstream direct (nginx return 200)"
nginx_rps=${rps[nginx proxy_pass]}
floor_rps=${rps[bare hyper proxy (bench/floor)]}
half=$(( nginx_rps / 2 ))

# Constant rate: half of nginx's maximum.
declare -A c50 c99 cmax
for name in "$direct" "nginx proxy_pass" "bare hyper proxy (bench/floor)" "Upshift native, plain route" "Upshift native, full chain"; do
  for entry in "${targets[@]}"; do [ "${entry%%|*}" = "$name" ] && url=${entry#*|}; done
  read -r "c50[$name]" "c99[$name]" "cmax[$name]" < <(oha_run "$half" "$url" "${headers[@]}")
done


echo "wrk -t1 and oha, ${duration}s per run, servers on CPU 0, load on CPU 1 ($(nproc) cores, $(uname -m))."
echo "GET $path with $(( ${#headers[@]} / 2 )) headers (and Host). Saturated: $connections connections; unloaded: 1."
echo
echo "| target | req/s | × nginx proxy | × bare hyper | p50 ms | p99 ms | unloaded p50 ms | added | unloaded p99 ms | added |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for entry in "${targets[@]}"; do
  name=${entry%%|*}
  echo "| $name | ${rps[$name]} | $(ratio "${rps[$name]}" "$nginx_rps")× | $(ratio "${rps[$name]}" "$floor_rps")× | ${p50[$name]} | ${p99[$name]} | ${u50[$name]} | $(added "${u50[$name]}" "${u50[$direct]}") | ${u99[$name]} | $(added "${u99[$name]}" "${u99[$direct]}") |"
done
echo
echo "At a constant $half req/s (half of nginx proxy_pass's maximum), $connections connections:"
echo
echo "| target | p50 ms | p99 ms | added p99 ms | max ms |"
echo "|---|---:|---:|---:|---:|"
for name in "$direct" "nginx proxy_pass" "bare hyper proxy (bench/floor)" "Upshift native, plain route" "Upshift native, full chain"; do
  echo "| $name | ${c50[$name]} | ${c99[$name]} | $(added "${c99[$name]}" "${c99[$direct]}") | ${cmax[$name]} |"
done
echo

# AI: the same request to nginx (untranslated), Upshift and LiteLLM.
ai_lua() {
  cat > "$work/$1.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
local f = io.open("$work/$1.json", "r")
wrk.body = f:read("*a")
f:close()
EOF
}
ai_lua chat
ai_lua chat-stream
ai_targets=(
  "nginx proxy_pass (same POST, untranslated)|http://127.0.0.1:$port_nginx_ai/v1/chat/completions"
  "Upshift native|http://127.0.0.1:$port_upshift/v1/chat/completions"
)
if command -v litellm >/dev/null; then
  # LiteLLM refuses to start without a master key: the bench's bearer token.
  cat > "$work/litellm.yaml" <<EOF
general_settings: { master_key: sk-bench, dangerously_permit_weak_or_unset_master_key: true }
model_list:
  - model_name: claude-bench
    litellm_params: { model: anthropic/claude-bench, api_base: "http://127.0.0.1:$port_fake_json", api_key: sk-ant-bench }
  - model_name: claude-stream
    litellm_params: { model: anthropic/claude-bench, api_base: "http://127.0.0.1:$port_fake_sse", api_key: sk-ant-bench }
EOF
  taskset -c 0 litellm --config "$work/litellm.yaml" --port "$port_litellm" --num_workers 1 > "$work/litellm.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do
    curl -fs -o /dev/null "http://127.0.0.1:$port_litellm/health/liveliness" && break
    sleep 0.2
  done
  ai_targets+=("LiteLLM proxy, 1 worker|http://127.0.0.1:$port_litellm/v1/chat/completions")
fi
# Time to the first byte, unloaded: "p50_ms p99_ms" over 200 requests.
ttfb() {
  local url=$1 body=$2
  taskset -c 1 oha --no-tui -n 200 -c 1 -m POST -D "$body" -H 'content-type: application/json' \
    -H 'authorization: Bearer sk-bench' --output-format json "$url" > "$work/ttfb.json"
  python3 - "$work/ttfb.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))["firstBytePercentiles"]
print(f"{p['p50'] * 1000:.3f} {p['p99'] * 1000:.3f}")
EOF
}
echo
echo "AI: an OpenAI chat request of $(stat -c %s "$work/chat.json") bytes to an Anthropic-format fake provider (a $(stat -c %s "$work/answer.json")-byte answer; streamed: $(stat -c %s "$work/stream.sse") bytes in $(grep -c '^event:' "$work/stream.sse") events)."
echo
echo "| target | whole req/s | × nginx | streamed req/s | × nginx | first byte p50 ms | p99 ms | streamed first byte p50 ms | p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for entry in "${ai_targets[@]}"; do
  name=${entry%%|*}; url=${entry#*|}
  read -r whole _ _ < <(wrk_run "$connections" "$url" -s "$work/chat.lua")
  read -r streamed _ _ < <(wrk_run "$connections" "$url" -s "$work/chat-stream.lua")
  read -r f50 f99 < <(ttfb "$url" "$work/chat.json")
  read -r s50 s99 < <(ttfb "$url" "$work/chat-stream.json")
  [ -z "${ai_nginx:-}" ] && ai_nginx=$whole && ai_nginx_stream=$streamed
  echo "| $name | $whole | $(ratio "$whole" "$ai_nginx")× | $streamed | $(ratio "$streamed" "$ai_nginx_stream")× | $f50 | $f99 | $s50 | $s99 |"
done
read -r d50 d99 < <(ttfb "http://127.0.0.1:$port_fake_json/v1/messages" "$work/chat.json")
read -r e50 e99 < <(ttfb "http://127.0.0.1:$port_fake_sse/v1/messages" "$work/chat-stream.json")
echo "| the fake provider, direct | | | | | $d50 | $d99 | $e50 | $e99 |"
rss_all_kib=$(peak_rss_kib)

# Across an apply of the 1 MB document, at the same rate.
bench_url="http://127.0.0.1:$port_upshift/bench$path"
( sleep $(( duration / 3 )); "$bin" apply -f "$work/big.yaml" --admin "http://127.0.0.1:$((port_upshift + 100))" > "$work/apply.txt" ) &
apply_pid=$!
read -r a50 a99 amax < <(oha_run "$half" "$bench_url" "${headers[@]}")
wait "$apply_pid"
big_kib=$(( $(stat -c %s "$work/big.yaml") / 1024 ))
rss_apply_kib=$(peak_rss_kib)
echo
echo "Full chain at $half req/s while a ${big_kib} KiB document (10,000 routes, 1,000 consumers) is applied $(( duration / 3 )) s in: p50 ${a50} ms, p99 ${a99} ms, max ${amax} ms."

echo
echo "- Upshift (native lane) peak RSS: $((rss_proxy_kib / 1024)) MiB after the proxy load, $((rss_all_kib / 1024)) MiB after the AI load too, $((rss_apply_kib / 1024)) MiB after the apply of the 1 MB document"
echo "- Upshift cold start to the first proxied response (compiled components cached): ${cold_ms} ms"
