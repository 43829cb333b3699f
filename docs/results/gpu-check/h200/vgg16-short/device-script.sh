#!/bin/bash
# The second device call: a short VGG-16 run on CIFAR-10 (dense, then the method), for time and
# to see that it trains and prunes on the real images; whatever it reached comes back.
set -u
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
exec > >(tee -a "$OUT/run2.log") 2>&1
for f in .gpu/debs/*.deb; do dpkg -x "$f" /; done; ldconfig
printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.4.312"}}' /usr/local/nvidia/lib64/libGLX_nvidia.so.0 > /tmp/icd.json
export VK_DRIVER_FILES=/tmp/icd.json XDG_RUNTIME_DIR=$(mktemp -d)
mkdir -p /tmp/data
tar xJf .gpu/kit.tar.xz -C /tmp kit/examples/cifar10
tar xzf .gpu/cifar10-jpeg.tar.gz -C /tmp/data
echo "unpacked at $(el) s"
timeout $((330 - $(el))) /tmp/kit/examples/cifar10 --model vgg16 --data-dir /tmp/data \
  --dense-epochs 6 --epochs 3 --every 150 --fraction 0.2 --out /tmp/vgg --force
echo "vgg16 ended ($?) at $(el) s"
for f in metrics.csv summary.json config.json log.txt; do cp /tmp/vgg/$f "$OUT/vgg16_$f" 2>/dev/null; done
cp /tmp/vgg/dense/metrics.csv "$OUT/vgg16_dense_metrics.csv" 2>/dev/null
ls -R /tmp/vgg | head -30
