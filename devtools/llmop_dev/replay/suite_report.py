"""The benchmark grid's report: a Markdown table of every cell and a PNG per spec against the reactive frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmop_dev.replay import reach, suite

SHOWN = ("llmop", "hpa", "keda", "oracle")


def _fmt(row: dict[str, Any]) -> str:
    return f"{row['slo_minutes_pct']:.1f} / {row['gpu_hours']:.2f}"


def _gap(cell: dict[str, Any], policy: str) -> str:
    gap = suite.frontier_gap(cell, policy)
    return "-" if gap is None else f"{gap:+.1f}"


def summary(cells: list[dict[str, Any]]) -> list[str]:
    """Per spec, gpu-speed and start-up: means over the traces of each policy's SLO-minutes and GPU-hours, and of
    llmop's gap to the frontier at its own GPU-hours."""
    lines = [
        "| spec | gpu-speed | start-up s | traces | llmop | frontier gap | hpa | keda | oracle | best frontier point |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    groups: dict[tuple[str, float, float], list[dict[str, Any]]] = {}
    for cell in cells:
        groups.setdefault((cell["spec"], cell["gpu_speed"], cell["startup_s"]), []).append(cell)
    for (spec, speed, startup), group in sorted(groups.items()):

        def mean_of(policy: str, group: list[dict[str, Any]] = group) -> str:
            rows = [next(r for r in c["rows"] if r["policy"] == policy) for c in group]
            return (f"{suite.mean([r['slo_minutes_pct'] for r in rows]):.1f} / "
                    f"{suite.mean([r['gpu_hours'] for r in rows]):.2f}")  # fmt: skip

        gaps = [g for c in group if (g := suite.frontier_gap(c, "llmop")) is not None]
        best = [max(c["frontier"], key=lambda p: (p["slo_minutes_pct"], -p["gpu_hours"])) for c in group]
        best_text = (f"{suite.mean([p['slo_minutes_pct'] for p in best]):.1f} / "
                     f"{suite.mean([p['gpu_hours'] for p in best]):.2f}")  # fmt: skip
        lines.append(
            f"| {spec} | {speed:g} | {startup:g} | {len(group)} | {mean_of('llmop')} | {suite.mean(gaps):+.1f} | "
            f"{mean_of('hpa')} | {mean_of('keda')} | {mean_of('oracle')} | {best_text} |"
        )
    return lines


def _base(name: str) -> str:
    """The row an ablation changes one thing of: `llmop a b` against `llmop a`, `llmop a` against `llmop`."""
    return name.rsplit(" ", 1)[0]


def ablations(cells: list[dict[str, Any]]) -> list[str]:
    """llmop against itself with one setting changed (`bench/autoscale.py --rerun llmop --set FIELD=VALUE`): per
    setting, spec and gpu-speed, means over the cells that have both rows. A row named `llmop a b` is compared
    with `llmop a` (b changed on top of a), so every line is one change."""
    names = sorted({r["policy"] for c in cells for r in c["rows"] if r["policy"].startswith("llmop ")})
    if not names:
        return []
    lines = [
        "| llmop with | spec | gpu-speed | cells | SLO-min % / GPU-h | compared with | frontier gap (compared) "
        "| dominates hpa+keda (compared) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
        for cell in cells:
            policies = {r["policy"] for r in cell["rows"]}
            if name in policies and _base(name) in policies:
                groups.setdefault((cell["spec"], cell["gpu_speed"]), []).append(cell)
        for (spec, speed), group in sorted(groups.items()):

            def mean_of(policy: str, group: list[dict[str, Any]] = group) -> str:
                rows = [next(r for r in c["rows"] if r["policy"] == policy) for c in group]
                return (f"{suite.mean([r['slo_minutes_pct'] for r in rows]):.1f} / "
                        f"{suite.mean([r['gpu_hours'] for r in rows]):.2f}")  # fmt: skip

            def gap(policy: str, group: list[dict[str, Any]] = group) -> str:
                values = [g for c in group if (g := suite.frontier_gap(c, policy)) is not None]
                return f"{suite.mean(values):+.1f}"

            def wins(policy: str, group: list[dict[str, Any]] = group) -> int:
                rows = [{r["policy"]: r for r in c["rows"]} for c in group]
                return sum(suite.dominates(r[policy], r[b]) for r in rows for b in suite.BASELINES)

            base = _base(name)
            lines.append(
                f"| `{name[len('llmop ') :]}` | {spec} | {speed:g} | {len(group)} | {mean_of(name)} | "
                f"`{base}` {mean_of(base)} | {gap(name)} ({gap(base)}) | {wins(name)} ({wins(base)}) of "
                f"{2 * len(group)} |"
            )
    return lines


BEGIN, END = "<!-- autoscale:begin -->", "<!-- autoscale:end -->"


def headline(cells: list[dict[str, Any]], verdicts: dict[str, Any], skipped: list[dict[str, Any]],
             reached: list[dict[str, Any]]) -> str:  # fmt: skip
    """The verdicts (llmop's, and the references' from `reach.reach`) and the per-spec means, for BENCHMARKS.md
    (between its autoscale markers)."""
    frontier, baselines, slow = verdicts["frontier"], verdicts["baselines"], verdicts["gpu_speed_0_8"]
    lines = [
        f"Written by `python bench/autoscale.py --report` from {len(cells)} replayed cells "
        f"({len(skipped)} not replayed: no load meets the SLO there); every cell is in `bench/results/autoscale.md`.",
        "",
        "| target (issue 11) | result |",
        "| --- | --- |",
        f"| llmop within 1 SLO-minute point of the reactive frontier at its own GPU-hours, every cell | "
        f"{frontier['met']} of {verdicts['cells']} cells |",
        f"| llmop dominates `hpa` and `keda` in >= 90 % of (cell, baseline) pairs | {baselines['dominated']} of "
        f"{baselines['pairs']} ({baselines['pct']:.1f} %) |",
        f"| gpu-speed 0.8 costs llmop <= 3 SLO-minute points against 1.0 | {slow['within_3pt']} of "
        f"{slow['compared']} |",
        "",
        "The same verdicts for the references (a fixed point is one headroom and scale-in hold in every cell; "
        "`bench/results/autoscale.md` has each):",
        "",
        *reach.lines(reach.condensed(reached)),
        "",
        "Means over the traces (SLO-minutes % / GPU-hours):",
        "",
        *summary(cells),
    ]
    table = ablations(cells)
    if table:
        lines += ["", "Ablations: llmop with one default changed, on the same cells:", "", *table]
    return "\n".join(lines) + "\n"


def update_benchmarks(path: Path, text: str) -> bool:
    """Replace what is between the autoscale markers of BENCHMARKS.md; False when the markers are missing."""
    document = path.read_text(encoding="utf-8")
    if BEGIN not in document or END not in document:
        return False
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}", encoding="utf-8")
    return True


def markdown(cells: list[dict[str, Any]], verdicts: dict[str, Any], skipped: list[dict[str, Any]],
             reached: list[dict[str, Any]]) -> str:  # fmt: skip
    """Every cell: SLO-minutes % / GPU-hours per policy, llmop's gap to the frontier, and the verdicts (llmop's, and
    the references' from `reach.reach`)."""
    lines = [
        "## Autoscaling benchmark (independent simulator)",
        "",
        f"{verdicts['cells']} cells. Verdicts: llmop within 1 SLO-minute point of the perfect-knowledge reactive "
        f"frontier at its own GPU-hours in {verdicts['frontier']['met']} of {verdicts['cells']} cells; llmop "
        f"dominates hpa/keda in {verdicts['baselines']['dominated']} of {verdicts['baselines']['pairs']} pairs "
        f"({verdicts['baselines']['pct']:.1f} %); with gpu-speed 0.8 llmop loses at most 3 points against 1.0 in "
        f"{verdicts['gpu_speed_0_8']['within_3pt']} of {verdicts['gpu_speed_0_8']['compared']} comparisons.",
        "",
        "Each figure: SLO-minutes % / GPU-hours. Frontier gap: llmop's SLO-minutes minus the frontier's at llmop's "
        "GPU-hours (points; negative = below the frontier).",
        "",
        "Means over the traces:",
        "",
        *summary(cells),
        "",
        "Every cell:",
        "",
        "| spec | trace | start-up s | gpu-speed | llmop | frontier gap | hpa | keda | oracle | "
        "frontier h=0.2 hold 2m | requests |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = sorted(cells, key=lambda c: (c["spec"], c["trace"], c["gpu_speed"], c["startup_s"]))
    for cell in order:
        rows = {row["policy"]: row for row in cell["rows"]}
        reference = next(p for p in cell["frontier"] if p["headroom"] == 0.2 and p["hold_s"] == 120.0)
        lines.append(
            f"| {cell['spec']} | {cell['trace']} | {cell['startup_s']:g} | {cell['gpu_speed']:g} | "
            + " | ".join([_fmt(rows["llmop"]), _gap(cell, "llmop")] + [_fmt(rows[p]) for p in SHOWN[1:]])
            + f" | {_fmt(reference)} | {cell['requests']} |"
        )
    # The other baselines (llmop's ablations have their own table); a cell without one of them shows "-".
    names = list(dict.fromkeys(r["policy"] for c in order for r in c["rows"] if _baseline_extra(r["policy"])))
    extra = [c for c in order if any(_baseline_extra(r["policy"]) for r in c["rows"])]
    if extra:
        lines += ["", "Every baseline (start-up 120 s, gpu-speed 1.0), SLO-minutes % / GPU-hours:", "",
                  "| spec | trace | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(names)]  # fmt: skip
        for cell in extra:
            rows = {row["policy"]: row for row in cell["rows"]}
            shown = (_fmt(rows[n]) if n in rows else "-" for n in names)
            lines.append(f"| {cell['spec']} | {cell['trace']} | " + " | ".join(shown) + " |")
    if skipped:
        lines += ["", "Cells not replayed:", ""]
        lines += [f"- {c['key']}: {c.get('reason') or c.get('error')}" for c in skipped]
    lines += ["", "The same verdicts for the references:", "", *reach.lines(reached)]
    misses = verdicts["frontier"]["misses"]
    if misses:
        lines += ["", "Cells where llmop is more than 1 point below the frontier:", ""]
        lines += [f"- {m['key']}: llmop {m['llmop']:.1f}, frontier {m['frontier']:.1f}" for m in misses]
    losses = verdicts["gpu_speed_0_8"]["losses"]
    if losses:
        lines += ["", "Cells where a 20 % slower GPU costs llmop more than 3 points:", ""]
        lines += [f"- {item['key']}: -{item['loss_pt']:.1f} pt{_references_text(item)}" for item in losses]
        shared = verdicts["gpu_speed_0_8"]["oracle_loses_too"]
        lines += ["", f"In {shared} of these {len(losses)} the clairvoyant oracle loses more than 3 points too."]
    return "\n".join(lines) + "\n"


def _references_text(loss: dict[str, Any]) -> str:
    """` (the oracle -15.0 pt, the frontier's best point -3.3 pt)`: what the slower GPU costs the references."""
    named = []
    if loss.get("oracle_loss_pt") is not None:
        named.append(f"the oracle {0.0 - loss['oracle_loss_pt']:+.1f} pt")
    if loss.get("frontier_best_loss_pt") is not None:
        named.append(f"the frontier's best point {0.0 - loss['frontier_best_loss_pt']:+.1f} pt")
    return f" ({', '.join(named)})" if named else ""


def plot(cells: list[dict[str, Any]], path: Path, title: str) -> None:
    """Each policy's point relative to the frontier: x = GPU-hours / the frontier's h=0 hold=0 point, y = SLO-minute
    points minus the frontier's at that policy's GPU-hours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5.5))
    markers = {"llmop": "o", "hpa": "s", "keda": "^", "oracle": "*"}
    for policy, marker in markers.items():
        xs, ys = [], []
        for cell in cells:
            base = next(p for p in cell["frontier"] if p["headroom"] == 0.0 and p["hold_s"] == 0.0)
            row = next(r for r in cell["rows"] if r["policy"] == policy)
            gap = suite.frontier_gap(cell, policy)
            if gap is None or base["gpu_hours"] <= 0:
                continue
            xs.append(row["gpu_hours"] / base["gpu_hours"])
            ys.append(gap)
        axis.scatter(xs, ys, marker=marker, label=f"{policy} ({len(xs)} cells)", alpha=0.7)
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.axhline(-1.0, color="red", linewidth=0.8, linestyle="--", label="1 point below the frontier")
    axis.set_xlabel("GPU-hours / reactive reference (h=0, no hold)")
    axis.set_ylabel("SLO-minutes % minus the frontier at the same GPU-hours")
    axis.set_title(f"{title}: every cell against the perfect-knowledge reactive frontier")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _baseline_extra(policy: str) -> bool:
    """A baseline beyond the shown ones: not an llmop ablation (`llmop key=value`)."""
    return policy not in SHOWN and not policy.startswith("llmop")
