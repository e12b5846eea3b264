#!/usr/bin/env bash
# Soak: nida (release build) under a steady mix of calls from sipp for a
# while (default 600 s), on loopback:
#   - IVR-only calls to 901 (police flow), 8 s each, 2 per second;
#   - queued-and-answered calls (a flow that queues at once), answered by
#     sipp playing 30 agents (fixed contacts, echoing RTP), 15 s each,
#     1 per second;
#   - abandoned calls to a queue no agent serves, hung up after 6 s,
#     1 per second.
# It fails unless every call succeeds for sipp (callers and agents), nida
# answered every call and ended it, the store holds exactly one record
# per queued call with the right outcome (IVR-only calls have no call
# record: records are of calls that reached a queue), and
# nida's memory stays flat (last minute's mean RSS within 10% + 8 MiB of
# the second minute's). It prints the figures.
# Usage: tests/bench/soak.sh [SECONDS=600]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-600}
command -v sipp >/dev/null || { echo "install sipp (Debian: sip-tester)"; exit 2; }
cargo build --release -q -p nida --bin nida
BIN=$PWD/target/release/nida
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$WORK"' EXIT

SIP=127.0.0.1:17060
HTTP=127.0.0.1:17061
AGENTS=127.0.0.1:17070
TOKEN=soak-admin-token-0123

# The demo flows, plus one that queues at once and one that queues where
# no agent serves.
mkdir -p "$WORK/flows" "$WORK/data"
cp ivr-flows/*.yaml "$WORK/flows/"
cp -r ivr-flows/data "$WORK/flows/"
cat > "$WORK/flows/soak_queue.yaml" <<'YAML'
flow: soak_queue
languages: [en]
start: agent
nodes:
  agent:
    queue:
      name: visa_general
      skills: { visa: 1 }
YAML
cat > "$WORK/flows/soak_abandon.yaml" <<'YAML'
flow: soak_abandon
languages: [en]
start: wait
nodes:
  wait:
    queue:
      name: nobody_serves
      skills: { nothing: 1 }
YAML
{
  cat <<TOML
sip_addr = "$SIP"
http_addr = "$HTTP"
admin_token = "$TOKEN"
rtp_ports = "44000-47999"
flows_dir = "$WORK/flows"
data_dir = "$WORK/data"
rtp_timeout_seconds = 60
[dial_plan]
"901" = "police"
"7001" = "soak_queue"
"7002" = "soak_abandon"
[lookups.applications]
file = "$WORK/flows/data/applications.json"
[queues.visa_general]
wrap_up_seconds = 0
offer_timeout_seconds = 10
[protection]
trusted = ["127.0.0.0/8"]
TOML
  for i in $(seq 1 30); do
    printf '[[agents]]\nid = %d\nuser = "a%d"\npassword = "x"\nskills = { visa = 5 }\nlanguages = ["en"]\ncontact = "sip:a%d@%s"\n' \
      "$i" "$i" "$i" "$AGENTS"
  done
} > "$WORK/nida.toml"
"$BIN" flow check --config "$WORK/nida.toml" "$WORK/flows" >/dev/null

RUST_LOG=warn "$BIN" --config "$WORK/nida.toml" > "$WORK/nida.out" 2> "$WORK/nida.err" &
NIDA=$!
for _ in $(seq 1 100); do grep -q listening "$WORK/nida.out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$WORK/nida.out" || { cat "$WORK/nida.err"; exit 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$NIDA/status"; }
api() { curl -s -H "Authorization: Bearer $TOKEN" "http://$HTTP$1"; }
START=$(date +%s)

IVR_N=$(( SECS * 2 ))
Q_N=$(( SECS ))
AB_N=$(( SECS ))
# The agents: one sipp answering every agent's calls, echoing RTP.
sipp -sf tests/sipp/answer_until_bye.xml -i 127.0.0.1 -p 17070 -mp 17100 -rtp_echo \
  -m "$Q_N" -nostdin -timeout $(( SECS + 120 ))s -timeout_error > "$WORK/agents.out" 2>&1 &
AGENT_SIPP=$!
sleep 0.5
caller() { # name number rate count hold_ms sip_port media_port
  sipp "$SIP" -sf tests/sipp/uac_basic.xml -s "$2" -i 127.0.0.1 -p "$6" -mp "$7" \
    -key rtp_port 19990 -r "$3" -m "$4" -d "$5" \
    -nostdin -timeout $(( SECS + 120 ))s -timeout_error > "$WORK/$1.out" 2>&1
}
caller ivr 901 2 "$IVR_N" 8000 17200 17300 &
IVR=$!
caller queued 7001 1 "$Q_N" 15000 17400 17500 &
QUEUED=$!
caller abandoned 7002 1 "$AB_N" 6000 17600 17700 &
ABANDONED=$!

# Memory every 10 s while the callers run.
: > "$WORK/rss"
while kill -0 $IVR 2>/dev/null || kill -0 $QUEUED 2>/dev/null || kill -0 $ABANDONED 2>/dev/null; do
  echo "$(( $(date +%s) - START )) $(rss_kb)" >> "$WORK/rss"
  sleep 10
done
FAIL=0
for p in ivr:$IVR queued:$QUEUED abandoned:$ABANDONED agents:$AGENT_SIPP; do
  name=${p%%:*}
  if ! wait "${p#*:}"; then
    echo "FAIL: sipp $name had failed calls:"; grep -E "Successful call|Failed call" "$WORK/$name.out" | tail -2
    FAIL=1
  fi
done
# Every call over, every record written.
for _ in $(seq 1 100); do
  [ "$(api /api/status | sed -n 's/.*"calls":\([0-9]*\).*/\1/p')" = "0" ] && break
  sleep 0.2
