#!/usr/bin/env bash
# The HSM's cost to the server, beside the signature itself. One tsad with
# two services certified by the same throwaway CA: /hsm signs in a
# SoftHSM2 token, /soft with a software key of the same type. Each round
# loads /soft, then /hsm (tsactl bench, 64 workers, DURATION each), then
# measures both keys' raw speed with no server (tsactl hsm speed: the
# token's C_SignInit+C_Sign, and OpenSSL's EVP_PKEY_sign, each in a loop in
# C on as many threads as tsad has sessions). The server's own CPU per
# token is its CPU per token less the raw CPU per signature; the goal is
# that it is the same for both keys, within 5 µs. The machine drifts, so
# the figures are compared within the run, round by round.
# Usage: scripts/bench-hsm.sh [ecdsa-p256|rsa-3072] [ROUNDS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
KEY=${1:-ecdsa-p256}
ROUNDS=${2:-3}
DURATION=${3:-10s}
MODULE=${CHRONOLOG_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
work=$(mktemp -d /tmp/chronolog-bench-hsm.XXXXXX)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
pid=

go build -o bin/ ./cmd/tsad ./cmd/tsactl
mkdir -p "$work/tokens" "$work/data"
printf 'directories.tokendir = %s\nobjectstore.backend = %s\nlog.level = ERROR\n' "$work/tokens" "${SOFTHSM_BACKEND:-file}" > "$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
export BENCH_HSM_PIN=bench-user-pin BENCH_HSM_SO=bench-so-pin
hsm() { bin/tsactl hsm "$1" --module "$MODULE" --token bench --pin-env BENCH_HSM_PIN "${@:2}"; }
hsm init-token --so-pin-env BENCH_HSM_SO >/dev/null
hsm keygen --label tsa --type "$KEY" --data "$work/data" >/dev/null 2>&1
hsm csr --key tsa --cn "Chronolog bench HSM TSA" --out "$work/hsm.csr"

case $KEY in
  ecdsa-p256) alg=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
  rsa-3072)   alg=(-algorithm RSA -pkeyopt rsa_keygen_bits:3072) ;;
  *) echo "KEY must be ecdsa-p256 or rsa-3072" >&2; exit 2 ;;
esac
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30 -subj "/CN=Chronolog bench CA" 2>/dev/null
printf 'extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n' > ext.cnf
openssl x509 -req -in hsm.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ext.cnf -out hsm.pem 2>/dev/null
openssl genpkey "${alg[@]}" -out soft.key 2>/dev/null
openssl req -new -key soft.key -subj "/CN=Chronolog bench software TSA" -out soft.csr
openssl x509 -req -in soft.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ext.cnf -out soft.pem 2>/dev/null
cd - >/dev/null
cat > "$work/bench.yaml" <<YAML
services:
  - name: hsm
    paths: [/hsm]
    policy: 1.3.6.1.4.1.32473.3161.1
    signer:
      pkcs11: {module: $MODULE, token: bench, key: tsa, pin: {env: BENCH_HSM_PIN}}
      cert: $work/hsm.pem
      chain: $work/ca.pem
  - name: soft
    paths: [/soft]
    policy: 1.3.6.1.4.1.32473.3161.1
    signer: {key: $work/soft.key, cert: $work/soft.pem, chain: $work/ca.pem}
YAML
# The clock gate is the same for both services; unverified keeps the bench
# independent of this machine's time sync.
bin/tsad serve --config "$work/bench.yaml" --addr 127.0.0.1:3197 --data "$work/data" --log off --clock unverified > "$work/tsad.out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q '^signing:' "$work/tsad.out" && break; sleep 0.1; done
grep -E '^service|^signing' "$work/tsad.out"
: > "$work/rounds"
for round in $(seq "$ROUNDS"); do
  for svc in soft hsm; do
    echo "--- round $round: server, $svc key ($KEY)"
    bin/tsactl bench --url "http://127.0.0.1:3197/$svc" --workers 64 --duration "$DURATION" --server-pid "$pid" > "$work/$svc.out"
    grep -E 'throughput|errors|server:' "$work/$svc.out"
  done
  echo "--- round $round: raw speed, no server"
  hsm speed --key tsa --duration 5s --soft-key "$work/soft.key" | tee "$work/speed.out"
  # One line a round: server µs/token soft, hsm; raw µs/signature soft, hsm; tokens/s soft, hsm.
  printf '%s %s %s %s %s %s\n' \
    "$(sed -n 's/^server:.*(\([0-9.]*\) µs CPU per token).*/\1/p' "$work/soft.out")" \
    "$(sed -n 's/^server:.*(\([0-9.]*\) µs CPU per token).*/\1/p' "$work/hsm.out")" \
    "$(sed -n 's/^software .* \([0-9.]*\) µs CPU per signature$/\1/p' "$work/speed.out")" \
    "$(sed -n 's/^token .* \([0-9.]*\) µs CPU per signature$/\1/p' "$work/speed.out")" \
    "$(sed -n 's/^throughput: *\([0-9.]*\) tokens\/s.*/\1/p' "$work/soft.out")" \
    "$(sed -n 's/^throughput: *\([0-9.]*\) tokens\/s.*/\1/p' "$work/hsm.out")" >> "$work/rounds"
  tail -1 "$work/rounds" | awk -v r="$round" 'NF == 6 {
    printf "round %d: server CPU per token beside signing: HSM key %.1f µs, software %.1f µs, difference %.1f µs\n", r, $2 - $4, $1 - $3, ($2 - $4) - ($1 - $3) }'
done
awk -v key="$KEY" '
  NF != 6 { print "bench-hsm: a round lacks a figure: " $0 > "/dev/stderr"; bad = 1; next }
  { n++; for (i = 1; i <= 6; i++) { sum[i] += $i; if (n == 1 || $i < lo[i]) lo[i] = $i; if (n == 1 || $i > hi[i]) hi[i] = $i }
    d = ($2 - $4) - ($1 - $3); dsum += d; if (n == 1 || d < dlo) dlo = d; if (n == 1 || d > dhi) dhi = d }
  function row(label, i) { printf "%-48s %8.1f µs  (%.1f – %.1f)\n", label, sum[i]/n, lo[i], hi[i] }
  END {
    if (n == 0) exit 1
    printf "=== %s, means of %d rounds (lowest – highest)\n", key, n
    printf "%-48s %8.0f /s   (%.0f – %.0f)\n", "tokens/s with the software key", sum[5]/n, lo[5], hi[5]
    printf "%-48s %8.0f /s   (%.0f – %.0f)\n", "tokens/s with the HSM key", sum[6]/n, lo[6], hi[6]
    row("server CPU per token, HSM key", 2)
    row("raw CPU per HSM signature (no server)", 4)
    row("server CPU per token, software key", 1)
    row("raw CPU per software signature (no server)", 3)
    hsm = sum[2]/n - sum[4]/n; soft = sum[1]/n - sum[3]/n
    printf "%-48s %8.1f µs\n", "server CPU per token beside signing, HSM key", hsm
    printf "%-48s %8.1f µs\n", "server CPU per token beside signing, software", soft
    printf "%-48s %8.1f µs  (rounds: %.1f – %.1f); goal: within 5 µs: %s\n", "HSM minus software", hsm - soft, dlo, dhi,
      ((hsm - soft <= 5 && hsm - soft >= -5) ? "met" : "missed")
    exit bad
  }' "$work/rounds"
