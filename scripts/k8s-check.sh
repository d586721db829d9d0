#!/usr/bin/env bash
# Renders the Kubernetes manifests (k8s/base and every overlay in k8s/overlays) and validates
# every rendered object, and the Secret template, against the Kubernetes schemas with
# `kubernetes-validate --strict` (an unknown or misplaced field is an error). Prints one line
# per rendered directory and exits non-zero on the first problem. tests/k8s_manifests.rs runs it.
#
# Renderer: `kubectl kustomize`, else `kustomize build`, else scripts/lib/kustomize_lite.py
# (Python, the subset k8s/ uses). When kubectl is there the Python renderer must render the same
# objects, so the fallback stays faithful. SERAI_K8S_RENDERER=kubectl|kustomize|python picks one.
#
# kubernetes-validate comes from the venv scripts/lib/deps.sh installs (`scripts/test.sh` does
# it; by hand: bash scripts/lib/deps.sh test); SERAI_K8S_VENV names another venv.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${SERAI_K8S_VENV:-.serai/k8s-venv}
validate=$venv/bin/kubernetes-validate
python=$venv/bin/python
if [ ! -x "$validate" ] || [ ! -x "$python" ]; then
    echo "k8s-check: no kubernetes-validate in $venv: run scripts/test.sh or" \
        "\`bash scripts/lib/deps.sh test\` (they install it with pip)" >&2
    exit 2
fi

renderer=${SERAI_K8S_RENDERER:-}
if [ -z "$renderer" ]; then
    if command -v kubectl >/dev/null 2>&1; then
        renderer=kubectl
    elif command -v kustomize >/dev/null 2>&1; then
        renderer=kustomize
    else
        renderer=python
    fi
fi

render() {
    case "$1" in
        kubectl) kubectl kustomize "$2" ;;
        kustomize) kustomize build "$2" ;;
        python) "$python" scripts/lib/kustomize_lite.py "$2" ;;
        *) echo "k8s-check: unknown renderer $1 (kubectl, kustomize or python)" >&2; return 2 ;;
    esac
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

dirs=(k8s/base)
for overlay in k8s/overlays/*/; do
    [ -f "$overlay/kustomization.yaml" ] && dirs+=("${overlay%/}")
done

for dir in "${dirs[@]}"; do
    file=$out/$(echo "$dir" | tr / _).yaml
    render "$renderer" "$dir" >"$file" || { echo "k8s-check: $renderer could not render $dir" >&2; exit 1; }
    if [ "$renderer" = kubectl ]; then
        render python "$dir" >"$file.python" || { echo "k8s-check: kustomize_lite.py could not render $dir" >&2; exit 1; }
        "$python" - "$file" "$file.python" <<'PY' || { echo "k8s-check: kustomize_lite.py renders $dir differently from kubectl" >&2; exit 1; }
import sys, yaml
def objects(path):
    with open(path) as f:
        return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
                for o in yaml.safe_load_all(f) if o}
real, lite = objects(sys.argv[1]), objects(sys.argv[2])
for key in sorted(set(real) | set(lite), key=str):
    if real.get(key) != lite.get(key):
        print(f"  {key}: kubectl {'has' if key in real else 'lacks'} it, "
              f"kustomize_lite {'has' if key in lite else 'lacks'} it, or they differ", file=sys.stderr)
sys.exit(0 if real == lite else 1)
PY
    fi
    count=$(grep -c '^kind:' "$file" || true)
    "$validate" --strict --quiet "$file" || { echo "k8s-check: $dir: invalid (rendered with $renderer)" >&2; exit 1; }
    echo "k8s-check: $dir: $count objects rendered ($renderer) and valid (kubernetes-validate --strict)"
done
"$validate" --strict --quiet k8s/base/secret.template.yaml \
    || { echo "k8s-check: k8s/base/secret.template.yaml: invalid" >&2; exit 1; }
echo "k8s-check: k8s/base/secret.template.yaml: valid"
