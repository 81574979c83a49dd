#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Draws bench/results/ipc.png from the CSV files px_bench_ipc writes (medians over repetitions).

    plot_ipc.py RESULTS_DIR OUTPUT_PNG

Four panels: one-way latency of a 4 KiB frame per transport and core placement; 8 MiB frames per
second per transport; one-way latency against payload; frames per second against payload.
Only matplotlib is needed (the CSV files are read with the standard library).
"""
import csv
import math
import os
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {
    "parallax": "#d62728",
    "iceoryx": "#1f77b4",
    "socket": "#7f7f7f",
    "pipe": "#bcbd22",
    "eventfd": "#9467bd",
    "futex": "#8c564b",
    "spin": "#2ca02c",
}


def read(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if not r.get("error")]


def median(values):
    return statistics.median(values) if values else math.nan


def size_label(n):
    n = int(n)
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def colour(transport, mode):
    return COLOURS.get(transport, "#333333")


def headroom(ax):
    """Room above the bars of a log axis for the legend."""
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * 30)


def latency_panel(ax, rows):
    # (label, placement) -> one-way medians in us
    cells = defaultdict(list)
    labels, placements = [], []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])
        if r["placement"] not in placements:
            placements.append(r["placement"])
        cells[(r["label"], r["placement"])].append(float(r["rtt_p50_ns"]) / 2e3)
    if not labels:
        ax.set_axis_off()
        return
    names = {"unpinned": "unpinned", "cross": "cross-core", "same": "same core"}
    hatches = {"unpinned": "", "cross": "//", "same": ".."}
    width = 0.8 / max(1, len(placements))
    transport_of = {r["label"]: (r["transport"], r["mode"]) for r in rows}
    for j, p in enumerate(placements):
        ys = [median(cells[(lab, p)]) for lab in labels]
        xs = [i + (j - (len(placements) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, ys, width, label=names.get(p, p), hatch=hatches.get(p, ""),
               color=[colour(*transport_of[lab]) for lab in labels], edgecolor="black",
               linewidth=0.4, alpha=1.0 - 0.25 * j)
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("one-way latency, us (log)")
    ax.set_title("4 KiB frame, one-way latency (half a ping-pong round trip; lower is better)",
                 fontsize=9)
    headroom(ax)
    ax.legend(fontsize=7, title="placement", title_fontsize=7, ncol=3, loc="upper center")
    ax.grid(axis="y", which="both", alpha=0.3)


def frames_panel(ax, rows):
    cells = defaultdict(list)
    labels, groups = [], []
    for r in rows:
        if r["label"] not in labels:
            labels.append(r["label"])
        group = (r["consumer"], r.get("placement", "unpinned"))
        if group not in groups:
            groups.append(group)
        secs = float(r["seconds"])
        if secs > 0:
            cells[(r["label"], group)].append(float(r["frames"]) / secs)
    if not labels:
        ax.set_axis_off()
        return
    groups.sort(key=lambda g: (g[1] != "unpinned", g[0] != "touch"))
    names = {"touch": "reads 8 bytes", "read_all": "reads every byte",
             "unpinned": "unpinned", "cross": "cross-core"}
    transport_of = {r["label"]: (r["transport"], r["mode"]) for r in rows}
    width = 0.8 / len(groups)
    for j, group in enumerate(groups):
        ys = [median(cells[(lab, group)]) for lab in labels]
        xs = [i + (j - (len(groups) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, ys, width, label=f"{names[group[1]]}, consumer {names[group[0]]}",
               hatch=["", "//", "..", "xx"][j % 4],
               color=[colour(*transport_of[lab]) for lab in labels], edgecolor="black",
               linewidth=0.4, alpha=1.0 - 0.2 * j)
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("frames per second (log)")
    ax.set_title("8 MiB frames streamed to another process (higher is better)", fontsize=9)
    headroom(ax)
    ax.legend(fontsize=7, ncol=2, loc="upper center")
    ax.grid(axis="y", which="both", alpha=0.3)


def sweep_panels(ax_lat, ax_fps, rows):
    if not rows:
        ax_lat.set_axis_off()
        ax_fps.set_axis_off()
        return
    series = defaultdict(lambda: defaultdict(list))  # (label, kind) -> payload -> values
    meta = {}
    for r in rows:
        v = float(r["value"])
        if math.isnan(v):
            continue
        series[(r["label"], r["kind"])][int(r["payload"])].append(v)
        meta[r["label"]] = (r["transport"], r["mode"])
    for (label, kind), points in series.items():
        xs = sorted(points)
        ys = [median(points[x]) for x in xs]
        if kind == "pingpong_rtt_ns":
            ax, ys = ax_lat, [y / 2e3 for y in ys]
        else:
            ax = ax_fps
        ax.plot(xs, ys, marker="o", markersize=3, label=label, color=colour(*meta[label]))
    for ax in (ax_lat, ax_fps):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ticks = sorted({int(r["payload"]) for r in rows})
        ax.set_xticks(ticks)
        ax.set_xticklabels([size_label(t) for t in ticks], rotation=35, fontsize=7)
        ax.set_xlabel("payload per frame")
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=7)
    where = {"same": "both on one core", "cross": "one core each", "unpinned": "unpinned"}
    placement = where.get(rows[0].get("placement", ""), "")
    suffix = f", {placement}" if placement else ""
    ax_lat.set_ylabel("one-way latency, us (log)")
    ax_lat.set_title("one-way latency vs payload (half a ping-pong round trip; lower is "
                     f"better{suffix})", fontsize=9)
    ax_fps.set_ylabel("frames per second (log)")
    ax_fps.set_title("throughput vs payload (consumer reads 8 bytes per frame; higher is "
                     f"better{suffix})", fontsize=9)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    results, out = sys.argv[1], sys.argv[2]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    latency_panel(axes[0][0], read(os.path.join(results, "ipc_latency.csv")))
    frames_panel(axes[0][1], read(os.path.join(results, "ipc_frames.csv")))
    sweep_panels(axes[1][0], axes[1][1], read(os.path.join(results, "ipc_sweep.csv")))
    context = ""
    summary = os.path.join(results, "ipc_summary.md")
    if os.path.exists(summary):
        for line in open(summary):
            if line.startswith("Measured on:"):
                context = line.strip()
    fig.suptitle("libparallax vs the alternatives, two processes on one machine (medians)\n"
                 + context, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot_ipc: wrote {out}")


if __name__ == "__main__":
    main()
