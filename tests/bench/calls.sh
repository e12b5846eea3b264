#!/usr/bin/env bash
# Benchmark: nida driven by sipp on loopback and, when one is given, another
# SIP server under the same load, printed side by side.
#   1. For each count in CALLS: that many concurrent calls, each hearing the
#      server's welcome prompt for SECONDS and sending every packet back
#      (rtp_sink echo, like sipp's -rtp_echo: 50 packets/s each way). The
#      server's share of one core per call (CPU from /proc over the
#      window), its RSS per call, and what the receiver saw: the interval
#      between packets p50/p99, the deviation from 20 ms p99, sequence gaps.
#   2. A call-rate ramp of short calls (INVITE, 200, ACK, BYE): the highest
#      rate at which no call failed.
#   3. Overload at twice that rate for 5 s: calls refused with 503 and
#      Retry-After, calls that failed otherwise, calls still up 60 s later
#      (nida: its API; another server: the UDP sockets it holds beyond its
#      idle ones), RSS then.
# Usage: tests/bench/calls.sh [--calls "500 1000 2000 5000"] [--seconds 20]
#          [--rates "1000 2000 4000"] [--peer HOST:PORT --peer-pid PID]
#          [--peer-service EXTENSION]
#        tests/bench/calls.sh N SECONDS RATES   (one count, the older form)
# The peer must answer calls to EXTENSION (default 901) with an endless
# prompt in PCMU or PCMA and accept calls from 127.0.0.1 at any rate.
# NIDA_BIN and RTP_SINK run another build (to compare two versions).
# A run fails loudly when not every call comes up, when any is refused or
# fails for sipp, or when the receiver sees no stream for some call: then
# the figures would describe refusals, not calls.
set -euo pipefail
cd "$(dirname "$0")/../.."
CALLS="500 1000 2000 5000"
SECS=20
RATES="1000 2000 4000"
PEER=""
PEER_PID=""
PEER_SERVICE=901
if [ $# -ge 1 ] && [[ "$1" != --* ]]; then
  CALLS=$1
  SECS=${2:-$SECS}
  RATES=${3:-$RATES}
  shift $(( $# < 3 ? $# : 3 ))
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --calls) CALLS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --rates) RATES=$2; shift 2 ;;
    --peer) PEER=$2; shift 2 ;;
    --peer-pid) PEER_PID=$2; shift 2 ;;
    --peer-service) PEER_SERVICE=$2; shift 2 ;;
    *) echo "unknown argument: $1"; exit 2 ;;
  esac
done
if [ -n "$PEER" ] && ! [ -d "/proc/${PEER_PID:-none}" ]; then
  echo "--peer needs --peer-pid with the peer's running process"; exit 2
fi
command -v sipp >/dev/null || { echo "install sipp (Debian: sip-tester)"; exit 2; }
command -v bc >/dev/null || { echo "install bc"; exit 2; }
if [ -z "${NIDA_BIN:-}" ]; then
  cargo build --release -q -p nida --bin nida --example rtp_sink
fi
BIN=${NIDA_BIN:-target/release/nida}
SINK=${RTP_SINK:-target/release/examples/rtp_sink}
TOKEN=bench-admin-token-0123
WORK=$(mktemp -d)
# Thousands of calls hold two sockets each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# nida is stopped and waited for: the next run must not find this one
# still on its ports.
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT

NIDA_SIP=127.0.0.1:18060
HTTP=127.0.0.1:18061
cat > "$WORK/nida.toml" <<TOML
sip_addr = "$NIDA_SIP"
http_addr = "$HTTP"
rtp_ports = "20000-39999"
max_calls = 6000
call_seconds = 3600
rtp_timeout_seconds = 3600
admin_token = "$TOKEN"
data_dir = "$WORK/data"
# All calls come from 127.0.0.1: without this the per-source limits
# would refuse them past 50.
[protection]
trusted = ["127.0.0.0/8"]
TOML
RUST_LOG=warn $BIN --config "$WORK/nida.toml" > "$WORK/nida.out" 2> "$WORK/nida.err" &
NIDA=$!
# nida prints its listening line once its prompts are loaded: the idle
# RSS is read after it.
for _ in $(seq 1 300); do
  grep -q listening "$WORK/nida.out" 2>/dev/null && break
  kill -0 "$NIDA" 2>/dev/null || { echo "FAILED: nida did not start"; cat "$WORK/nida.err"; exit 1; }
  sleep 0.1
