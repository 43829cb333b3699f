#!/bin/bash
# The device call: gpu-check on the lent GPU, then one VGG-16 epoch on CIFAR-10 if time is left.
set -u
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
LOG=$OUT/run.log; exec > >(tee -a "$LOG") 2>&1
for f in .gpu/debs/*.deb; do dpkg -x "$f" /; done; ldconfig
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
ls /usr/local/nvidia/share/vulkan/icd.d/ /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>/dev/null
lib=/usr/local/nvidia/lib64/libGLX_nvidia.so.0
[ -e "$lib" ] || lib=$(ldconfig -p | awk '/libGLX_nvidia.so.0/ {print $NF; exit}')
printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.4.312"}}' "$lib" > /tmp/icd.json
export VK_DRIVER_FILES=/tmp/icd.json XDG_RUNTIME_DIR=$(mktemp -d)
echo "driver library $lib; libraries it lacks:"; ldd "$lib" | grep -i "not found"
mkdir -p /tmp/data
tar xJf .gpu/kit.tar.xz -C /tmp || python3 -m tarfile -e .gpu/kit.tar.xz /tmp
tar xzf .gpu/cifar10-jpeg.tar.gz -C /tmp/data
ls /tmp/data /tmp/kit; echo "unpacked at $(el) s"
cd /tmp/kit
check() { timeout $((560 - $(el))) ./xtask gpu-check --data-dir /tmp/data --out "$OUT" 2>&1; }
t=$(el); check; rc=$?
if [ "$rc" -ne 0 ] && [ $(( $(el) - t )) -lt 90 ]; then
  echo "gpu-check failed at once with the ICD at $lib; trying the driver's own ICD file"
  unset VK_DRIVER_FILES
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  t=$(el); check; rc=$?
  if [ "$rc" -ne 0 ] && [ $(( $(el) - t )) -lt 90 ]; then
    echo "failed again: the loader's view"
    VK_LOADER_DEBUG=error,warn,driver timeout 60 ./xtask gpu-check --startup-probe wgpu --quick 2>&1 | head -c 15000
    export VK_DRIVER_FILES=/tmp/icd.json
    VK_LOADER_DEBUG=error,warn,driver timeout 60 ./xtask gpu-check --startup-probe wgpu --quick 2>&1 | head -c 15000
    exit 3
  fi
fi
echo "gpu-check ended ($rc) at $(el) s"
left=$((585 - $(el)))
if [ "$left" -gt 40 ]; then
  timeout "$left" ./examples/cifar10 --model vgg16 --data-dir /tmp/data --dense-epochs 1 \
    --max-steps 0 --out /tmp/vgg --force
  echo "vgg16 ended ($?) at $(el) s"
  cp /tmp/vgg/metrics.csv "$OUT/vgg16_metrics.csv" 2>/dev/null
  cp /tmp/vgg/summary.json "$OUT/vgg16_summary.json" 2>/dev/null
fi
