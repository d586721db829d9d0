"""Renders a kustomization directory like `kubectl kustomize DIR`, for machines without kubectl
or kustomize (scripts/k8s-check.sh uses it only then, and compares it with kubectl's output
when kubectl is there).

It knows exactly what k8s/ uses and refuses anything else by name, so it never renders a
kustomization differently in silence:
  resources (files, and directories holding a kustomization.yaml), namespace, images (name,
  newName, newTag), generatorOptions (labels), configMapGenerator (envs, files, literals;
  names suffixed with kustomize's content hash, references to them rewritten), and patches
  given as JSON 6902 operations with a target (group, version, kind, name).

  python3 scripts/lib/kustomize_lite.py DIR    multi-document YAML on stdout
Needs PyYAML.
"""

import hashlib
import json
import os
import sys

import yaml

KNOWN = {
    "apiVersion", "kind", "resources", "namespace", "images", "generatorOptions",
    "configMapGenerator", "patches",
}
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PersistentVolume", "PriorityClass", "StorageClass",
}


class Unsupported(Exception):
    pass


def fail(where, what):
    raise Unsupported(f"{where}: {what} (kustomize_lite supports only what k8s/ uses)")


def only(where, mapping, allowed):
    extra = sorted(set(mapping) - set(allowed))
    if extra:
        fail(where, f"unsupported field(s) {', '.join(extra)}")


def kustomize_hash(data):
    """kustomize's ConfigMap name suffix: sha256 of Go's json.Marshal of kind, name and data,
    where the name is always empty (kustomize looks it up as one key, "metadata/name")."""
    text = json.dumps({"data": data, "kind": "ConfigMap", "name": ""},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def env_file(path):
    """kustomize's env file: NAME=VALUE lines, `#` comments at the start of a line only."""
    pairs = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f.read().splitlines()):
            if number == 0:
                line = line.lstrip("\ufeff")
            line = line.lstrip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                fail(path, f"line {number + 1} has no '=' (values from the environment are not supported)")
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs


def generate(directory, spec, options):
    where = f"{directory}: configMapGenerator {spec.get('name')}"
    only(where, spec, {"name", "envs", "files", "literals"})
    data = {}
    for env in spec.get("envs", []):
        data.update(env_file(os.path.join(directory, env)))
    for entry in spec.get("files", []):
        key, _, path = entry.rpartition("=") if "=" in entry else (os.path.basename(entry), "", entry)
        with open(os.path.join(directory, path), encoding="utf-8") as f:
            data[key] = f.read()
    for literal in spec.get("literals", []):
        key, value = literal.split("=", 1)
        data[key] = value
    name = spec["name"]
    metadata = {"name": f"{name}-{kustomize_hash(data)}"}
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    return name, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def rename_config_maps(node, renamed):
    """Rewrites every configMapRef / configMapKeyRef / configMap volume naming a generated map."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("configMapRef", "configMapKeyRef", "configMap") and isinstance(value, dict):
                if value.get("name") in renamed:
                    value["name"] = renamed[value["name"]]
            rename_config_maps(value, renamed)
    elif isinstance(node, list):
        for value in node:
            rename_config_maps(value, renamed)


def split_image(image):
    if "@" in image:
        fail(image, "image digests")
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:]
    return image, None


def set_images(node, images):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    name, tag = split_image(container.get("image", ""))
                    for image in images:
                        if image["name"] == name:
                            name = image.get("newName", name)
                            tag = str(image["newTag"]) if "newTag" in image else tag
                            container["image"] = f"{name}:{tag}" if tag else name
            else:
                set_images(value, images)
    elif isinstance(node, list):
        for value in node:
            set_images(value, images)


def pointer(path):
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json_patch(obj, operations, where):
    for op in operations:
        only(where, op, {"op", "path", "value"})
        *parents, last = pointer(op["path"])
        node = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if op["op"] == "add":
                node.insert(index, op["value"])
            elif op["op"] == "replace":
                node[index] = op["value"]
            elif op["op"] == "remove":
                del node[index]
            else:
                fail(where, f"op {op['op']}")
        else:
            if op["op"] in ("add", "replace"):
                if op["op"] == "replace" and last not in node:
                    fail(where, f"replace of missing {op['path']}")
                node[last] = op["value"]
            elif op["op"] == "remove":
                del node[last]
            else:
                fail(where, f"op {op['op']}")


def matches(obj, target):
    api = obj.get("apiVersion", "")
    group, _, version = api.rpartition("/")
    return all((
        target.get("group", group) == group,
        target.get("version", version) == version,
        target.get("kind", obj.get("kind")) == obj.get("kind"),
        target.get("name", obj["metadata"].get("name")) == obj["metadata"].get("name"),
    ))


def build(directory):
    path = os.path.join(directory, "kustomization.yaml")
    with open(path, encoding="utf-8") as f:
        k = yaml.safe_load(f) or {}
    only(path, k, KNOWN)
    objects = []
    for resource in k.get("resources", []):
        full = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(full):
            objects.extend(build(full))
        else:
            with open(full, encoding="utf-8") as f:
                objects.extend(doc for doc in yaml.safe_load_all(f) if doc)
    options = k.get("generatorOptions", {}) or {}
    only(f"{path}: generatorOptions", options, {"labels"})
    renamed = {}
    for spec in k.get("configMapGenerator", []):
        name, generated = generate(directory, spec, options)
        renamed[name] = generated["metadata"]["name"]
        objects.append(generated)
    for obj in objects:
        rename_config_maps(obj.get("spec", {}), renamed)
    for patch in k.get("patches", []):
        only(f"{path}: patch", patch, {"target", "patch"})
        target = patch.get("target") or fail(path, "a patch without a target")
        only(f"{path}: patch target", target, {"group", "version", "kind", "name"})
        operations = yaml.safe_load(patch["patch"])
        if not isinstance(operations, list):
            fail(path, "strategic-merge patches")
        hits = [obj for obj in objects if matches(obj, target)]
        if not hits:
            fail(path, f"patch target {target} matches nothing")
        for obj in hits:
            json_patch(obj, operations, f"{path}: patch")
    if "namespace" in k:
        for obj in objects:
            if obj["kind"] == "Namespace":
                obj["metadata"]["name"] = k["namespace"]
            elif obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = k["namespace"]
    if k.get("images"):
        for image in k["images"]:
            only(f"{path}: images", image, {"name", "newName", "newTag"})
        for obj in objects:
            set_images(obj.get("spec", {}), k["images"])
    return objects


def block_strings(dumper, text):
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: kustomize_lite.py DIR")
    try:
        objects = build(sys.argv[1])
    except Unsupported as e:
        sys.exit(f"kustomize_lite: {e}")
    yaml.SafeDumper.add_representer(str, block_strings)
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False))


if __name__ == "__main__":
    main()
