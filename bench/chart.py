"""Draws the chart of a benchmark results file (bench/run.ts writes both).

    python bench/chart.py RESULTS.json OUT.png

Left: predictions/s at the headline replica count for every compared
configuration, at each connection count (bars: median of the rounds; error
bars: min-max). Middle: p99 latency of the same runs. Right:
our stack through Nginx over HTTPS by number of replicas.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

SERIES = [
    ("tutorial", "https", "tutorial via Nginx HTTPS", "#b0b0b0"),
    ("tutorial", "direct", "tutorial direct", "#d9d9d9"),
    ("ours", "https", "ours via Nginx HTTPS", "#1f77b4"),
    ("ours", "direct", "ours direct", "#9ecae1"),
    ("constant", "https", "constant JSON via Nginx HTTPS (floor)", "#2ca02c"),
]


def find(cases, stack, path, replicas, connections):
    for case in cases:
        if (case["stack"], case["path"], case["replicas"], case["connections"]) == (stack, path, replicas, connections):
            return case
    return None


def main(results_file, out_file):
    with open(results_file, encoding="utf-8") as file:
        results = json.load(file)
    cases = results["cases"]
    headline = results["settings"]["headlineReplicas"]
    connections = results["settings"]["connections"]
    replica_counts = sorted({c["replicas"] for c in cases if c["stack"] == "ours" and c["path"] == "https"})

    fig, (ax_rps, ax_p99, ax_scale) = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [3, 3, 2]})
    width = 0.8 / len(SERIES)
    for index, (stack, path, label, color) in enumerate(SERIES):
        xs, rps, low, high, p99 = [], [], [], [], []
        for position, conns in enumerate(connections):
            case = find(cases, stack, path, headline, conns)
            if case is None:
                continue
            m = case["median"]
            xs.append(position + (index - (len(SERIES) - 1) / 2) * width)
            rps.append(m["rps"])
            low.append(m["rps"] - m["rpsMin"])
            high.append(m["rpsMax"] - m["rps"])
            p99.append(m["p99"])
        if not xs:
            continue
        ax_rps.bar(xs, rps, width, yerr=[low, high], capsize=3, label=label, color=color, edgecolor="#333", linewidth=0.5)
        for x, value in zip(xs, rps, strict=True):
            ax_rps.text(x, value, f"{value:.0f}", ha="center", va="bottom", fontsize=7)
        ax_p99.bar(xs, p99, width, label=label, color=color, edgecolor="#333", linewidth=0.5)
        for x, value in zip(xs, p99, strict=True):
            ax_p99.text(x, value, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
    for ax in (ax_rps, ax_p99):
        ax.set_xticks(range(len(connections)), [f"{c} connections" for c in connections])
        ax.grid(axis="y", alpha=0.3)
    ax_rps.set_title(f"Requests/s, {headline} replicas")
    ax_rps.set_ylabel("requests per second (median of rounds)")
    ax_rps.set_ylim(top=ax_rps.get_ylim()[1] * 1.3)  # room for the legend above the bars
    ax_rps.legend(fontsize=8, loc="upper left", ncol=2)
    ax_p99.set_title(f"p99 latency, {headline} replicas")
    ax_p99.set_ylabel("p99 latency, ms (median of rounds)")

    for conns, marker in zip(connections, "os^v", strict=False):
        points = [(n, find(cases, "ours", "https", n, conns)) for n in replica_counts]
        points = [(n, c["median"]["rps"]) for n, c in points if c is not None]
        if points:
            ax_scale.plot([n for n, _ in points], [v for _, v in points], marker=marker, label=f"ours via Nginx HTTPS, {conns} conns")
        tutorial = find(cases, "tutorial", "https", headline, conns)
        if tutorial is not None:
            ax_scale.axhline(tutorial["median"]["rps"], linestyle=":", color="#888")
    ax_scale.set_xticks(replica_counts)
    ax_scale.set_xlabel("replicas")
    ax_scale.set_ylim(bottom=0)
    ax_scale.set_title("Scaling with replicas (dotted: tutorial)")
    ax_scale.grid(alpha=0.3)
    ax_scale.legend(fontsize=8, loc="lower right")

    machine = results["machine"]
    fig.suptitle(
        f"mlapi benchmark ({results['mode']}), {results['finishedAt']}: {machine['nproc']} CPUs {machine['cpuModel']}, "
        f"{machine['nginx']}, wrk -t {results['settings']['wrkThreads']}, {results['settings']['rounds']} rounds x {results['settings']['durationSeconds']} s",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
