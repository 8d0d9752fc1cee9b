# -*- coding: utf-8 -*-
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes and ages as people read them, the same in every message, report and plan."""

from __future__ import annotations


def size_text(size):
    """``512 B``, ``8.5 MiB``, ``1.2 TiB`` from a number of bytes."""
    size = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return ("%d %s" % (size, unit)) if unit == "B" else ("%.1f %s" % (size, unit))
        size /= 1024.0
    return "%.1f TiB" % size  # pragma: no cover - the loop returns at TiB


def age_text(seconds):
    """``45 s``, ``12 min``, ``5.5 h``, ``3.2 d`` from a number of seconds."""
    seconds = int(seconds or 0)
    if seconds < 120:
        return "%d s" % seconds
    if seconds < 3600:
        return "%d min" % (seconds // 60)
    if seconds < 2 * 86400:
        return "%.1f h" % (seconds / 3600.0)
    return "%.1f d" % (seconds / 86400.0)
