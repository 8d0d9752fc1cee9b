# -*- coding: utf-8 -*-
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway copy of a compose project for a full-stack drill, made from its resolved configuration
(``compose config``): nothing it runs may touch production. Fixed container names go (compose names them for the
drill's project), named and external volumes and networks become the drill's own, published ports move to
ephemeral ports on loopback, bind mounts from outside the drill's copy are read-only, and everything carries the
labels a later run sweeps by."""

from __future__ import annotations

import os

DRILL_LABEL = "io.stackops.drill"
DRILL_OF_LABEL = "io.stackops.drill.of"
RENDERED_FILE = ".stackops-drill.compose.yml"


def _target_port(port):
    """The container side of a published port, in any of compose's syntaxes."""
    if isinstance(port, dict):
        return "%s/%s" % (port["target"], port.get("protocol") or "tcp")
    text = str(port)
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
    return "%s/%s" % (text.rsplit(":", 1)[-1], proto)


def _drill_mount(volume, root):
    """A service's volume entry with a bind mount from outside ``root`` made read-only; the rest as it is."""
    if isinstance(volume, dict):
        if volume.get("type") == "bind" and not _inside(volume.get("source", ""), root):
            return dict(volume, read_only=True)
        return volume
    parts = str(volume).split(":")
    if len(parts) >= 2 and os.path.isabs(parts[0]) and not _inside(parts[0], root):
        mode = [m for m in (parts[2].split(",") if len(parts) > 2 else []) if m not in ("rw", "ro")]
        return ":".join(parts[:2] + [",".join(["ro"] + mode)])
    return volume


def _inside(path, root):
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def drill_config(config, drill_of, root):
    """The drill's compose configuration from ``config`` (the source project's, resolved): ``drill_of`` names the
    source project in the labels; bind mounts from outside ``root`` become read-only. Returns (config, what was
    changed, in sentences)."""
    labels = {DRILL_LABEL: "true", DRILL_OF_LABEL: drill_of}
    changes = []
    services = {}
    for name, service in (config.get("services") or {}).items():
        service = dict(service)
        if service.pop("container_name", None):
            changes.append("%s: no fixed container name" % name)
        if service.get("ports"):
            service["ports"] = ["127.0.0.1::%s" % _target_port(p) for p in service["ports"]]
            changes.append("%s: ports on ephemeral loopback ports" % name)
        mounts = [_drill_mount(v, root) for v in service.get("volumes") or []]
        if mounts != list(service.get("volumes") or []):
            changes.append("%s: bind mounts from outside the drill's copy read-only" % name)
        if mounts:
            service["volumes"] = mounts
        service["labels"] = dict(_labels(service.get("labels")), **labels)
        services[name] = service
    rendered = dict(config, services=services)
    for section in ("volumes", "networks"):
        own = {}
        for name, item in (config.get(section) or {}).items():
            item = dict(item or {})
            if item.pop("external", None):
                changes.append("%s %s: the drill's own, not the external one" % (section[:-1], name))
            item.pop("name", None)
            item["labels"] = dict(_labels(item.get("labels")), **labels)
            own[name] = item
        if own:
            rendered[section] = own
    # compose makes a "default" network for services that name none: labelled too, or the sweep and state=absent
    # would never find it and every drill would leave one behind (docker runs out of address pools at ~30)
    if any(_on_default_network(service) for service in services.values()):
        networks = rendered.setdefault("networks", {})
        default = dict(networks.get("default") or {})
        default["labels"] = dict(_labels(default.get("labels")), **labels)
        networks["default"] = default
    return rendered, changes


def _on_default_network(service):
    if service.get("network_mode"):
        return False
    networks = service.get("networks")
    return not networks or "default" in networks


def _labels(labels):
    if isinstance(labels, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in labels)
    return dict(labels or {})


def published_ports(container):
    """``{"8080": host port}`` of a running container (docker SDK object), TCP only."""
    ports = {}
    for spec, bindings in ((container.attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        port, _slash, proto = spec.partition("/")
        if proto == "tcp" and bindings:
            ports[port] = int(bindings[0]["HostPort"])
    return ports