done
status() { curl -s -H "Authorization: Bearer $TOKEN" "http://$HTTP/api/status" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
udp_sockets() { # sockets a process holds (its RTP ports among them)
  find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l
}
# The calls sipp has up now, from its statistics file.
sipp_current() {
  awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "CurrentCall") c = i; next }
             { v = $c } END { print v + 0 }' "$1" 2>/dev/null || echo 0
}
# A figure NAME=VALUE of the receiver's line.
field() { echo "$1" | sed -n "s/.*$2=\([0-9.a-z]*\).*/\1/p"; }
FAIL=0
fail() { echo "FAILED: $*"; FAIL=1; }

# One server's whole run: NAME SIP_ADDR PID SERVICE. Rows go to
# $WORK/NAME.rows; "nida" also reads its own API.
bench() {
  local name=$1 sip=$2 pid=$3 service=$4
  local rows="$WORK/$name.rows"
  : > "$rows"
  local rss0 port=19000
  rss0=$(rss_kb "$pid")
  local sockets0
  sockets0=$(udp_sockets "$pid")
  for N in $CALLS; do
    local rate=$(( N < 500 ? N : 500 ))
    local setup=$(( N / rate + 3 ))
    local stat="$WORK/$name-$N.csv"
    "$SINK" $port $(( setup + SECS )) "$setup" echo > "$WORK/$name-$N.sink" &
    local sinkpid=$!
    sipp "$sip" -sf tests/sipp/uac_basic.xml -s "$service" -i 127.0.0.1 -p 19100 -mp 19200 \
      -key rtp_port $port -d $(( (setup + SECS + 2) * 1000 )) -r $rate -l "$N" -m "$N" \
      -trace_stat -stf "$stat" -fd 1 \
      -nostdin -timeout $(( setup + SECS + 40 ))s > "$WORK/$name-$N.sipp" 2>&1 &
    local sipp=$!
    local up=0
    for _ in $(seq 1 $(( setup * 10 + 100 ))); do
      up=$(sipp_current "$stat")
      [ "$up" -ge "$N" ] && break
      sleep 0.1
    done
    sleep 1
    local t0 t1 r2 measure=$(( SECS - 3 ))
    t0=$(cpu_ticks "$pid")
    sleep $measure
    t1=$(cpu_ticks "$pid"); r2=$(rss_kb "$pid")
    local still
    still=$(sipp_current "$stat")
    wait $sinkpid || true
    local sipp_ok=ok
    wait $sipp || sipp_ok=failed
    if [ "$name" = nida ]; then
      [ "$(status overload_rejects)" -eq 0 ] || fail "nida refused calls with 503 at $N calls"
    fi
    [ "$up" -ge "$N" ] && [ "$still" -ge "$N" ] || fail "$name: $up of $N calls came up, $still still up at the end"
    [ "$sipp_ok" = ok ] || { fail "$name: sipp had failed calls at $N calls"; grep -E "Failed call" "$WORK/$name-$N.sipp" | tail -1; }
    local sink streams
    sink=$(cat "$WORK/$name-$N.sink")
    streams=$(echo "$sink" | sed -n 's/.*streams=\([0-9]*\).*/\1/p')
    [ "${streams:-0}" -ge "$N" ] || fail "$name: the receiver saw ${streams:-0} streams for $N calls"
    local cpu pct
    cpu=$(echo "scale=4; ($t1 - $t0) / $HZ" | bc)
    pct=$(echo "scale=4; $cpu * 100 / $measure / $N" | bc)
    local p50 p99 dev99 gaps
    p50=$(echo "$sink" | sed -n 's/.*interval_ms p50=\([0-9.]*\).*/\1/p')
    p99=$(echo "$sink" | sed -n 's/.*interval_ms p50=[0-9.]* p99=\([0-9.]*\).*/\1/p')
    dev99=$(echo "$sink" | sed -n 's/.*deviation_ms p50=[0-9.]* p99=\([0-9.]*\).*/\1/p')
    gaps="$(field "$sink" seq_gaps) (receiver's own drops: $(field "$sink" receiver_drops))"
    printf '%s calls|%s %%|%s KiB|%s / %s ms|%s ms|%s\n' "$N" "$pct" \
      $(( (r2 - rss0) / N )) "$p50" "$p99" "$dev99" "$gaps" >> "$rows"
    # Every call of this round is gone before the next one.
    for _ in $(seq 1 100); do
      [ "$name" != nida ] || [ "$(status calls)" -eq 0 ] && break
      sleep 0.2
    done
    sleep 2
  done
  local best=0
  for R in $RATES; do
    local m=$(( R * 5 ))
    if sipp "$sip" -sf tests/sipp/uac_basic.xml -s "$service" -i 127.0.0.1 -p 19100 -mp 19200 \
        -key rtp_port 19000 -d 0 -r "$R" -l $(( R * 2 )) -m "$m" -nostdin -timeout 60s \
        > "$WORK/$name-r$R.sipp" 2>&1; then
      best=$R
    else
      echo "$name at $R calls/s: $(grep -E 'Failed call' "$WORK/$name-r$R.sipp" | tail -1 | tr -s ' ')"
      break
    fi
  done
  [ "$best" -gt 0 ] || fail "$name: no rate without failed calls"
  echo "rate|$best calls/s" >> "$rows"
  local over=$(( (best > 0 ? best : 500) * 2 ))
  local before503=0
  [ "$name" = nida ] && before503=$(status overload_rejects)
  sipp "$sip" -sf tests/sipp/uac_overload.xml -s "$service" -i 127.0.0.1 -p 19100 -mp 19200 \
    -key rtp_port 19000 -d 1000 -r "$over" -l $(( over * 3 )) -m $(( over * 5 )) -nostdin -timeout 90s \
    > "$WORK/$name-over.sipp" 2>&1 || true
  # sipp's closing screen counts each message of the scenario.
  local refused failed
  refused=$(awk '$1 == "503" && $2 ~ /^<-/ {print $3; exit}' "$WORK/$name-over.sipp")
  # The last column is the cumulative count.
  failed=$(awk '/Failed call/ {v = $NF} END {print v}' "$WORK/$name-over.sipp")
  sleep 60
  local left
  if [ "$name" = nida ]; then
    left=$(status calls)
    [ "$(( $(status overload_rejects) - before503 ))" -eq "${refused:-0}" ] \
      || fail "nida counted $(( $(status overload_rejects) - before503 )) refusals, sipp saw ${refused:-0} 503s"
  else
    left="$(( $(udp_sockets "$pid") - sockets0 )) sockets"
  fi
  echo "overload|$over calls/s for 5 s: ${refused:-0} got 503 + Retry-After, ${failed:-?} failed otherwise; up 60 s later: $left; RSS $(rss_kb "$pid") KiB (idle $rss0)" >> "$rows"
  [ "${failed:-1}" -eq 0 ] || fail "$name: ${failed:-?} calls failed otherwise than 503 under overload"
  [ "$name" != nida ] || [ "$left" -eq 0 ] || fail "nida still has $left calls up 60 s after the overload"
  echo "idle|$rss0 KiB" >> "$rows"
}

