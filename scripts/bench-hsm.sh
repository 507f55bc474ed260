#!/usr/bin/env bash
# The HSM's cost: one tsad with two services, /hsm signing in a SoftHSM2
# token and /soft with a software key of the same type, certified by the
# same throwaway CA; tsactl bench loads each in turn, PAIRS times, 64
# workers, 10 s each. Usage: scripts/bench-hsm.sh [ecdsa-p256|rsa-3072] [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
KEY=${1:-ecdsa-p256}
PAIRS=${2:-3}
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
for pair in $(seq "$PAIRS"); do
  for svc in soft hsm; do
    echo "--- pair $pair: $svc ($KEY)"
    bin/tsactl bench --url "http://127.0.0.1:3197/$svc" --workers 64 --duration 10s --server-pid "$pid" | grep -E 'throughput|latency|errors|server:'
  done
done
