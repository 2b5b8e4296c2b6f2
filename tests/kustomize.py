"""A renderer of the Kustomize subset deploy/kubernetes/ uses, so the suite checks the manifests with no kubectl or
kustomize binary (neither installs from the package registries the project uses).

The subset: `resources` (files, or folders with a kustomization.yaml), `namespace`, `images` (newName, newTag,
digest) and `patches` given by `path` (strategic merge by kind and name: maps merge, lists of maps that carry a
`name` merge by it, other lists are replaced — what kustomize does for the fields the patches touch: replicas,
sizes, ConfigMap data). Any other kustomization field stops the renderer, so it never renders something other
than what `kubectl kustomize` would: a field it does not know is a field the manifests must not use until it does.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
# Kinds that live outside any namespace (of those Canvass's manifests use).
CLUSTER_SCOPED = {"Namespace"}
POD_OWNERS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}


class KustomizeError(ValueError):
    pass


def load_documents(path: Path) -> list[Obj]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc:
            raise KustomizeError(f"{path}: a document without a kind")
    return docs


def render(folder: Path) -> list[Obj]:
    """The objects `kubectl kustomize folder` prints (in the order of the resources)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(
            f"{folder}: kustomization fields this renderer does not support: {sorted(unknown)}"
        )
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        objects += render(target) if target.is_dir() else load_documents(target)
    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise KustomizeError(f"{folder}: only patches given by a path are supported: {patch_entry}")
        for patch in load_documents(folder / patch_entry["path"]):
            apply_patch(objects, patch)
    for image in spec.get("images", []):
        set_image(objects, image)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise KustomizeError(f"{folder}: objects defined twice: {sorted(duplicates)}")
    return objects


def merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *patch])
    ):
        merged = list(base)
        for item in patch:
            at = next((n for n, b in enumerate(merged) if b["name"] == item["name"]), None)
            if at is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[at] = merge(merged[at], item)
        return merged
    return copy.deepcopy(patch)


def apply_patch(objects: list[Obj], patch: Obj) -> None:
    key = (patch["kind"], patch["metadata"]["name"])
    for n, obj in enumerate(objects):
        if (obj["kind"], obj["metadata"]["name"]) == key:
            objects[n] = merge(obj, patch)
            return
    raise KustomizeError(f"a patch for {key}, which no resource defines")


def pod_containers(obj: Obj) -> list[Obj]:
    if obj["kind"] not in POD_OWNERS:
        return []
    spec = obj["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def set_image(objects: list[Obj], image: Obj) -> None:
    for obj in objects:
        for container in pod_containers(obj):
            name, _, tag = container["image"].partition(":")
            if name != image["name"]:
                continue
            new = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{new}@{image['digest']}"
            else:
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new}:{new_tag}" if new_tag else new
