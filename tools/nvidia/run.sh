#!/bin/bash
# The layer on the NVIDIA machine: run there with .gl carried (filled by
# tools/nvidia/prepare.sh here), e.g. with the device tool:
#   bash .gl/run.sh
# Unpacks the carried packages and weston, then on Xvfb (MIT-SHM) and on
# weston 10 headless (wl_shm) runs vkcube with the driver's own WSI and
# through the layer, with the Khronos validation layer above and below it
# (synchronization validation on below), FIFO and IMMEDIATE, the wsi_probe
# colour check and the present benchmark (driver WSI against the layer).
# Leaves in $OUT: logs.tar.gz (every log and statistics line), x11.xwd,
# wl.png, probe.png. Read them with tools/nvidia/summary.sh.
set -u
cd "$(dirname "$0")"
G=$PWD
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# SB_NO_UNPACK=1: the packages are installed already (a trial run here).
if [ -z "${SB_NO_UNPACK:-}" ]; then
  for f in deb/*.deb; do dpkg -x "$f" / 2>/dev/null; done
  tar -C / -xzf weston.tar.gz
  ldconfig
fi
[ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
mkdir -p /tmp/sb
sed "s|@LIBRARY_PATH@|$G/sb/libVkLayer_syncbridge.so|" sb/VkLayer_syncbridge.json.in \
  > /tmp/sb/VkLayer_syncbridge.json
L=/tmp/logs
mkdir -p $L
export SYNCBRIDGE_LOG=info
# Runs through the layer name it with `env $LP VK_INSTANCE_LAYERS=...`; the
# driver's own runs see no layer manifest at all.
LP=VK_LAYER_PATH=/tmp/sb:/usr/share/vulkan/explicit_layer.d
LAYER=VK_LAYER_SYNCBRIDGE_wsi VAL=VK_LAYER_KHRONOS_validation
SYNCVAL=VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT
nvidia-smi -L > $L/gpu.txt 2>&1
date -u > $L/date.txt

# run NAME SECONDS CMD...: CMD's output in NAME.log, then its status and
# wall time in milliseconds.
run() {
  local name=$1 secs=$2; shift 2
  local t0; t0=$(date +%s%N)
  timeout "$secs" "$@" > $L/$name.log 2>&1
  echo "@@ rc=$? ms=$(( ($(date +%s%N) - t0) / 1000000 ))" >> $L/$name.log
}

env $LP ./sb/syncbridge-info > $L/info.txt 2>&1

echo "== X11: Xvfb (MIT-SHM, no DRI3)"
Xvfb :5 -screen 0 1024x768x24 > $L/xvfb.log 2>&1 &
XP=$!
sleep 2
export DISPLAY=:5
run x11-driver 60 vkcube --c 300
run x11-fifo-val-above 120 env $LP VK_INSTANCE_LAYERS=$VAL:$LAYER SYNCBRIDGE_STATS=$L/x11-fifo.jsonl \
  vkcube --c 300 --validate
run x11-fifo-syncval-below 120 env $LP VK_INSTANCE_LAYERS=$LAYER:$VAL VK_LAYER_ENABLES=$SYNCVAL \
  vkcube --c 300 --validate
run x11-immediate-val-above 120 env $LP VK_INSTANCE_LAYERS=$VAL:$LAYER \
  SYNCBRIDGE_STATS=$L/x11-immediate-val.jsonl vkcube --c 1000 --present_mode 0 --validate
run x11-immediate 60 env $LP VK_INSTANCE_LAYERS=$LAYER SYNCBRIDGE_STATS=$L/x11-immediate.jsonl \
  vkcube --c 3000 --present_mode 0
env $LP VK_INSTANCE_LAYERS=$LAYER vkcube --c 100000 > $L/x11-shot-vkcube.log 2>&1 &
VP=$!
sleep 5
xwd -root -silent -out "$OUT/x11.xwd"
kill $VP; wait $VP 2>/dev/null
kill $XP
unset DISPLAY

echo "== Wayland: weston 10 headless (pixman, wl_shm)"
export XDG_RUNTIME_DIR=/tmp/wl
mkdir -p $XDG_RUNTIME_DIR && chmod 700 $XDG_RUNTIME_DIR
LD_LIBRARY_PATH=/opt/sbweston/lib weston --backend=headless-backend.so --use-pixman \
  --width=1024 --height=768 --idle-time=0 --debug --socket=wl0 \
  > $L/weston.log 2>&1 &
WP=$!
for _ in $(seq 100); do [ -S $XDG_RUNTIME_DIR/wl0 ] && break; sleep 0.1; done
export WAYLAND_DISPLAY=wl0
shot() { # shot FILE: weston's screenshot as FILE
  (cd /tmp && rm -f wayland-screenshot-*.png &&
    LD_LIBRARY_PATH=/opt/sbweston/lib weston-screenshooter > $L/screenshooter.log 2>&1 &&
    mv wayland-screenshot-*.png "$1")
}
run wl-driver 60 vkcube-wayland --c 300
run wl-fifo-val-above 120 env $LP VK_INSTANCE_LAYERS=$VAL:$LAYER SYNCBRIDGE_STATS=$L/wl-fifo.jsonl \
  vkcube-wayland --c 300 --validate
run wl-fifo-syncval-below 120 env $LP VK_INSTANCE_LAYERS=$LAYER:$VAL VK_LAYER_ENABLES=$SYNCVAL \
  vkcube-wayland --c 300 --validate
env $LP VK_INSTANCE_LAYERS=$LAYER vkcube-wayland --c 100000 > $L/wl-shot-vkcube.log 2>&1 &
VP=$!
sleep 5
shot "$OUT/wl.png"
kill $VP; wait $VP 2>/dev/null
# The probe: a known colour, validation (synchronization too) below the layer.
env $LP VK_INSTANCE_LAYERS=$LAYER:$VAL VK_LAYER_ENABLES=$SYNCVAL PROBE_VALIDATION_IN_ENV=1 \
  PROBE_HOLD_MS=5000 ./sb/wsi_probe frames --frames 60 --color 0,1,0 --size 320x240 \
  --validation > $L/probe-colour.log 2>&1 &
PP=$!
sleep 3
shot "$OUT/probe.png"
wait $PP; echo "@@ rc=$?" >> $L/probe-colour.log
for mode in immediate:3000 mailbox:3000 fifo:240; do
  m=${mode%:*} n=${mode#*:}
  run bench-$m-driver 120 ./sb/wsi_probe bench --frames $n --mode $m --size 500x500
  run bench-$m-layer 120 env $LP VK_INSTANCE_LAYERS=$LAYER SYNCBRIDGE_STATS=$L/bench-$m.jsonl \
    ./sb/wsi_probe bench --frames $n --mode $m --size 500x500
done
kill $WP
tar -C /tmp -czf "$OUT/logs.tar.gz" logs
echo "== done"; ls -la "$OUT"
