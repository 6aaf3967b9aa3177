"""Process map: the directly-follows graph of the log with frequencies, laid out in layers (no system binary).

The core gives the directly-follows relation (``DefinedLog.directly_follows``); this module filters it for
readability (most frequent activities and paths, keeping every shown activity connected), computes a layered
layout (cycle breaking by depth-first search, longest-path layers, barycenter ordering) and draws it with Bokeh.
"""

from __future__ import annotations

import html
import itertools
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool, LabelSet, Range1d
from bokeh.palettes import Blues9
from bokeh.plotting import figure

from workbench.views.state import WorkbenchState, error_text
from workbench.views.widgets import Message, fmt_int, heading

START, END = "▶", "■"
NODE_W, NODE_H = 2.9, 0.78
X_GAP, Y_GAP = 3.4, 1.75
PX_X, PX_Y = 62, 58


def filter_graph(edges: pd.DataFrame, activities: pd.Series, activity_share: float, path_share: float):
    """The most frequent activities and paths; every kept activity keeps its strongest way in and out."""
    ranked = activities.sort_values(ascending=False)
    keep_n = max(1, math.ceil(activity_share * len(ranked)))
    kept = set(map(str, ranked.index[:keep_n])) | {START, END}
    candidates = edges[edges["source"].isin(kept) & edges["target"].isin(kept)]
    candidates = candidates.sort_values("frequency", ascending=False, kind="stable").reset_index(drop=True)
    chosen = set(range(max(1, math.ceil(path_share * len(candidates))))) if len(candidates) else set()
    for column in ("source", "target"):
        strongest = candidates[candidates["source"] != candidates["target"]].groupby(column)["frequency"].idxmax()
        chosen.update(int(i) for i in strongest.to_numpy())
    shown = candidates.loc[sorted(chosen)] if chosen else candidates.iloc[:0]
    nodes = {START, END} | set(shown["source"]) | set(shown["target"])
    return nodes & kept, shown.reset_index(drop=True), len(candidates)


