"""The harness's report: report.json, PNG plots, planning.md and an HTML page joining them.

Plots are drawn with matplotlib's Agg backend, which needs no display.
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # Before pyplot is imported: the harness runs without a display.
import matplotlib.pyplot as plt
import msgspec

from coopnode.loadtest.fronts import FrontFigures
from coopnode.loadtest.harness import CapacitySearch, RunFigures
from coopnode.loadtest.openloop import RunResult
from coopnode.loadtest.planning import Plan, to_markdown

LATENCY_PLOT = "latency_over_time.png"
THROUGHPUT_PLOT = "throughput_over_time.png"
SEARCH_PLOT = "latency_by_rate.png"
FIGURE_SIZE_IN = (8.0, 4.0)
FIGURE_DPI = 100


class HarnessReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything one `coopnode loadtest` invocation measured, as report.json holds it."""

    scenario: str
    seed: int
    command: str
    started_at: str
    node_url: str
    own_node: bool
    machine: dict[str, str]
    objective_kind: str
    p99_objective_ms: float
    run: RunFigures | None
    search: CapacitySearch | None
    books_balanced: bool
    planning: Plan
    # Every front the load was spread over (the first is node_url), and the node's shards.
    front_urls: list[str] = []
    shards: int = 0


def write_report(report: HarnessReport, out_dir: Path) -> list[Path]:
    """Write every file of the report into `out_dir`; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "report.json", out_dir / "planning.md"]
    written[0].write_bytes(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    written[1].write_text(to_markdown(report.planning))
    if report.run is not None:
        written.append(_latency_plot(report.run, report.objective_kind, out_dir / LATENCY_PLOT))
        written.append(_throughput_plot(report.run, out_dir / THROUGHPUT_PLOT))
    if report.search is not None:
        written.append(_search_plot(report.search, out_dir / SEARCH_PLOT))
    index = out_dir / "index.html"
    index.write_text(_html(report))
    written.append(index)
    return written


def _latency_plot(run: RunFigures, kind: str, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_IN, dpi=FIGURE_DPI)
    series = run.by_kind[kind].time_series if kind in run.by_kind else run.overall.time_series
    seconds = [window.second for window in series]
    axes.plot(seconds, [window.p50_ms for window in series], label=f"{kind} p50")
    axes.plot(seconds, [window.p99_ms for window in series], label=f"{kind} p99")
    overall = run.overall.time_series
    axes.plot([w.second for w in overall], [w.p99_ms for w in overall], ":", label="all p99")
    axes.set_xlabel("second of the run")
    axes.set_ylabel("latency from intended send (ms)")
    axes.set_yscale("log")
    axes.set_title("Latency percentiles over time (per second)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _throughput_plot(run: RunFigures, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_IN, dpi=FIGURE_DPI)
    axes.plot(range(len(run.offered_per_second)), run.offered_per_second, label="offered")
    series = run.overall.time_series
    axes.plot([w.second for w in series], [w.throughput_per_s for w in series], label="answered")
    axes.plot([w.second for w in series], [w.errors for w in series], label="errors")
    axes.set_xlabel("second of the run")
    axes.set_ylabel("operations per second")
    axes.set_title("Throughput over time")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _search_plot(search: CapacitySearch, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_IN, dpi=FIGURE_DPI)
    steps = sorted(search.steps, key=lambda step: step.peak_rate_per_s)
    rates = [step.peak_rate_per_s for step in steps]
    results = [step.figures.by_kind.get(search.objective_kind) for step in steps]
    for label, field in (("p50", "latency_p50_ms"), ("p99", "latency_p99_ms"),
                         ("p99.9", "latency_p999_ms")):  # fmt: skip
        values = [getattr(result, field) if result else 0.0 for result in results]
        axes.plot(rates, values, marker="o", label=f"{search.objective_kind} {label}")
    axes.axhline(search.p99_objective_ms, color="red", linestyle="--", label="p99 objective")
    axes.set_xlabel("peak offered rate (operations/s)")
    axes.set_ylabel("latency from intended send (ms)")
    axes.set_yscale("log")
    axes.set_title(f"Capacity search: highest rate held {search.max_rate_held_per_s:,.0f}/s")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _run_table(run: RunFigures) -> str:
    rows = []
    for kind, result in sorted(run.by_kind.items()):
        declines = run.declines_by_reason.get(kind, {})
        rows.append(
            f"<tr><td>{kind}</td><td>{result.scheduled}</td>"
            f"<td>{result.achieved_rate_per_s:.1f}</td><td>{result.latency_p50_ms:.2f}</td>"
            f"<td>{result.latency_p99_ms:.2f}</td><td>{result.latency_p999_ms:.2f}</td>"
            f"<td>{result.latency_max_ms:.2f}</td>"
            f"<td>{html.escape(str(result.errors_by_reason or '-'))}</td>"
            f"<td>{html.escape(str(declines or '-'))}</td></tr>"
        )
    return (
        "<table><tr><th>kind</th><th>scheduled</th><th>answered/s</th><th>p50 ms</th>"
        "<th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>errors</th><th>declines</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _front_row(label: str, tills: int, operations: int, result: RunResult) -> str:
    return (
        f"<tr><td>{html.escape(label)}</td><td>{tills}</td><td>{operations}</td>"
        f"<td>{result.achieved_rate_per_s:.1f}</td><td>{result.latency_p50_ms:.2f}</td>"
        f"<td>{result.latency_p99_ms:.2f}</td><td>{result.latency_p999_ms:.2f}</td>"
        f"<td>{result.latency_max_ms:.2f}</td><td>{result.errors}</td></tr>"
    )


def front_table(run: RunFigures, kind: str) -> str:
    """Each front's figures for `kind` (all operations if it had none), and the whole's."""
    rows = []
    for front in run.by_front:
        rows.append(_front_row(front.url, front.tills, front.operations, _of(front, kind)))
    total = run.by_kind.get(kind, run.overall)
    tills = sum(front.tills for front in run.by_front)
    rows.append(_front_row("all fronts", tills, run.operations, total))
    return (
        f"<table><tr><th>front</th><th>tills</th><th>operations</th><th>{html.escape(kind)}"
        "s answered/s</th><th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th>"
        "<th>errors</th></tr>" + "".join(rows) + "</table>"
    )


def _of(front: FrontFigures, kind: str) -> RunResult:
    return front.by_kind.get(kind, front.overall)


def _plan_table(table: Plan) -> str:
    def count(value: int) -> str:
        return f"{value:,}" if value else "unknown"

    rows = "".join(
        f"<tr><td>{row.members:,}</td><td>{row.peak_taps_per_min:,}</td>"
        f"<td>{row.peak_taps_per_s:,.1f}</td><td>{row.planned_taps_per_s:,.1f}</td>"
        f"<td>{row.tills:,}</td><td>{count(row.fronts)}</td><td>{count(row.shards)}</td>"
        f"<td>{count(row.hosts)}</td></tr>"
        for row in table.rows
    )
    assumptions = "".join(
        f"<li><b>{html.escape(item.column)}</b>: {html.escape(item.rests_on)}</li>"
        for item in table.assumptions
    )
    return (
        "<table><tr><th>members</th><th>peak taps/min</th><th>peak taps/s</th>"
        "<th>planned taps/s</th><th>tills</th><th>fronts</th><th>shards</th><th>hosts</th>"
        f"</tr>{rows}</table><p>What each column rests on:</p><ul>{assumptions}</ul>"
    )


def _machine_list(report: HarnessReport) -> str:
    """Where the generator and the node ran and what else loaded the machine."""
    items = "".join(
        f"<li>{html.escape(key.replace('_', ' '))}: {html.escape(value)}</li>"
        for key, value in report.machine.items()
    )
    return f"<h2>Machine</h2><ul>{items}</ul>"


def _judging(search: CapacitySearch) -> str:
    """How the harness judged each step (harness.judge), in a sentence a reader can check."""
    late_ms = search.steps[0].figures.overall.schedule_lag_threshold_ms if search.steps else 0.0
    return (
        f"<p>Each step is judged on the {search.objective_kind} p99 counted from the"
        f" scheduled send times. A send is late when it left more than {late_ms:g} ms after"
        " its time (the larger of 2 ms and a tenth of the objective). A step that met the"
        " objective held however late its sends were: their lag is inside the latency"
        " judged. A step that broke it while more than 1% (or 5) of its sends were late is"
        " judged <i>generator</i>, unless its p99 from the actual sends, less the"
        " generator's p99 lag, still broke it: then it is the node's (<i>p99</i>). A broken"
        " step is run once more before it counts.</p>"
    )


def _html(report: HarnessReport) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>CoopNode capacity: {html.escape(report.scenario)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "table{border-collapse:collapse}</style>",
        f"<h1>Scenario {html.escape(report.scenario)} (seed {report.seed})</h1>",
        f"<p>Fronts: {html.escape(', '.join(report.front_urls or [report.node_url]))};"
        f" wallet shards: {report.shards or 'not counted'}</p>",
        f"<p>Command: <code>{html.escape(report.command)}</code><br>Started"
        f" {html.escape(report.started_at)}; books balanced after the run:"
        f" <b>{'yes' if report.books_balanced else 'NO'}</b></p>",
        _machine_list(report),
    ]
    if report.run is not None:
        run = report.run
        parts += [
            f"<h2>Run</h2><p>Peak {run.peak_rate_per_s:,.0f}/s, offered"
            f" {run.offered_rate_per_s:,.1f}/s on average over {run.duration_s:g} s, answered"
            f" {run.achieved_rate_per_s:,.1f}/s; {run.overall.late_sends} sends later than"
            f" {run.overall.schedule_lag_threshold_ms:g} ms (max lag"
            f" {run.overall.schedule_lag_max_ms:.1f} ms); meal caps reached"
            f" {run.meal_cap_reached} times.</p>",
            _run_table(run),
        ]
        if run.by_front:
            parts += [
                f"<h3>By front</h3><p>The run spread over {len(run.by_front)} fronts: each"
                " till stays on one front (dealt out in turn), the other requests go to the"
                " fronts in turn.</p>",
                front_table(run, report.objective_kind),
            ]
        parts.append(f"<p><img src='{LATENCY_PLOT}'></p><p><img src='{THROUGHPUT_PLOT}'></p>")
    if report.search is not None:
        search = report.search
        steps = "".join(
            f"<li>{step.peak_rate_per_s:,.0f}/s: {step.verdict} ({html.escape(step.detail)})</li>"
            for step in search.steps
        )
        parts += [
            f"<h2>Capacity search</h2><p>Highest peak rate that held the {search.objective_kind}"
            f" p99 ≤ {search.p99_objective_ms:g} ms objective:"
            f" <b>{search.max_rate_held_per_s:,.0f}/s</b> (limited by {search.limited_by}).</p>",
            _judging(search),
            f"<ul>{steps}</ul><p><img src='{SEARCH_PLOT}'></p>",
        ]
    parts += ["<h2>Planning</h2>", _plan_table(report.planning)]
    return "\n".join(parts) + "\n"
