// Small SVG charts of figures per time bucket: stacked bars or lines, with axes, a legend, a title and description
// for screen readers, and the same figures as a table. Colours come from CSS classes (no inline style).

import {h, svg} from "./dom.js";
import {tick, when} from "./format.js";

const WIDTH = 640;
const WIDE = 1300; // a chart across the whole row: as tall, twice the points' room
const HEIGHT = 240;
const PAD = {top: 14, right: 14, bottom: 46, left: 66};
const X_TICKS = 6;
const MINUTE = 60_000;
const TICK_STEPS_MS = [1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((minutes) => minutes * MINUTE);
let serial = 0;

/**
 * A chart figure. spec: {title, description, times (bucket starts, epoch ms), spanMs, series: [{name, cls, values}],
 * kind: "bar" (stacked) or "line", format (value -> text), yLabel, max (fixed top of the scale, e.g. 1 for shares),
 * wide (spans the row)}.
 */
export function chart(spec) {
  serial += 1;
  const id = `chart-${serial}`;
  const width = spec.wide ? WIDE : WIDTH;
  const plot = {x: PAD.left, y: PAD.top, w: width - PAD.left - PAD.right, h: HEIGHT - PAD.top - PAD.bottom};
  const highest = peak(spec);
  const scale = spec.max === undefined ? niceScale(highest) : {top: spec.max, step: spec.max / 4};
  const graphic = svg(
    "svg",
    {viewBox: `0 0 ${width} ${HEIGHT}`, class: "chart", role: "img", "aria-labelledby": `${id}-t`, "aria-describedby": `${id}-d`},
    svg("title", {id: `${id}-t`}, spec.title),
    svg("desc", {id: `${id}-d`}, spec.description),
    yAxis(plot, scale, spec),
    xAxis(plot, spec),
    spec.kind === "line" ? lines(plot, scale, spec) : bars(plot, scale, spec),
    highest > 0 ? null : svg("text", {x: plot.x + plot.w / 2, y: plot.y + plot.h / 2, class: "chart-empty"}, "No traffic in this range"),
  );
  return h(
    "figure",
    {class: spec.wide ? "chart-card wide" : "chart-card", "aria-labelledby": `${id}-caption`},
    h("figcaption", {id: `${id}-caption`}, h("h3", {}, spec.title), legend(spec.series)),
    graphic,
    dataTable(spec),
  );
}

function peak(spec) {
  const n = spec.times.length;
  let top = 0;
  for (let i = 0; i < n; i += 1) {
    const values = spec.series.map((series) => series.values[i] ?? 0);
    top = Math.max(top, spec.kind === "line" ? Math.max(...values) : values.reduce((a, b) => a + b, 0));
  }
  return top;
}

/** A top for the scale and a round step between grid lines (1, 2 or 5 times a power of ten; at least 1 for counts). */
function niceScale(highest) {
  if (highest <= 0) return {top: 4, step: 1};
  const rough = highest / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough);
  return {top: Math.ceil(highest / step) * step, step};
}

function yAxis(plot, scale, spec) {
  const marks = [];
  for (let value = 0; value <= scale.top + scale.step / 1000; value += scale.step) {
    const y = plot.y + plot.h - (value / scale.top) * plot.h;
    marks.push(
      svg("line", {x1: plot.x, x2: plot.x + plot.w, y1: y, y2: y, class: value === 0 ? "axis" : "grid"}),
      svg("text", {x: plot.x - 6, y: y + 4, class: "tick y-tick"}, spec.format(value)),
    );
  }
  const middle = plot.y + plot.h / 2;
  const label = svg("text", {x: 14, y: middle, class: "axis-label", transform: `rotate(-90 14 ${middle})`}, spec.yLabel);
  return svg("g", {"aria-hidden": "true"}, marks, label);
}

function xAxis(plot, spec) {
  const n = spec.times.length;
  const width = plot.w / Math.max(1, n);
  const labels = [];
  for (const i of tickIndexes(spec.times, spec.wide ? 2 * X_TICKS : X_TICKS)) {
    const x = plot.x + width * i; // a label names the instant a bucket starts: its left edge
    labels.push(
      svg("line", {x1: x, x2: x, y1: plot.y + plot.h, y2: plot.y + plot.h + 4, class: "axis"}),
      svg("text", {x, y: plot.y + plot.h + 17, class: "tick x-tick"}, tick(spec.times[i], spec.spanMs)),
    );
  }
  const label = svg("text", {x: plot.x + plot.w / 2, y: HEIGHT - 6, class: "axis-label"}, "Time (local)");
  return svg("g", {"aria-hidden": "true"}, labels, label);
}

