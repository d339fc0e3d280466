/**
 * A legend inside the plot area, where it covers no data: the box the legend will take (from its entries'
 * lengths at 13 px) is tried at the plot's corners, then along its left, right and centre edges from the top
 * down, against points sampled along every line and bar of the panel; the first place that covers none
 * wins (corners first, higher before lower). Where every place covers data, the y range grows upward until
 * the box fits above the data at the top right. Bars, lines and markers on linear or log axes; numeric or
 * categorical x.
 */
/** A plotly trace as the figures build it. */
// deno-lint-ignore no-explicit-any
type Rec = Record<string, any>;

/** What a figure's layout needs: the legend, and the y axis's range when it had to grow. */
export interface LegendPlacement {
  legend: Record<string, unknown>;
  /** In the axis's own units (log10 of the values on a log axis), or undefined: plotly's own range. */
  yRange?: [number, number];
}

export interface LegendFrame {
  width: number;
  height: number;
  margin: { l: number; r: number; t: number; b: number };
  xType?: "linear" | "log";
  yType?: "linear" | "log";
  /** The panel's vertical share of the plot area (layout.yaxis.domain), default [0, 1]. */
  yDomain?: [number, number];
  /**
   * px between legend groups (plotly's legend.tracegroupgap, default 10): the placed legend carries it, so the
   * box reckoned and the legend drawn agree.
   */
  groupGap?: number;
  /** A legend title (one more row). */
  title?: string;
  /** Horizontal reference lines (y values, shapes across the plot) the legend must not cover either. */
  hlines?: number[];
  /** The y axis's range when the figure sets it (data units), in place of the data's extent. */
  yRange?: [number, number];
  /** Text labels it must not cover: left edge at data x, top at a fraction of the panel, chars long. */
  labels?: { x: number; top: number; chars: number }[];
}

const ROW_PX = 21, CHAR_PX = 6.6, SYMBOL_PX = 46, PAD = 0.012;

/**
 * The legend's possible boxes as fractions of the panel: one column when it is narrow enough, and rows of
 * as many columns as fit (plotly's horizontal legend with a fixed entry width), each entry as wide as the
 * longest name.
 */
function legendBoxes(names: string[], f: LegendFrame, grouped: boolean) {
  const W = f.width - f.margin.l - f.margin.r;
  const [d0, d1] = f.yDomain ?? [0, 1];
  const H = (f.height - f.margin.t - f.margin.b) * (d1 - d0);
  const entry = SYMBOL_PX + CHAR_PX * Math.max(0, ...names.map((n) => n.length));
  const extra = f.title ? 1 : 0;
  // plotly puts tracegroupgap (10 px unless set) between legend groups: one more gap per grouped entry
  const row = ROW_PX + (grouped ? f.groupGap ?? 10 : 0);
  const boxes: { orientation: "v" | "h"; fw: number; fh: number; entrywidth?: number }[] = [];
  if (entry + 12 <= 0.62 * W) {
    boxes.push({ orientation: "v", fw: (entry + 12) / W, fh: ((names.length + extra) * row + 10) / H });
  }
  const perRow = Math.min(names.length, Math.max(1, Math.floor(0.96 * W / entry)));
  if (perRow > 1 || !boxes.length) {
    const rows = Math.ceil(names.length / perRow) + extra;
    boxes.push({
      orientation: "h",
      fw: Math.min(0.98, (perRow * entry + 12) / W),
      fh: (rows * row + 10) / H,
      entrywidth: Math.round(entry - SYMBOL_PX), // plotly's entry width leaves out the symbol
    });
  }
  return boxes;
}

type Axis = { lo: number; hi: number; map: (v: number) => number };

function numericAxis(values: number[], log: boolean, pad: number): Axis {
  const t = (v: number) => log ? Math.log10(v) : v;
  const vs = values.filter((v) => Number.isFinite(t(v)));
  let lo = Math.min(...vs.map(t)), hi = Math.max(...vs.map(t));
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, hi + 0.5];
  const p = (hi - lo) * pad;
  lo -= p;
  hi += p;
  return { lo, hi, map: (v) => (t(v) - lo) / (hi - lo) };
}