echo "== nida ($BIN) =="
bench nida "$NIDA_SIP" "$NIDA" 901
if [ -n "$PEER" ]; then
  echo "== peer $PEER (pid $PEER_PID) =="
  bench peer "$PEER" "$PEER_PID" "$PEER_SERVICE"
fi

# The table: one row per figure, a column per server.
python3 - "$WORK" "$PEER" <<'PY'
import sys, os
work, peer = sys.argv[1], sys.argv[2]
names = ["nida"] + (["peer"] if peer else [])
rows = {n: [l.rstrip("\n").split("|") for l in open(os.path.join(work, n + ".rows"))] for n in names}
heads = ["", "nida"] + ([f"peer {peer}"] if peer else [])
print("\n| " + " | ".join(heads) + " |")
print("|" + "---|" * len(heads))
def col(n, key, i):
    for r in rows[n]:
        if r[0] == key:
            return r[i] if i < len(r) else ""
    return "-"
keys = [r[0] for r in rows["nida"]]
for key in keys:
    if key.endswith("calls"):
        for i, what in enumerate(["share of a core per call", "RSS per call", "interval p50 / p99", "deviation p99", "sequence gaps"], 1):
            print(f"| {key}: {what} | " + " | ".join(col(n, key, i) for n in names) + " |")
    else:
        label = {"rate": "call rate with no failure", "overload": "overload at twice that rate", "idle": "idle RSS"}[key]
        print(f"| {label} | " + " | ".join(col(n, key, 1) for n in names) + " |")
PY
[ $FAIL -eq 0 ] || echo "FAILED: see above; the figures may describe refusals, not calls"
exit $FAIL