def _break_cycles(nodes: set[str], successors: dict[str, list[tuple[str, int]]]) -> tuple[set, list[str]]:
    """Edges that close a cycle (found by depth-first search from the start, strongest edges first) and the
    nodes in reverse finishing order (a topological order once those edges are left out)."""
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}
    order: list[str] = []
    for root in [START, *sorted(nodes - {START, END}), END]:
        if root in state or root not in nodes:
            continue
        stack = [(root, iter(successors.get(root, [])))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            advanced = False
            for child, _ in children:
                if child not in nodes:
                    continue
                if state.get(child) == 1:
                    back.add((node, child))
                elif child not in state:
                    state[child] = 1
                    stack.append((child, iter(successors.get(child, []))))
                    advanced = True
                    break
            if not advanced:
                state[node] = 2
                order.append(node)
                stack.pop()
    return back, order[::-1]


def layered_layout(nodes: set[str], edges: pd.DataFrame):
    """A layered (Sugiyama-style) layout, top to bottom from the start.

    Returns ``(positions, routes)``: ``{activity: (x, y)}`` and, for every forward path spanning several layers,
    the points it passes through (virtual nodes that take part in the ordering, so long paths go around
    activities instead of through them).
    """
    successors: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for source, target, frequency in edges[["source", "target", "frequency"]].itertuples(index=False):
        if source != target and source in nodes and target in nodes:
            successors[source].append((target, int(frequency)))
    for items in successors.values():
        items.sort(key=lambda item: -item[1])
    back, topological = _break_cycles(nodes, successors)
    layer = dict.fromkeys(nodes, 0)
    for node in topological:
        for child, _ in successors.get(node, []):
            if (node, child) not in back and child != END:
                layer[child] = max(layer[child], layer[node] + 1)
    if START in layer:
        layer[START] = 0
    inner = [layer[n] for n in nodes if n not in (START, END)]
    layer[END] = (max(inner) if inner else 0) + 1
    # virtual nodes on forward paths that skip layers
    links: list[tuple[object, object, int]] = []
    chains: dict[tuple[str, str], list[tuple]] = {}
    for source, items in successors.items():
        for target, frequency in items:
            if (source, target) in back or layer[target] <= layer[source]:
                continue
            chain = [("virtual", source, target, k) for k in range(1, layer[target] - layer[source])]
            for k, virtual in enumerate(chain, start=1):
                layer[virtual] = layer[source] + k
            path = [source, *chain, target]
            links.extend((a, b, frequency) for a, b in itertools.pairwise(path))
            if chain:
                chains[(source, target)] = chain
    layers: dict[int, list] = defaultdict(list)
    for node in [*topological, *sorted(nodes - set(topological))]:
        layers[layer[node]].append(node)
    for chain in chains.values():
        for virtual in chain:
            layers[layer[virtual]].append(virtual)
    up, down = defaultdict(list), defaultdict(list)
    for a, b, frequency in links:
        down[a].append((b, frequency))
        up[b].append((a, frequency))
    order = {n: float(i) for members in layers.values() for i, n in enumerate(members)}
    for sweep in range(8):
        downward = sweep % 2 == 0
        for level in sorted(layers, reverse=not downward):
            members = layers[level]
            near = up if downward else down

            def barycenter(node, near=near):
                around = near.get(node) or []
                total = sum(w for _, w in around)
                return sum(order[o] * w for o, w in around) / total if total else order[node]

            keys = {n: barycenter(n) for n in members}
            members.sort(key=lambda n: keys[n])
            for i, node in enumerate(members):
                order[node] = float(i)
    # coordinates: activities take a full slot, virtual nodes a narrow one; every layer is centred
    x: dict = {}
    for members in layers.values():
        widths = [1.0 if not isinstance(n, tuple) else 0.3 for n in members]
        total = sum(widths)
        cursor = -total / 2
        for node, width in zip(members, widths, strict=True):
            x[node] = (cursor + width / 2) * X_GAP
            cursor += width
    positions = {node: (x[node], -layer[node] * Y_GAP) for node in nodes}
    routes = {edge: [(x[v], -layer[v] * Y_GAP) for v in chain] for edge, chain in chains.items()}
    return positions, routes


def _bezier_point(p0, c0, c1, p1, t: float):
    u = 1 - t
    return tuple(
        u**3 * a + 3 * u * u * t * b + 3 * u * t * t * c + t**3 * d for a, b, c, d in zip(p0, c0, c1, p1, strict=True)
    )


def _segments(points: list[tuple[float, float]]) -> list[tuple]:
    """Smooth cubic segments through points going downwards (vertical tangents at every point)."""
    segments = []
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        bend = max(0.25, min(1.0, (ay - by) * 0.45))
        segments.append(((ax, ay), (ax, ay - bend), (bx, by + bend), (bx, by)))
    return segments


def dfg_figure(nodes: set[str], edges: pd.DataFrame, positions: dict, routes: dict, node_counts: dict[str, int]):
    """The process map as a Bokeh figure: boxes per activity, curved arrows with frequencies per path."""
    xs = [p[0] for p in positions.values()] + [x for route in routes.values() for x, _ in route] or [0]
    ys = [p[1] for p in positions.values()] or [0]
    x0, x1 = min(xs) - NODE_W / 2 - 2.0, max(xs) + NODE_W / 2 + 2.0
    y0, y1 = min(ys) - NODE_H, max(ys) + NODE_H
    width = int(max(720, min(1500, (x1 - x0) * PX_X)))
    height = int(max(360, (y1 - y0) * PX_Y))
    plot = figure(
        width=width,
        height=height,
        x_range=Range1d(x0, x1),
        y_range=Range1d(y0, y1),
        tools="pan,wheel_zoom,reset,save",
        toolbar_location="above",
        title=None,
    )
    plot.axis.visible = False
    plot.grid.visible = False
    plot.outline_line_color = None
    top = max([f for f in edges["frequency"]] or [1])
    curves = {
        dash: {k: [] for k in ("x0", "y0", "x1", "y1", "cx0", "cy0", "cx1", "cy1", "width", "alpha")}
        for dash in ("solid", "dashed")
    }
    labels = {"x": [], "y": [], "text": []}
    heads = {"x": [], "y": [], "angle": [], "size": []}
    loops: dict[str, int] = {}
    for source, target, frequency in edges[["source", "target", "frequency"]].itertuples(index=False):
        if source not in positions or target not in positions:
            continue
        if source == target:
            loops[source] = int(frequency)
            continue
        (sx, sy), (tx, ty) = positions[source], positions[target]
        backward = ty >= sy
        if backward:  # closes a cycle: leave and enter on the outer side (left of the centre line: the left side)
            span = (ty - sy) / Y_GAP
            side = -1.0 if sx + tx < 0 else 1.0
            p0, p1 = (sx + side * NODE_W / 2, sy), (tx + side * NODE_W / 2, ty)
            outer = (min(sx, tx) if side < 0 else max(sx, tx)) + side * (NODE_W / 2 + 0.9 + 0.35 * span)
            segments = [(p0, (outer, sy), (outer, ty), p1)]
        else:
            points = [(sx, sy - NODE_H / 2), *routes.get((source, target), []), (tx, ty + NODE_H / 2)]
            segments = _segments(points)
        strength = math.sqrt(frequency / top)
        bucket = curves["dashed" if backward else "solid"]
        for p0, c0, c1, p1 in segments:
            for key, value in zip(
                ("x0", "y0", "x1", "y1", "cx0", "cy0", "cx1", "cy1"), (*p0, *p1, *c0, *c1), strict=True
            ):
                bucket[key].append(value)
            bucket["width"].append(1 + 6 * strength)
            bucket["alpha"].append(0.35 + 0.55 * strength)
        mx, my = _bezier_point(*segments[len(segments) // 2], 0.5)
        labels["x"].append(mx)
        labels["y"].append(my)
        labels["text"].append(f"{int(frequency):,}")
        _, _, c1, p1 = segments[-1]
        dx, dy = (p1[0] - c1[0]) * PX_X, (p1[1] - c1[1]) * PX_Y
        heads["x"].append(p1[0])
        heads["y"].append(p1[1])
        heads["angle"].append(math.atan2(dy, dx) - math.pi / 2)
        heads["size"].append(7 + 5 * strength)
    for dash, data in curves.items():
        if data["x0"]:
            plot.bezier(
                x0="x0",
                y0="y0",
                x1="x1",
                y1="y1",
                cx0="cx0",
                cy0="cy0",
                cx1="cx1",
                cy1="cy1",
                line_width="width",
                line_alpha="alpha",
                line_color="#4a6a8a",
                line_dash=dash,
                source=ColumnDataSource(data),
            )
    plot.scatter(
        x="x", y="y", angle="angle", size="size", marker="triangle", color="#4a6a8a", source=ColumnDataSource(heads)
    )
    plot.add_layout(
        LabelSet(
            x="x",
            y="y",
            text="text",
            source=ColumnDataSource(labels),
            text_font_size="10px",
            text_align="center",
            text_baseline="middle",
            text_color="#333",
            background_fill_color="white",
            background_fill_alpha=0.85,
        )
    )
    counts = [node_counts.get(n, 0) for n in positions]
    high = max(counts) or 1
    palette = list(reversed(Blues9))[2:]
    fills, text_colours, names, texts = [], [], [], []
    for node, count in zip(positions, counts, strict=True):
        level = 0 if count <= 0 else int((len(palette) - 1) * math.log1p(count) / math.log1p(high))
        fills.append("#2b2d42" if node in (START, END) else palette[level])
        text_colours.append("white" if node in (START, END) or level >= 3 else "#1d2b3a")
        short = node if len(node) <= 24 else node[:23] + "…"
        names.append(node)
        loop = f"  ↻{loops[node]:,}" if node in loops else ""
        texts.append(f"{short}\n{count:,}{loop}")
    nodes_source = ColumnDataSource(
        {
            "x": [positions[n][0] for n in positions],
            "y": [positions[n][1] for n in positions],
            "fill": fills,
            "name": names,
            "text": texts,
            "count": counts,
            "text_colour": text_colours,
            "loop": [loops.get(n, 0) for n in positions],
        }
    )
    boxes = plot.rect(
        x="x",
        y="y",
        width=NODE_W,
        height=NODE_H,
        fill_color="fill",
        line_color="#1d3557",
        line_width=1,
        source=nodes_source,
    )
    plot.text(
        x="x",
        y="y",
        text="text",
        text_align="center",
        text_baseline="middle",
        text_font_size="11px",
        text_color="text_colour",
        source=nodes_source,
        text_line_height=1.15,
    )
    plot.add_tools(
        HoverTool(
            renderers=[boxes],
            tooltips=[("activity", "@name"), ("events", "@count{0,0}"), ("repeats directly", "@loop{0,0}")],
        )
    )
    return plot


class ProcessView(pn.viewable.Viewer):
    """The directly-follows graph of the open project's log, with sliders for how much of it to show."""

    state = param.ClassSelector(class_=WorkbenchState)

    def __init__(self, state: WorkbenchState, **params):
        super().__init__(state=state, **params)
        self.activities = pn.widgets.IntSlider(
            name="Activities shown (%)",
            start=5,
            end=100,
            step=5,
            value=100,
            width=260,
            css_classes=["wb-dfg-activities"],
        )
        self.paths = pn.widgets.IntSlider(
            name="Paths shown (%)", start=0, end=100, step=5, value=30, width=260, css_classes=["wb-dfg-paths"]
        )
        self.summary = pn.pane.HTML(sizing_mode="stretch_width", css_classes=["wb-dfg-summary"])
        self.message = Message("wb-dfg-error")
        self.loading = pn.indicators.Progress(active=True, value=-1, visible=False, width=240, height=12)
        self.graph = pn.pane.Bokeh(sizing_mode="fixed")
        self.activities.param.watch(self._draw, "value_throttled")
        self.paths.param.watch(self._draw, "value_throttled")
        self.placeholder = pn.pane.HTML('<div class="wb-muted">Open a project on the Projects page.</div>')
        self.body = pn.Column(
            pn.Row(self.activities, self.paths, self.summary),
            self.loading,
            self.message,
            pn.Column(self.graph, scroll=True, sizing_mode="stretch_width", max_height=900, css_classes=["wb-dfg"]),
            sizing_mode="stretch_width",
        )
        self.layout = pn.Column(
            heading("Process map (directly-follows graph)"),
            self.placeholder,
            self.body,
            sizing_mode="stretch_width",
            css_classes=["wb-view-process"],
        )
        self._data = None
        self._loaded = None
        pn.state.execute(self._load)

    @param.depends("state.project", watch=True)
    def _project_changed(self):
        if self.state.project is None or self.state.project.event_log.id != self._loaded:
            pn.state.execute(self._load)

    async def _load(self):
        project = self.state.project
        self.placeholder.visible = project is None
        self.body.visible = project is not None
        if project is None or project.event_log.id == self._loaded:
            return
        self._loaded = project.event_log.id
        self.loading.visible = True
        self.message.clear()
        try:
            edges, activities, cases = await self.state.run(self.state.core.process_map, project.event_log.id)
        except Exception as exc:
            self.message.error(error_text(exc))
            self._loaded = None
            return
        finally:
            self.loading.visible = False
        self._data = (edges, activities, cases)
        # a readable default: about one and a half paths per activity
        wanted = 1.6 * (len(activities) + 2)
        with pn.io.hold():  # the slider, graph and summary in one message (one layout in the browser)
            self.paths.value = int(min(100, max(5, 5 * round(20 * wanted / max(len(edges), 1)))))
            self._draw()

    def _draw(self, *_):
        if self._data is None:
            return
        edges, activities, cases = self._data
        nodes, shown, candidates = filter_graph(edges, activities, self.activities.value / 100, self.paths.value / 100)
        positions, routes = layered_layout(nodes, shown)
        counts = {str(k): int(v) for k, v in activities.items()}
        counts[START] = counts[END] = int(cases)
        self.graph.object = dfg_figure(nodes, shown, positions, routes, counts)
        shown_events = int(np.sum([counts.get(n, 0) for n in nodes if n not in (START, END)]))
        self.summary.object = (
            f'<div class="wb-muted" style="padding-top:18px">{fmt_int(cases)} cases · '
            f"{len(nodes) - 2} of {len(activities)} activities ({fmt_int(shown_events)} events) · "
            f"{len(shown)} of {candidates} paths. Numbers on arrows: how often one activity directly follows the "
            f"other; ↻ an activity repeating; dashed arrows go back. {html.escape('▶')} start, ■ end.</div>"
        )

    def __panel__(self):
        return self.layout
