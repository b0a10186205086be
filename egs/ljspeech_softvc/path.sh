# shellcheck shell=bash
# Environment of the recipe: the project's venv, offline caches, one thread per job unless told otherwise.
RECIPE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT_ROOT=$(cd "$RECIPE_ROOT/../.." && pwd)
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f "$PROJECT_ROOT/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$PROJECT_ROOT/.venv/bin/activate"
fi
export PYTHONUNBUFFERED=1 NLTK_DATA=${NLTK_DATA:-/nonexistent} HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