done
sleep 2
api "/api/records?from=$START&limit=1000000" > "$WORK/records.json"
api /api/status > "$WORK/status.json"
python3 - "$WORK/records.json" "$IVR_N" "$Q_N" "$AB_N" "$WORK/rss" "$WORK/status.json" <<'PY' || FAIL=1
import json, sys, collections
recs = json.load(open(sys.argv[1]))
ivr, q, ab = map(int, sys.argv[2:5])
status = json.load(open(sys.argv[6]))
print(f"nida answered {status['answered']} calls (placed {ivr + q + ab}), {status['calls']} still up, {status['overload_rejects']} refused with 503")
ok = status["answered"] == ivr + q + ab and status["calls"] == 0
outcomes = collections.Counter(r["outcome"] for r in recs)
print(f"records: {len(recs)} (expected {q + ab}); outcomes: {dict(outcomes)}")
ok &= len(recs) == q + ab
ok &= outcomes.get("answered", 0) == q
ok &= outcomes.get("abandoned", 0) == ab
talk = [r["talk_seconds"] for r in recs if r["outcome"] == "answered" and r.get("talk_seconds") is not None]
waits = [r["wait_seconds"] for r in recs if r["outcome"] == "answered" and r.get("wait_seconds") is not None]
if talk:
    print(f"answered: mean talk {sum(talk)/len(talk):.1f} s, mean wait {sum(waits)/max(len(waits),1):.2f} s, longest wait {max(waits or [0]):.2f} s")
rss = [tuple(map(int, l.split())) for l in open(sys.argv[5]) if l.strip()]
if len(rss) >= 12:
    second = [k for t, k in rss if 60 <= t < 120]
    last = [k for t, k in rss[-6:]]
    a, b = sum(second) / len(second), sum(last) / len(last)
    print(f"RSS: second minute {a/1024:.1f} MiB, last minute {b/1024:.1f} MiB, peak {max(k for _, k in rss)/1024:.1f} MiB")
    if b > a * 1.10 + 8 * 1024:
        print("FAIL: memory grew"); ok = False
else:
    print("RSS samples:", " ".join(f"{t}s:{k//1024}MiB" for t, k in rss))
if not ok:
    print("FAIL: records do not match the calls placed")
sys.exit(0 if ok else 1)
PY
for name in ivr queued abandoned agents; do
  printf '%-10s %s\n' "$name" "$(grep -E 'Successful call' "$WORK/$name.out" | tail -1 | tr -s ' ')  $(grep -E 'Failed call' "$WORK/$name.out" | tail -1 | tr -s ' ')"
done
echo "nida CPU: $(awk '{printf "%.1f s user+system", ($14+$15)/'"$(getconf CLK_TCK)"'}' /proc/$NIDA/stat) over $(( $(date +%s) - START )) s"
grep -cE " (WARN|ERROR) " "$WORK/nida.err" | sed 's/^/nida warnings and errors: /' || true
kill -TERM $NIDA
wait $NIDA || true
if [ $FAIL -ne 0 ]; then
  tail -20 "$WORK/nida.err"
  echo "soak: FAILED"
  exit 1
fi
echo "soak: passed"