/** Points (fractions of the panel) along each trace of the panel: lines sampled, bars filled. */
function samples(traces: Rec[], f: LegendFrame): { pts: [number, number][]; y: Axis } {
  const xs = traces.flatMap((t) => (t.x as unknown[]) ?? []);
  const categorical = xs.some((v) => typeof v === "string");
  const cats = [...new Set(xs.map(String))];
  const bars = traces.filter((t) => t.type === "bar");
  const ys = [
    ...traces.flatMap((t) => ((t.y as (number | null)[]) ?? []).filter((v) => v !== null) as number[]),
    ...(f.hlines ?? []),
  ];
  const y = f.yRange
    ? numericAxis(f.yRange, f.yType === "log", 0)
    : numericAxis(bars.length ? [...ys, 0] : ys, f.yType === "log", 0.05);
  // bars of one sign start at zero, as plotly draws them: no padding below it
  if (!f.yRange && bars.length && f.yType !== "log" && ys.every((v) => v >= 0)) {
    const hi = y.hi;
    Object.assign(y, { lo: 0, map: (v: number) => v / hi });
  }
  const xAxis = categorical ? undefined : numericAxis(xs as number[], f.xType === "log", 0.03);
  const xOf = (v: unknown) =>
    categorical ? (cats.indexOf(String(v)) + 0.5) / cats.length : xAxis!.map(v as number);
  const pts: [number, number][] = [];
  for (const t of traces) {
    const tx = (t.x as unknown[]) ?? [], ty = (t.y as (number | null)[]) ?? [];
    if (t.type === "bar") {
      const half = 0.4 / cats.length;
      tx.forEach((v, i) => {
        if (ty[i] === null || ty[i] === undefined) return;
        // a label printed above the bar (textposition "outside") takes about a row more
        const label = t.text && t.textposition === "outside" ? 0.06 : 0;
        // a bar on a log axis stands on the panel's bottom
        const top = y.map(ty[i]!) + label, base = f.yType === "log" ? 0 : y.map(0);
        for (let a = 0; a <= 4; a++) {
          for (let b = 0; b <= 10; b++) pts.push([xOf(v) + half * (a / 2 - 1), base + (top - base) * b / 10]);
        }
      });
      continue;
    }
    const p = tx.map((v, i) => [xOf(v), ty[i] === null || ty[i] === undefined ? NaN : y.map(ty[i]!)]);
    p.forEach(([a, b], i) => {
      if (!Number.isFinite(b)) return;
      pts.push([a, b]);
      const next = p[i + 1];
      if (next && Number.isFinite(next[1]) && String(t.mode ?? "lines").includes("lines")) {
        for (let s = 1; s < 20; s++) pts.push([a + (next[0] - a) * s / 20, b + (next[1] - b) * s / 20]);
      }
    });
  }
  for (const h of f.hlines ?? []) for (let a = 0; a <= 50; a++) pts.push([a / 50, y.map(h)]);
  const W = f.width - f.margin.l - f.margin.r;
  const [d0, d1] = f.yDomain ?? [0, 1];
  const H = (f.height - f.margin.t - f.margin.b) * (d1 - d0);
  for (const l of f.labels ?? []) {
    const x0 = xOf(l.x), w = (l.chars * CHAR_PX + 8) / W, h = 16 / H;
    for (let a = 0; a <= 10; a++) for (let b = 0; b <= 2; b++) pts.push([x0 + w * a / 10, l.top - h * b / 2]);
  }
  return { pts, y };
}

/** Where the legend goes (see the module's comment). */
export function legendInside(data: Rec[], f: LegendFrame): LegendPlacement {
  const names = data.filter((d) => d.showlegend !== false && d.name).map((d) => String(d.name));
  // a box taller than the panel fits nowhere in it
  const boxes = legendBoxes(names, f, data.some((d) => d.legendgroup !== undefined)).filter((b) =>
    b.fh <= 0.98
  );
  // the legend goes in the panel of the first y axis: traces on other axes are not in its way
  const panel = data.filter((d) => ((d.yaxis as string | undefined) ?? "y") === "y");
  const { pts, y } = samples(panel, f);
  const covers = (x0: number, x1: number, y0: number, y1: number) =>
    pts.some(([a, b]) => a >= x0 - PAD && a <= x1 + PAD && b >= y0 - PAD && b <= y1 + PAD);
  type Side = "left" | "right" | "center";
  const span = (side: Side, fw: number) =>
    side === "left" ? [0.01, 0.01 + fw] : side === "right" ? [0.99 - fw, 0.99] : [0.5 - fw / 2, 0.5 + fw / 2];
  const [d0, d1] = f.yDomain ?? [0, 1];
  const place = (side: Side, t: number, box: (typeof boxes)[number]) => ({
    x: side === "left" ? 0.01 : side === "right" ? 0.99 : 0.5,
    xanchor: side,
    y: d0 + t * (d1 - d0),
    yanchor: "top",
    orientation: box.orientation,
    ...(box.entrywidth ? { entrywidth: box.entrywidth } : {}),
    bgcolor: "rgba(255,255,255,0.85)",
    // the gap between legend groups the box was reckoned with
    ...(f.groupGap !== undefined ? { tracegroupgap: f.groupGap } : {}),
    // a horizontal legend puts its title beside the entries unless told: above them, as the box reckons
    ...(f.title ? { title: { text: f.title, side: "top left" } } : {}),
  });
  const top = 0.99;
  // corners first (each box shape), then the left, right and centre edges from the top down
  const corners: [Side, "top" | "bottom"][] = [
    ["right", "top"],
    ["left", "top"],
    ["right", "bottom"],
    [
      "left",
      "bottom",
    ],
    ["center", "top"],
    ["center", "bottom"],
  ];
  for (const box of boxes) {
    for (const [side, at] of corners) {
      const t = at === "top" ? top : 0.01 + box.fh;
      const [x0, x1] = span(side, box.fw);
      if (!covers(x0, x1, t - box.fh, t)) return { legend: place(side, t, box) };
    }
  }
  for (const box of boxes) {
    for (let t = top - 0.025; t > box.fh; t -= 0.025) {
      for (const side of ["left", "right", "center"] as const) {
        const [x0, x1] = span(side, box.fw);
        if (!covers(x0, x1, t - box.fh, t)) return { legend: place(side, t, box) };
      }
    }
  }
  // nowhere free: the y range grows so that the data end below the lowest box at the top right (the data
  // keep at least 30% of the height; a legend taller than the panel is left where plotly puts it)
  if (!boxes.length) {
    return {
      legend: {
        bgcolor: "rgba(255,255,255,0.85)",
        ...(f.groupGap !== undefined ? { tracegroupgap: f.groupGap } : {}),
      },
    };
  }
  const box = boxes.reduce((a, b) => (b.fh < a.fh ? b : a));
  const room = Math.max(0.3, 1 - box.fh - 0.03);
  return { legend: place("right", top, box), yRange: [y.lo, y.lo + (y.hi - y.lo) / room] };
}
