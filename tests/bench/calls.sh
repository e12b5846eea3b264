#!/usr/bin/env bash
# Benchmark: nida driven by sipp on loopback.
#   1. N concurrent calls, each receiving the welcome prompt for SECONDS:
#      nida's CPU seconds per call-minute, RSS per call, and the RTP
#      inter-packet interval p50/p99 seen by the receiver (rtp_sink).
#   2. A call-rate ramp of short calls (INVITE, 200, ACK, BYE): the highest
#      rate with no failed call.
# Usage: tests/bench/calls.sh [N=500] [SECONDS=30] [RATES="100 200 400 800"]
# NIDA_BIN and RTP_SINK run another build (to compare two versions).
# The run fails when not every call comes up, when nida refuses any (503)
# or when sipp reports a failed call: then the figures would describe
# refusals, not calls.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-500}
SECS=${2:-30}
RATES=${3:-"100 200 400 800"}
command -v sipp >/dev/null || { echo "install sipp (Debian: sip-tester)"; exit 2; }
if [ -z "${NIDA_BIN:-}" ]; then
  cargo build --release -q -p nida --bin nida --example rtp_sink
fi
BIN=${NIDA_BIN:-target/release/nida}
SINK=${RTP_SINK:-target/release/examples/rtp_sink}
TOKEN=bench-admin-token-0123
WORK=$(mktemp -d)
# nida is stopped and waited for: the next run must not find this one
# still on its ports.
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT

SIP=127.0.0.1:18060
HTTP=127.0.0.1:18061
cat > "$WORK/nida.toml" <<TOML
sip_addr = "$SIP"
http_addr = "$HTTP"
rtp_ports = "20000-31999"
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
FAIL=0
status() { curl -s -H "Authorization: Bearer $TOKEN" "http://$HTTP/api/status" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
# nida prints its listening line once its prompts are loaded: the idle
# RSS is read after it.
for _ in $(seq 1 300); do
  grep -q listening "$WORK/nida.out" 2>/dev/null && break
  kill -0 "$NIDA" 2>/dev/null || { echo "FAILED: nida did not start"; cat "$WORK/nida.err"; exit 1; }
  sleep 0.1
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$NIDA/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$NIDA/status"; }
HZ=$(getconf CLK_TCK)
RSS0=$(rss_kb)

echo "== $N concurrent calls for ${SECS}s =="
SETUP_RATE=$(( N < 200 ? N : 200 ))
SETUP=$(( N / SETUP_RATE + 2 ))
"$SINK" 19000 $(( SETUP + SECS )) "$SETUP" echo > "$WORK/sink.out" &
SINKPID=$!
sipp $SIP -sf tests/sipp/uac_basic.xml -s 901 -i 127.0.0.1 -p 19100 -mp 19200 \
  -key rtp_port 19000 -d $(( (SETUP + SECS + 2) * 1000 )) -r $SETUP_RATE -l "$N" -m "$N" \
  -nostdin -timeout $(( SETUP + SECS + 30 ))s > "$WORK/sipp1.out" 2>&1 &
SIPP=$!
for _ in $(seq 1 $(( SETUP * 10 + 50 ))); do
  [ "$(status calls)" -ge "$N" ] && break
  sleep 0.1
done
UP=$(status calls)
T0=$(cpu_ticks); RSS1=$(rss_kb)
MEASURE=$(( SECS - 2 ))
sleep $MEASURE
T1=$(cpu_ticks); RSS2=$(rss_kb)
STILL=$(status calls)
wait $SINKPID || true
wait $SIPP && SIPP1=ok || SIPP1="failed (see sipp's summary)"
CPU=$(echo "scale=4; ($T1 - $T0) / $HZ" | bc)
CALLMIN=$(echo "scale=4; $UP * $MEASURE / 60" | bc)
REFUSED=$(status overload_rejects)
echo "calls up: $UP of $N (still up at the end of the window: $STILL); refused with 503: $REFUSED; sipp: $SIPP1"
if [ "$UP" -lt "$N" ] || [ "$STILL" -lt "$UP" ] || [ "$REFUSED" -ne 0 ] || [ "$SIPP1" != ok ]; then
  echo "FAILED: not every call was up for the whole window: the figures below do not describe $N calls"
  FAIL=1
fi
echo "nida CPU: ${CPU}s over ${MEASURE}s = $(echo "scale=4; $CPU / $CALLMIN" | bc) CPU-seconds per call-minute"
echo "          = $(echo "scale=1; $CPU * 100 / $MEASURE" | bc)% of one core for $UP calls"
echo "nida RSS: idle ${RSS0} KiB, with calls ${RSS2} KiB => $(( (RSS2 - RSS0) / (UP > 0 ? UP : 1) )) KiB per call"
cat "$WORK/sink.out"

echo "== call-rate ramp (short calls) =="
BEST=0
for R in $RATES; do
  M=$(( R * 5 ))
  START=$(date +%s.%N)
  if sipp $SIP -sf tests/sipp/uac_basic.xml -s 901 -i 127.0.0.1 -p 19100 -mp 19200 \
      -key rtp_port 19000 -d 0 -r "$R" -l $(( R * 2 )) -m "$M" -nostdin -timeout 60s \
      > "$WORK/sipp-r$R.out" 2>&1; then
    END=$(date +%s.%N)
    echo "rate $R/s: $M calls ok in $(echo "scale=2; $END - $START" | bc)s"
    BEST=$R
  else
    echo "rate $R/s: failures:"; grep -E "Failed call|Successful call" "$WORK/sipp-r$R.out" | tail -2
    [ "$BEST" -eq 0 ] && FAIL=1
    break
  fi
done
echo "highest rate with no failed call: $BEST calls/s (sipp and nida share 2 cores)"
echo "nida RSS after the ramp: $(rss_kb) KiB; calls still up: $(status calls)"
REFUSED=$(status overload_rejects)
echo "refused with 503 in all (the ramp's last rate may be past capacity): $REFUSED"
exit $FAIL
