#!/usr/bin/env bash
# A two-node Ray cluster on this one machine (a head and a second node joined over loopback), a
# `sape-geom batch --backend ray` run across it, and a check that tasks ran on both nodes.
# Both nodes are stopped at the end, also on failure or Ctrl-C.
#
#   scripts/ray_two_nodes.sh [WORKDIR]     (default: a new temporary folder; needs the ray extra)
#
# Environment: PYTHON (default .venv/bin/python if present, else python3), MESHES (default 4),
# STEPS (default 40).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="$(command -v python3)"; fi
fi
BIN="$(dirname "$PYTHON")"
RAY="$BIN/ray"
SAPE="$BIN/sape-geom"
MESHES="${MESHES:-4}"
STEPS="${STEPS:-40}"
WORK="${1:-$(mktemp -d /tmp/sape_ray_two_nodes.XXXXXX)}"
mkdir -p "$WORK"
export OMP_NUM_THREADS=1 RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
ADDRESS="127.0.0.1:$PORT"  # Ray itself maps 127.0.0.1 to this machine's own address (still this one machine)
# Token authentication with a token of this run only (every process below inherits it).
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')"
export RAY_AUTH_TOKEN
# A short temp folder of our own: Ray's socket paths must stay under 107 characters.
TMP_HEAD="$(mktemp -d /tmp/rayh.XXXX)"

PIDS=()
stop_nodes() {
    local rc=$?
    trap - EXIT INT TERM
    if ((${#PIDS[@]})); then
        echo "== stopping both nodes (pids ${PIDS[*]})"
        # `ray start --block` stops the Ray processes of its own node on SIGTERM; nothing else is touched.
        for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
        for pid in "${PIDS[@]}"; do
            for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        done
        echo "   stopped"
    fi
    rm -rf "$TMP_HEAD"
    exit $rc
}
trap stop_nodes EXIT INT TERM

echo "== head node on $ADDRESS (1 CPU)"
"$RAY" start --block --head --node-ip-address 127.0.0.1 --port "$PORT" --num-cpus 1 --num-gpus 0 \
    --object-store-memory 200000000 --include-dashboard false --temp-dir "$TMP_HEAD" --disable-usage-stats \
    >"$WORK/head.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 120); do
    "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$PORT" 2>/dev/null && break
    kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$WORK/head.log"; exit 1; }
    sleep 0.5
done
echo "== second node joining $ADDRESS (1 CPU)"
"$RAY" start --block --address "$ADDRESS" --node-ip-address 127.0.0.1 --num-cpus 1 --num-gpus 0 \
    --object-store-memory 200000000 --disable-usage-stats \
    >"$WORK/worker.log" 2>&1 &
PIDS+=($!)

"$PYTHON" - "$ADDRESS" <<'EOF'
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
for _ in range(120):
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) >= 2:
        break
    time.sleep(0.5)
print(f"== cluster: {len(alive)} nodes alive")
for n in alive:
    print(f"   node {n['NodeID']}  {n['NodeManagerAddress']}  CPU={n['Resources'].get('CPU', 0):g}")
ray.shutdown()
sys.exit(0 if len(alive) >= 2 else 1)
EOF

echo "== generating $MESHES small meshes in $WORK/meshes"
rm -rf "$WORK/meshes" "$WORK/out"
"$PYTHON" - "$WORK/meshes" "$MESHES" <<'EOF'
import sys
from pathlib import Path
from sape_geom.mesh.shapes import sphere, torus
folder, count = Path(sys.argv[1]), int(sys.argv[2])
folder.mkdir(parents=True)
for i in range(count):
    mesh = sphere(0.4 + 0.05 * i, subdivisions=2) if i % 2 == 0 else torus(0.6 + 0.05 * i, 0.2)
    mesh.export(folder / f"shape{i}.{'ply' if i % 2 == 0 else 'obj'}")
print("  ", ", ".join(sorted(p.name for p in folder.iterdir())))
EOF

echo "== sape-geom batch across the cluster (2 workers, $STEPS steps, resolution 32)"
set -x
"$SAPE" batch "$WORK/meshes" -o "$WORK/out" --backend ray --address "$ADDRESS" --workers 2 --cpus-per-fit 1 \
    --steps "$STEPS" --resolution 32 --device cpu --quiet
{ set +x; } 2>/dev/null

echo "== metrics.csv (name, status, host, node, total_s)"
"$PYTHON" - "$WORK/out/metrics.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
for row in rows:
    print(f"   {row['name']:8s} {row['status']:6s} {row['host']:10s} {row['node']}  {row['total_s']} s")
nodes = {row["node"] for row in rows if row["node"]}
print(f"== tasks ran on {len(nodes)} distinct node(s)")
for node in sorted(nodes):
    print(f"   {node}: {', '.join(r['name'] for r in rows if r['node'] == node)}")
sys.exit(0 if len(nodes) >= 2 else 1)
EOF
