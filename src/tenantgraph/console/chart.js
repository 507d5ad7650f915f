// Charts as SVG elements built with dom.js: bars, a line and intervals, no library. Colours
// and sizes are SVG attributes (the CSP forbids style attributes); every label is a <text>
// node, every value also a data- attribute and a <title> (tests and tooltips read them).

import {h} from "./dom.js";

const WIDTH = 640;
const HEIGHT = 220;
const MARGIN = {top: 14, right: 16, bottom: 40, left: 52};
const INK = "#667085";
const GRID = "#e4e7ec";
const ACCENT = "#3756d4";
const MARKED = "#1f7a4d";

// About `count` round tick values, the first at or below `low`, the last at or above `high`.
export function ticks(low, high, count = 5) {
  if (!(high > low)) high = low + 1;
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const first = Math.floor(low / step);
  const last = Math.ceil(high / step);
  return Array.from({length: last - first + 1}, (_, i) => Number(((first + i) * step)
    .toPrecision(12)));
}

// A number as a short label: integers as they are, others to 3 significant digits.
export function label(value) {
  if (value === null || value === undefined) return "–";
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(3)));
}

function linear([d0, d1], [r0, r1]) {
  const span = d1 - d0 || 1;
  return (value) => r0 + ((value - d0) / span) * (r1 - r0);
}

function text(x, y, content, props = {}) {
  return h("svg:text", {x, y, fill: INK, "font-size": 11, ...props}, content);
}

function frame(name, title, width, height, children) {
  return h("svg:svg", {
    class: `chart ${name}`, viewBox: `0 0 ${width} ${height}`, width: "100%",
    role: "img", "aria-label": title, preserveAspectRatio: "xMinYMin meet",
  }, h("svg:title", {}, title), children);
}

// The vertical value axis: grid lines and their labels for `values` on `y`.
function valueAxis(values, y, left, right) {
  return values.map((value) => h("svg:g", {class: "tick"},
    h("svg:line", {x1: left, x2: right, y1: y(value), y2: y(value), stroke: GRID}),
    text(left - 6, y(value) + 4, label(value), {"text-anchor": "end"})));
}

// Category labels under the plot, thinned to about `most` of them (the last one kept).
function categoryAxis(labels, x, bottom, most = 12) {
  const every = Math.max(1, Math.ceil(labels.length / most));
  return labels.map((name, i) => ((labels.length - 1 - i) % every === 0
    ? text(x(i), bottom + 16, name, {"text-anchor": "middle", class: "category"})
    : null));
}

function axisTitle(content, height) {
  return content
    ? text(14, height / 2, content, {"text-anchor": "middle",
      transform: `rotate(-90 14 ${height / 2})`, class: "axis-title"})
    : null;
}

// Bars of `points` ([{label, value}]) from zero; options {title, yLabel, format}.
export function barChart(points, {title = "", yLabel = "", format = label} = {}) {
  const bottom = HEIGHT - MARGIN.bottom;
  const right = WIDTH - MARGIN.right;
  const top = Math.max(1, ...points.map((p) => p.value || 0));
  const values = ticks(0, top, 4);
  const y = linear([0, values[values.length - 1]], [bottom, MARGIN.top]);
  const slot = (right - MARGIN.left) / Math.max(1, points.length);
  const x = (i) => MARGIN.left + slot * (i + 0.5);
  const bars = points.map((p, i) => h("svg:rect", {
    class: "bar", x: x(i) - slot * 0.35, width: slot * 0.7,
    y: y(p.value || 0), height: bottom - y(p.value || 0), fill: ACCENT,
    dataset: {label: p.label, value: String(p.value || 0)},
  }, h("svg:title", {}, `${p.label}: ${format(p.value || 0)}`)));
  return frame("bar-chart", title, WIDTH, HEIGHT, [
    valueAxis(values, y, MARGIN.left, right),
    h("svg:line", {x1: MARGIN.left, x2: right, y1: bottom, y2: bottom, stroke: INK}),
    bars,
    categoryAxis(points.map((p) => p.label), x, bottom),
    axisTitle(yLabel, HEIGHT),
  ]);
}

