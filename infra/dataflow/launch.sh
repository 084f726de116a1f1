#!/usr/bin/env bash
# Run pairsmith with its Beam stages on Google Cloud Dataflow.
#
#   PROJECT=my-project REGION=us-central1 BUCKET=gs://my-bucket \
#   IMAGE=us-central1-docker.pkg.dev/my-project/pairsmith/pairsmith-beam-sdk:0.1.0 \
#     infra/dataflow/launch.sh cpu gs://my-bucket/pairs/*.parquet gs://my-bucket/out/run1 [--set KEY=VALUE ...]
#
#   WORKERS=cpu|gpu  (first argument)
#     cpu  n2-standard-8 workers (MACHINE_TYPE to change), CPU torch in the image
#     gpu  g2-standard-8 workers with one NVIDIA L4 each and the driver installed by Dataflow; IMAGE must
#          be the CUDA build of infra/Dockerfile.beam-sdk (--build-arg TORCH_INDEX_URL=https://pypi.org/simple)
#
# This machine is the driver: it runs `pairsmith run` (Prefect's flow, ephemeral API unless PREFECT_API_URL
# is set) and submits one Dataflow job per stage (ingest, download + annotate, caption sharing, dedup,
# corruption), waiting for each. It needs pairsmith with the gcp extra (`pip install ".[gcp]"`), Google
# credentials (`gcloud auth application-default login`), and the run's models where the preflight model check
# can see them (PAIRSMITH_MODELS / HF_HOME, as on the workers). Input and output are gs:// URLs (fsspec).
# The workers run IMAGE, which must hold pairsmith and the models (see infra/Dockerfile.beam-sdk).
#
# Environment: PROJECT, REGION, BUCKET, IMAGE (required); MAX_WORKERS (default 20); MACHINE_TYPE;
# SERVICE_ACCOUNT (worker service account email); NETWORK / SUBNETWORK; PAIRSMITH (the CLI, default
# `pairsmith`); DRY_RUN=1 prints the command instead of running it.
set -euo pipefail

usage() {
  sed -n '2,22p' "$0" >&2
  exit 2
}

(($# >= 3)) || usage
WORKERS="$1"
INPUT="$2"
OUT="$3"
shift 3

: "${PROJECT:?set PROJECT (the Google Cloud project)}"
: "${REGION:?set REGION (a Dataflow region, e.g. us-central1)}"
: "${BUCKET:?set BUCKET (gs://BUCKET: staging and temp files go under it)}"
: "${IMAGE:?set IMAGE (the pushed infra/Dockerfile.beam-sdk image)}"
MAX_WORKERS="${MAX_WORKERS:-20}"
PAIRSMITH="${PAIRSMITH:-pairsmith}"
BUCKET="${BUCKET%/}"
[[ "$BUCKET" == gs://* ]] || { echo "BUCKET must be a gs:// URL, got $BUCKET" >&2; exit 2; }
[[ "$OUT" == gs://* ]] || echo "warning: OUT=$OUT is not on gs://; Dataflow workers cannot write a local path" >&2

options=(
  "--project=$PROJECT"
  "--region=$REGION"
  "--temp_location=$BUCKET/dataflow/temp"
  "--staging_location=$BUCKET/dataflow/staging"
  "--sdk_container_image=$IMAGE"
  "--sdk_location=container"  # the SDK (and pairsmith) come from the image; nothing is staged from here
  "--max_num_workers=$MAX_WORKERS"
  "--autoscaling_algorithm=THROUGHPUT_BASED"
)
case "$WORKERS" in
  cpu)
    options+=("--machine_type=${MACHINE_TYPE:-n2-standard-8}" "--disk_size_gb=50")
    ;;
  gpu)
    options+=(
      "--machine_type=${MACHINE_TYPE:-g2-standard-8}"  # the G2 family is the one with L4 GPUs
      "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"
      # one SDK process per VM, so one copy of each model on the GPU instead of one per vCPU
      "--experiments=no_use_multiple_sdk_containers"
      "--disk_size_gb=100"  # the CUDA image is several GB
    )
    ;;
  *) usage ;;
esac
[[ -n "${SERVICE_ACCOUNT:-}" ]] && options+=("--service_account_email=$SERVICE_ACCOUNT")
[[ -n "${NETWORK:-}" ]] && options+=("--network=$NETWORK")
[[ -n "${SUBNETWORK:-}" ]] && options+=("--subnetwork=$SUBNETWORK")

# runner.options is a YAML list; JSON is YAML, and json.dumps quotes the ';' and ':' inside the options.
options_json="$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "${options[@]}")"

cmd=(
  "$PAIRSMITH" run --input "$INPUT" --out "$OUT"
  --set runner.runner=DataflowRunner
  --set "runner.options=$options_json"
  "$@"
)
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  printf '%q ' "${cmd[@]}"
  echo
else
  exec "${cmd[@]}"
fi