/** The buckets to label: those starting at a round local time (every 10 min, 3 h, a day...), at most `most`. */
function tickIndexes(times, most) {
  const n = times.length;
  if (n < 2) return n ? [0] : [];
  const span = times[n - 1] - times[0];
  const step = TICK_STEPS_MS.find((candidate) => span / candidate <= most) ?? TICK_STEPS_MS.at(-1);
  const local = (time) => time - new Date(time).getTimezoneOffset() * 60_000;
  const round = times.flatMap((time, i) => (local(time) % step === 0 ? [i] : []));
  if (round.length >= 2) return round;
  const every = Math.ceil(n / most);
  return times.flatMap((_, i) => (i % every === 0 ? [i] : []));
}

function bars(plot, scale, spec) {
  const n = spec.times.length;
  const width = plot.w / Math.max(1, n);
  const barWidth = Math.max(1, width * 0.72);
  const groups = [];
  for (let i = 0; i < n; i += 1) {
    let base = plot.y + plot.h;
    const rects = [];
    for (const series of spec.series) {
      const value = series.values[i] ?? 0;
      if (value <= 0) continue;
      const height = (value / scale.top) * plot.h;
      base -= height;
      const x = plot.x + width * i + (width - barWidth) / 2;
      rects.push(
        svg("rect", {x, y: base, width: barWidth, height, class: `bar ${series.cls}`},
          svg("title", {}, `${when(spec.times[i])} · ${series.name}: ${spec.format(value)}`)),
      );
    }
    if (rects.length) groups.push(svg("g", {}, rects));
  }
  return svg("g", {class: "marks"}, groups);
}

function lines(plot, scale, spec) {
  const n = spec.times.length;
  const width = plot.w / Math.max(1, n);
  const x = (i) => plot.x + width * (i + 0.5);
  const y = (value) => plot.y + plot.h - (value / scale.top) * plot.h;
  return svg("g", {class: "marks"}, spec.series.map((series) => {
    let path = "";
    let drawing = false;
    const dots = [];
    series.values.forEach((value, i) => {
      if (value === null || value === undefined) {
        drawing = false; // a bucket without lookups is a gap, not a zero
        return;
      }
      path += `${drawing ? "L" : "M"}${x(i).toFixed(1)} ${y(value).toFixed(1)} `;
      drawing = true;
      dots.push(svg("circle", {cx: x(i), cy: y(value), r: 2.5, class: `dot ${series.cls}`},
        svg("title", {}, `${when(spec.times[i])} · ${series.name}: ${spec.format(value)}`)));
    });
    return svg("g", {}, path ? svg("path", {d: path.trim(), class: `line ${series.cls}`}) : null, dots);
  }));
}

function legend(series) {
  if (series.length < 2) return null;
  return h("ul", {class: "legend"}, series.map((one) => h("li", {}, h("span", {class: `swatch ${one.cls}`, "aria-hidden": "true"}), one.name)));
}

/** The figures as a table, buckets with any figure only (a month of empty buckets is no help to anyone). */
function dataTable(spec) {
  const rows = spec.times
    .map((time, i) => ({time, values: spec.series.map((series) => series.values[i])}))
    .filter((row) => row.values.some((value) => value !== null && value !== undefined && value !== 0));
  const head = h("tr", {}, h("th", {scope: "col"}, "Bucket start"), spec.series.map((series) => h("th", {scope: "col", class: "num"}, series.name)));
  const body = rows.length
    ? rows.map((row) => h("tr", {}, h("th", {scope: "row"}, when(row.time)), row.values.map((value) => h("td", {class: "num"}, value === null || value === undefined ? "–" : spec.format(value)))))
    : [h("tr", {}, h("td", {colspan: spec.series.length + 1, class: "empty"}, "No traffic in this range."))];
  return h(
    "details",
    {class: "chart-table"},
    h("summary", {}, `${spec.title}: as a table`),
    h("table", {}, h("caption", {class: "sr-only"}, spec.title), h("thead", {}, head), h("tbody", {}, body)),
  );
}
