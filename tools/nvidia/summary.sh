#!/usr/bin/env bash
# Summarizes what tools/nvidia/run.sh left: `tools/nvidia/summary.sh DIR`
# with DIR holding logs.tar.gz (and the screenshots). Prints, per run, its
# status, wall time, validation messages and the layer's statistics.
set -euo pipefail
dir=${1:?usage: summary.sh DIR}
tmp=$(mktemp -d)
tar -C "$tmp" -xzf "$dir/logs.tar.gz"
python3 - "$tmp/logs" <<'PY'
import json, os, re, sys
d = sys.argv[1]
def read(n):
    try:
        return open(os.path.join(d, n), errors="replace").read()
    except FileNotFoundError:
        return ""
print(read("gpu.txt").strip(), "|", read("date.txt").strip())
for n in sorted(os.listdir(d)):
    if not n.endswith(".log"):
        continue
    t = read(n)
    m = re.search(r"@@ rc=(\d+)(?: ms=(\d+))?", t)
    rc = m.group(1) if m else "?"
    ms = m.group(2) if m and m.group(2) else "?"
    val = len(re.findall(r"Validation (Error|Warning)|VUID-|validation_message=", t))
    plan = re.findall(r"swapchain \S+ \S+ \S+ on \S+: (.*)", t)
    probe = {k: v for k, v in re.findall(r"probe: (\w+)=(\S+)", t)}
    keys = ["result", "fps", "frames", "validation_messages", "acquire_p50_us", "present_p50_us"]
    extra = " ".join(f"{k}={probe[k]}" for k in keys if k in probe)
    print(f"{n[:-4]:<28} rc={rc:<4} ms={ms:<7} validation={val:<3} {extra}")
    for p in sorted(set(plan)):
        print(f"    plan: {p}")
    for line in t.splitlines():
        if "syncbridge: error" in line or "Segmentation" in line or "Assertion" in line:
            print("    " + line[:200])
for n in sorted(os.listdir(d)):
    if n.endswith(".jsonl"):
        for line in read(n).splitlines():
            s = json.loads(line)
            keys = ["frames_presented", "fps", "images", "sync", "present_mode", "layer_cpu_us", "acquire_waits"]
            print(f"stats {n[:-6]:<22}", {k: s.get(k) for k in keys})
PY
rm -rf "$tmp"