// A line through `points` ([{label, value}], value null for none: the line breaks there),
// with a dot on each value; options {title, yLabel, domain: [low, high]}.
export function lineChart(points, {title = "", yLabel = "", domain = null} = {}) {
  const bottom = HEIGHT - MARGIN.bottom;
  const right = WIDTH - MARGIN.right;
  const known = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const [low, high] = domain || [Math.min(0, ...known), Math.max(1, ...known)];
  const values = ticks(low, high, 4);
  const y = linear([values[0], values[values.length - 1]], [bottom, MARGIN.top]);
  const slot = (right - MARGIN.left) / Math.max(1, points.length);
  const x = (i) => MARGIN.left + slot * (i + 0.5);
  const runs = [];
  let current = [];
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) {
      if (current.length) runs.push(current);
      current = [];
    } else {
      current.push(`${x(i)},${y(p.value)}`);
    }
  });
  if (current.length) runs.push(current);
  return frame("line-chart", title, WIDTH, HEIGHT, [
    valueAxis(values, y, MARGIN.left, right),
    h("svg:line", {x1: MARGIN.left, x2: right, y1: bottom, y2: bottom, stroke: INK}),
    runs.map((run) => h("svg:polyline", {
      class: "line", points: run.join(" "), fill: "none", stroke: ACCENT, "stroke-width": 2,
    })),
    points.map((p, i) => (p.value === null || p.value === undefined ? null
      : h("svg:circle", {
        class: "point", cx: x(i), cy: y(p.value), r: 3.5, fill: ACCENT,
        dataset: {label: p.label, value: String(p.value)},
      }, h("svg:title", {}, `${p.label}: ${label(p.value)}`)))),
    categoryAxis(points.map((p) => p.label), x, bottom),
    axisTitle(yLabel, HEIGHT),
  ]);
}

// One row per entry of `rows` ([{label, low, value, high, marked}]): the interval [low,
// high] as a line with end caps and the value as a dot; a marked row is drawn in green.
// Rows without an interval show the dot alone (or nothing without a value).
export function intervalChart(rows, {title = "", xLabel = "", domain = null} = {}) {
  const rowHeight = 34;
  const left = 130;
  const height = MARGIN.top + rows.length * rowHeight + MARGIN.bottom;
  const right = WIDTH - MARGIN.right;
  const bottom = height - MARGIN.bottom;
  const known = rows.flatMap((r) => [r.low, r.value, r.high])
    .filter((v) => v !== null && v !== undefined);
  const [low, high] = domain || [Math.min(...known, 0), Math.max(...known, 1)];
  const values = ticks(low, high, 5);
  const x = linear([values[0], values[values.length - 1]], [left, right]);
  const drawn = rows.map((row, i) => {
    const y = MARGIN.top + rowHeight * (i + 0.5);
    const colour = row.marked ? MARKED : ACCENT;
    const has = (v) => v !== null && v !== undefined;
    return h("svg:g", {class: row.marked ? "interval marked" : "interval",
      dataset: {label: row.label, low: String(row.low), value: String(row.value),
        high: String(row.high)}},
    text(left - 10, y + 4, row.label, {"text-anchor": "end", fill: colour,
      "font-weight": row.marked ? 700 : 400}),
    has(row.low) && has(row.high) ? [
      h("svg:line", {x1: x(row.low), x2: x(row.high), y1: y, y2: y, stroke: colour,
        "stroke-width": 2}),
      h("svg:line", {x1: x(row.low), x2: x(row.low), y1: y - 6, y2: y + 6, stroke: colour}),
      h("svg:line", {x1: x(row.high), x2: x(row.high), y1: y - 6, y2: y + 6, stroke: colour}),
    ] : null,
    has(row.value) ? h("svg:circle", {cx: x(row.value), cy: y, r: 5, fill: colour},
      h("svg:title", {},
        `${row.label}: ${label(row.value)} [${label(row.low)}, ${label(row.high)}]`))
      : null);
  });
  return frame("interval-chart", title, WIDTH, height, [
    values.map((value) => h("svg:g", {class: "tick"},
      h("svg:line", {x1: x(value), x2: x(value), y1: MARGIN.top, y2: bottom, stroke: GRID}),
      text(x(value), bottom + 16, label(value), {"text-anchor": "middle"}))),
    drawn,
    xLabel ? text((left + right) / 2, height - 6, xLabel, {"text-anchor": "middle",
      class: "axis-title"}) : null,
  ]);
}
