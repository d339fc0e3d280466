/**
 * Live views: work shown while it runs. A training, evaluation or generation loop reports through the
 * callbacks it already has (the trainer's `onStep`, `scoreText`'s `onProgress`, the evaluations' `onResult`,
 * `generate`'s `onByte`), and the view redraws one output of the cell in place:
 *
 *   const live = mb.liveTraining({ steps: 300, batch: 8, length: 128, title: "d64 x 2" });
 *   const run = await live.watch(mb.train(model, data, { steps: 300, batch: 8, length: 128, ..., onStep: live.onStep }));
 *
 *   const text = mb.liveText({ prompt });
 *   await mb.generate(model, prompt, 400, { greedy: true }, text.onByte); await text.finish();
 *
 *   const table = mb.liveTable({ title: "Extrapolation", total: 7, unit: "lengths" });
 *   await mb.extrapolationRecords(model, test, opts, about, table.onRow); await table.finish();
 *
 * In Deno's Jupyter kernel the first draw is `Deno.jupyter.display` with a `display_id`; each later draw is
 * an `update_display_data` message with the same id, which the frontend (and nbclient, when notebooks run
 * headless) applies to that output in place, so a saved notebook keeps only the last one. Draws are at most
 * one per `minIntervalMs` (a few per second), each an HTML snippet with an inline SVG chart drawn here (no
 * browser rendering per draw); the last draw of a training view is the usual figure output (plotly JSON +
 * SVG, display.ts figureBundle). Outside Jupyter the same calls print the command line's progress lines.
 *
 * Why draws are awaited and yield: a cell's loop that awaits only resolved promises never lets the event
 * loop run, and the kernel's messages go out from it; each draw waits one macrotask so the update leaves
 * while the work goes on (the loops await their callbacks).
 */
import { extent, ticks } from "d3-array";
import {
  type Bundle,
  escapeHtml,
  figureBundle,
  jupyter,
  type Kernel,
  layout,
  tableBundle,
} from "./display.ts";
import { flushDisplays } from "./jupyter_flush.ts";
import {
  formatBytes,
  formatSeconds,
  secondsLeft,
  stepLine,
  type StepReport,
  type WindowProgress,
} from "../util/progress.ts";

/** A training log entry as the trainer reports it (lib/train/trainer.ts TrainLogEntry). */
export interface LiveStep extends StepReport {
  wall_s: number;
}

const FONT = "font-family:Arial,'Liberation Sans',sans-serif;font-size:13px;color:#222";

/** Lets the event loop run once (the kernel publishes queued messages from it). */
const yieldOnce = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** One output of a notebook cell redrawn in place (a `display_id`), at most once per `minIntervalMs`. */
export class LiveOutput {
  readonly id = `mambabyte-live-${crypto.randomUUID()}`;
  private shown = false;
  private last = -Infinity;
  /** Draws sent so far. */
  draws = 0;
  constructor(private readonly kernel: Kernel, readonly minIntervalMs: number) {}

  /** Whether a draw now would respect the interval. */
  due(): boolean {
    return performance.now() - this.last >= this.minIntervalMs;
  }

  /** Shows `bundle` in place of the previous draw (the first one creates the output). */
  async draw(bundle: Bundle): Promise<void> {
    this.last = performance.now();
    this.draws++;
    if (!this.shown) {
      this.shown = true;
      await this.kernel.display(bundle, { raw: true, display_id: this.id });
    } else {
      await this.kernel.broadcast("update_display_data", {
        data: bundle,
        metadata: {},
        transient: { display_id: this.id },
      });
    }
    await yieldOnce();
  }

  /** The last draw, waited for until it has left the kernel (display.ts: a cell may end right after). */
  async close(bundle: Bundle): Promise<void> {
    await this.draw(bundle);
    await flushDisplays(this.kernel);
  }
}

// ---------------------------------------------------------------------------------------------------
// A small SVG line chart (the live draws; the final figure is plotly's)

export interface ChartSeries {
  name: string;
  x: number[];
  y: number[];
  color: string;
  /** draw a dot at each point (few points, e.g. validation) */
  markers?: boolean;
}

/** At most `max` points of a series, evenly spaced, always with the last one. */
function thin(s: ChartSeries, max: number): ChartSeries {
  if (s.x.length <= max) return s;
  const stride = Math.ceil(s.x.length / max);
  const keep = s.x.map((_, i) => i).filter((i) => i % stride === 0 || i === s.x.length - 1);
  return { ...s, x: keep.map((i) => s.x[i]), y: keep.map((i) => s.y[i]) };
}

const number = (v: number) => Number(v.toPrecision(4)).toLocaleString("en");
const tickLabel = (v: number, bytes: boolean) => bytes ? formatBytes(v) : number(v);

/**
 * An SVG line chart of a few series (x ascending), with ticks and axis titles; `points` goes into the
 * svg's data-points attribute (what a test or a script reads from the page).
 */
export function svgLineChart(
  series: ChartSeries[],
  o: { xTitle: string; yTitle: string; xBytes?: boolean; width?: number; height?: number; points: number },
): string {
  const W = o.width ?? 640, H = o.height ?? 280, m = { l: 64, r: 16, t: 12, b: 46 };
  const all = series.filter((s) => s.x.length > 0);
  const xs = all.flatMap((s) => s.x), ys = all.flatMap((s) => s.y).filter(Number.isFinite);
  let [x0, x1] = extent(xs) as [number, number];
  let [y0, y1] = extent(ys) as [number, number];
  if (x0 === undefined) [x0, x1] = [0, 1];
  if (y0 === undefined) [y0, y1] = [0, 1];
  if (x1 === x0) x1 = x0 + 1;
  const pad = (y1 - y0) * 0.05 || Math.abs(y0) * 0.05 || 1;
  y0 -= pad;
  y1 += pad;
  const px = (x: number) => m.l + (x - x0) / (x1 - x0) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - (y - y0) / (y1 - y0) * (H - m.t - m.b);
  const f = (v: number) => v.toFixed(1);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `data-points="${o.points}" style="background:white">`,
  ];
  for (const t of ticks(x0, x1, 6)) {
    parts.push(
      `<line x1="${f(px(t))}" x2="${f(px(t))}" y1="${m.t}" y2="${H - m.b}" stroke="#e6e6e6"/>`,
      `<text x="${f(px(t))}" y="${H - m.b + 16}" text-anchor="middle" font-size="11">${
        tickLabel(t, !!o.xBytes)
      }</text>`,
    );
  }
  for (const t of ticks(y0, y1, 5)) {
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${f(py(t))}" y2="${f(py(t))}" stroke="#e6e6e6"/>`,
      `<text x="${m.l - 6}" y="${f(py(t) + 4)}" text-anchor="end" font-size="11">${number(t)}</text>`,
    );
  }
  parts.push(
    `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${
      H - m.t - m.b
    }" fill="none" stroke="#444"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle" font-size="13">${
      escapeHtml(o.xTitle)
    }</text>`,
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="13">${
      escapeHtml(o.yTitle)
    }</text>`,
  );
  let legendX = m.l + 10;
  for (const s of all.map((s) => thin(s, 600))) {
    const pts = s.x.map((x, i) => `${f(px(x))},${f(py(s.y[i]))}`).join(" ");
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.6" points="${pts}"/>`);
    if (s.markers) {
      for (let i = 0; i < s.x.length; i++) {
        parts.push(`<circle cx="${f(px(s.x[i]))}" cy="${f(py(s.y[i]))}" r="3" fill="${s.color}"/>`);
      }
    }
    parts.push(
      `<rect x="${legendX}" y="${m.t + 8}" width="14" height="3" fill="${s.color}"/>`,
      `<text x="${legendX + 18}" y="${m.t + 13}" font-size="11">${escapeHtml(s.name)}</text>`,
    );
    legendX += 30 + 6.5 * s.name.length;
  }
  parts.push("</svg>");
  return parts.join("");
}

/** A progress bar of fraction `frac` as HTML. */
function bar(frac: number): string {
  const pct = Math.max(0, Math.min(1, frac)) * 100;
  return `<div style="width:640px;height:6px;background:#e6e6e6;margin:4px 0 6px">` +
    `<div style="width:${pct.toFixed(1)}%;height:100%;background:#1f77b4"></div></div>`;
}

// ---------------------------------------------------------------------------------------------------
// Training

/** What a run will do: its steps, and the bytes of a step (the x axis). */
export interface TrainingPlan {
  /** The run's steps (TrainerConfig.steps). */
  steps: number;
  /** Sequences per step and tokens per sequence (TrainerConfig.batch, .length). */
  batch: number;
  length: number;
  /** Bytes per token (subword models; default 1). */
  bytesPerToken?: number;
}

/** A plan given now, or later through `plan` (runExperiment's `onStart`, which knows the steps first). */
export interface LiveTrainingOptions extends Partial<TrainingPlan> {
  /** Shown above the chart and in the final figure's title. */
  title?: string;
  /** Least milliseconds between draws (default 250). */
  minIntervalMs?: number;
  /** Outside Jupyter: a progress line every this many steps (default steps / 20). */
  logEvery?: number;
}

const TRAIN_COLOR = "#1f77b4", VAL_COLOR = "#d62728";

/** The live view of a training run (module comment). `onStep` is the trainer's callback. */
export class LiveTraining {
  /** The steps reported so far. */
  readonly entries: LiveStep[] = [];
  private readonly out?: LiveOutput;
  private readonly t0 = performance.now();
  private firstStep?: number;
  private readonly o: LiveTrainingOptions & TrainingPlan;

  constructor(o: LiveTrainingOptions, kernel: Kernel | null = jupyter() ?? null) {
    this.o = { steps: 0, batch: 0, length: 0, ...o };
    if (o.steps !== undefined) this.plan(this.o);
    if (kernel) this.out = new LiveOutput(kernel, o.minIntervalMs ?? 250);
  }

  /** Draws sent to the notebook so far (0 outside Jupyter). */
  get draws(): number {
    return this.out?.draws ?? 0;
  }

  /** Sets the run's plan (before its first step; runExperiment's `onStart`). */
  plan = (p: TrainingPlan): void => {
    for (const [k, v] of Object.entries({ steps: p.steps, batch: p.batch, length: p.length })) {
      if (!(Number.isInteger(v) && v >= 1)) {
        throw new RangeError(`liveTraining: ${k} must be a positive integer (got ${v})`);
      }
    }
    Object.assign(this.o, {
      steps: p.steps,
      batch: p.batch,
      length: p.length,
      bytesPerToken: p.bytesPerToken,
    });
  };

  private get bytesPerStep(): number {
    return this.o.batch * this.o.length * (this.o.bytesPerToken ?? 1);
  }

  /** The trainer's `onStep`: records the step and redraws when a draw is due. */
  onStep = async (e: LiveStep): Promise<void> => {
    if (!this.o.steps) {
      throw new Error("liveTraining: no plan (give steps, batch and length, or call plan first)");
    }
    this.firstStep ??= e.step - 1;
    this.entries.push(e);
    if (!this.out) {
      const every = this.o.logEvery ?? Math.max(1, Math.round(this.o.steps / 20));
      if (e.step % every === 0 || e.step === this.o.steps) {
        console.error(stepLine(e, this.o.steps, this.eta(e)));
      }
      return;
    }
    if (this.out.due() || this.out.draws === 0) await this.out.draw(this.liveBundle());
  };

  /**
   * Waits for the run, then replaces the live chart by the final figure (plotly JSON + SVG) with a summary
   * line; when the run fails or is interrupted, the figure says so and the error is thrown on.
   */
  async watch<T>(run: Promise<T>): Promise<T> {
    try {
      const result = await run;
      // a resumed run's result holds the steps of its earlier parts too (TrainerResult.log)
      const log = (result as { log?: LiveStep[] } | undefined)?.log;
      if (Array.isArray(log) && log.length >= this.entries.length) this.entries.splice(0, Infinity, ...log);
      await this.finish();
      return result;
    } catch (e) {
      await this.finish(e instanceof Error ? e.message : String(e));
      throw e;
    }
  }

  /** The final draw (watch calls it): the figure of every reported step, and `stopped` when it did. */
  async finish(stopped?: string): Promise<void> {
    const summary = this.summary(stopped);
    if (!this.out) {
      console.error(summary);
      return;
    }
    const last = this.entries.at(-1);
    const fig = {
      data: this.series().map((s) => ({
        x: s.x,
        y: s.y,
        name: s.name,
        mode: s.markers ? "lines+markers" : "lines",
        line: { color: s.color, width: 1.6 },
      })),
      layout: layout({
        title: `${this.o.title ? `${this.o.title}: ` : ""}${last ? `${last.step} steps` : "no steps"}`,
        xTitle: "Bytes seen",
        yTitle: "Loss",
        yUnit: "bits per byte",
        legend: "top",
        width: 760,
        height: 380,
      }),
    };
    const bundle = await figureBundle(fig);
    await this.out.close({
      ...bundle,
      "text/html": `<div style="${FONT}">${escapeHtml(summary)}</div>${bundle["text/html"] ?? ""}`,
      "text/plain": `${summary}\n${bundle["text/plain"]}`,
    });
  }

  private eta(e: LiveStep): number {
    const first = this.firstStep ?? 0;
    return secondsLeft(e.step - first, this.o.steps - first, (performance.now() - this.t0) / 1000);
  }

  /** Training loss per step, and validation where it was measured, against bytes seen. */
  private series(): ChartSeries[] {
    const x = (e: LiveStep) => e.step * this.bytesPerStep;
    const val = this.entries.filter((e) => e.val_bits_per_byte !== undefined);
    const out: ChartSeries[] = [{
      name: "training",
      x: this.entries.map(x),
      y: this.entries.map((e) => e.bits_per_byte),
      color: TRAIN_COLOR,
    }];
    if (val.length) {
      out.push({
        name: "validation",
        x: val.map(x),
        y: val.map((e) => e.val_bits_per_byte!),
        color: VAL_COLOR,
        markers: true,
      });
    }
    return out;
  }

  private status(): string {
    const e = this.entries.at(-1);
    if (!e) return "waiting for the first step";
    const val = this.entries.findLast((x) => x.val_bits_per_byte !== undefined)?.val_bits_per_byte;
    const elapsed = (performance.now() - this.t0) / 1000;
    return [
      `step ${e.step}/${this.o.steps} (${(100 * e.step / this.o.steps).toFixed(0)}%)`,
      `${e.bits_per_byte.toFixed(3)} bits/byte`,
      ...(val !== undefined ? [`validation ${val.toFixed(3)}`] : []),
      `${formatBytes(e.bytes_per_s)}/s`,
      `elapsed ${formatSeconds(elapsed)}`,
      e.step === this.o.steps ? "done" : `ETA ${formatSeconds(this.eta(e))}`,
    ].join(" · ");
  }

  private summary(stopped?: string): string {
    const e = this.entries.at(-1);
    const head = this.o.title ? `${this.o.title}: ` : "";
    if (!e) return `${head}${stopped ? `stopped before the first step: ${stopped}` : "no steps reported"}`;
    const val = this.entries.findLast((x) => x.val_bits_per_byte !== undefined)?.val_bits_per_byte;
    return `${head}${
      stopped ? `stopped at step ${e.step}/${this.o.steps}: ${stopped}` : `${e.step} steps`
    }; ` +
      `${formatBytes(e.step * this.bytesPerStep)} seen; last training loss ${
        e.bits_per_byte.toFixed(3)
      } bits/byte` +
      (val !== undefined ? `, validation ${val.toFixed(3)}` : "") +
      `; ${formatBytes(e.bytes_per_s)}/s; ${formatSeconds(e.wall_s)} of training`;
  }

  private liveBundle(): Bundle {
    const title = this.o.title ? `<b>${escapeHtml(this.o.title)}</b> · ` : "";
    const e = this.entries.at(-1);
    const chart = svgLineChart(this.series(), {
      xTitle: "Bytes seen",
      yTitle: "Loss (bits per byte)",
      xBytes: true,
      points: this.entries.length,
    });
    return {
      "text/html":
        `<div data-live="training" style="${FONT}"><div>${title}${escapeHtml(this.status())}</div>` +
        `${bar(e ? e.step / this.o.steps : 0)}${chart}</div>`,
      "text/plain": this.status(),
    };
  }
}

// ---------------------------------------------------------------------------------------------------
// Evaluation: progress and a table filled as results arrive

export interface LiveTableOptions {
  title: string;
  /** Rows expected, when each `onRow` is one unit of progress (else progress comes from `onProgress`). */
  total?: number;
  /** What a unit of progress is, in the status line (default "windows"). */
  unit?: string;
  /** Columns of each row to show (default: all of them). */
  columns?: string[];
  /** Significant digits of numbers (default 4). */
  digits?: number;
  minIntervalMs?: number;
}

/**
 * A live evaluation: progress (units done / total, percent and ETA by tokens scored) and its table, filled
 * row by row as results arrive.
 */
export class LiveTable {
  readonly rows: Record<string, unknown>[] = [];
  private readonly out?: LiveOutput;
  private readonly t0 = performance.now();
  private done = 0;
  private total: number;
  /** fraction of the work done (tokens scored of all, or rows of total) */
  private frac = 0;
  private lastLine = -Infinity;

  constructor(readonly o: LiveTableOptions, kernel: Kernel | null = jupyter() ?? null) {
    this.total = o.total ?? 0;
    if (kernel) this.out = new LiveOutput(kernel, o.minIntervalMs ?? 250);
  }

  /**
   * Progress of a scoring loop (lib/eval/score.ts `onProgress`, the extrapolation's `onScored`): units done /
   * total, and the fraction by tokens.
   */
  onProgress = async (p: WindowProgress): Promise<void> => {
    this.done = p.windows;
    this.total = p.totalWindows;
    this.frac = p.totalTokens > 0 ? p.tokens / p.totalTokens : p.windows / Math.max(1, p.totalWindows);
    await this.update(p.windows === p.totalWindows);
  };

  /** A result (a row of the table) as soon as it is known; with `total` it is one unit done. */
  onRow = async (row: object): Promise<void> => {
    const r = row as Record<string, unknown>;
    this.rows.push(this.o.columns ? Object.fromEntries(this.o.columns.map((c) => [c, r[c]])) : r);
    if (this.o.total !== undefined) {
      this.done = this.rows.length;
      this.frac = this.done / this.o.total;
    }
    await this.update(true);
  };

  /** The final draw: the table of every row with how long it took (or the last progress line, without rows). */
  async finish(): Promise<void> {
    if (!this.rows.length) {
      if (this.out) {
        await this.out.close({
          "text/html": `<div style="${FONT}">${escapeHtml(this.status())}</div>`,
          "text/plain": this.status(),
        });
      } else console.error(this.status());
      return;
    }
    const caption = `${this.o.title}: ${this.rows.length} rows in ${
      formatSeconds((performance.now() - this.t0) / 1000)
    }`;
    const table = tableBundle(this.rows, { caption, digits: this.o.digits });
    if (this.out) await this.out.close(table);
    else console.log(table["text/plain"]);
  }

  private status(): string {
    const elapsed = (performance.now() - this.t0) / 1000;
    const complete = this.total > 0 && this.done >= this.total;
    return `${this.o.title}: ${this.done}/${this.total || "?"} ${this.o.unit ?? "windows"}` +
      (this.total ? ` (${(100 * this.frac).toFixed(0)}%)` : "") +
      ` · elapsed ${formatSeconds(elapsed)}` +
      (this.total && !complete ? ` · ETA ${formatSeconds(secondsLeft(this.frac, 1, elapsed))}` : "");
  }

  private async update(force: boolean): Promise<void> {
    if (!this.out) {
      const now = performance.now();
      if (now - this.lastLine >= 2000 || (force && this.done === this.total)) {
        this.lastLine = now;
        console.error(this.status());
      }
      return;
    }
    if (!(force || this.out.due())) return;
    const table = tableBundle(this.rows, { digits: this.o.digits });
    await this.out.draw({
      "text/html": `<div data-live="table" data-rows="${this.rows.length}" style="${FONT}">` +
        `<div>${escapeHtml(this.status())}</div>${bar(this.frac)}` +
        `${this.rows.length ? table["text/html"] : ""}</div>`,
      "text/plain": this.status(),
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Generation: the text as it is produced

export interface LiveTextOptions {
  /** Shown before the generated text, in grey. */
  prompt?: Uint8Array;
  title?: string;
  /** Least milliseconds between draws (default 100). */
  minIntervalMs?: number;
}

/**
 * Streams generated bytes: decoded as UTF-8 only at character boundaries (a character split over several
 * bytes appears when its last byte arrives), with bytes/s. `onByte` is `generate`'s callback (and
 * `speculativeDecode`'s: accepted draft bytes are counted).
 */
export class LiveText {
  /** The text decoded so far (complete characters only). */
  text = "";
  bytes = 0;
  accepted = 0;
  private readonly decoder = new TextDecoder();
  private readonly out?: LiveOutput;
  private t0?: number;
  private readonly promptText: string;

  constructor(readonly o: LiveTextOptions = {}, kernel: Kernel | null = jupyter() ?? null) {
    this.promptText = o.prompt ? new TextDecoder().decode(o.prompt) : "";
    if (kernel) this.out = new LiveOutput(kernel, o.minIntervalMs ?? 100);
  }

  onByte = async (b: number, accepted?: boolean): Promise<void> => {
    this.t0 ??= performance.now();
    this.bytes++;
    if (accepted) this.accepted++;
    const piece = this.decoder.decode(Uint8Array.of(b), { stream: true });
    this.text += piece;
    if (!this.out) {
      if (piece) Deno.stdout.writeSync(new TextEncoder().encode(piece));
      return;
    }
    if (this.out.due()) await this.out.draw(this.bundle());
  };

  /** Ends the stream (an unfinished character becomes U+FFFD) and draws the whole text with its rate. */
  async finish(): Promise<{ text: string; bytes: number; seconds: number }> {
    const tail = this.decoder.decode();
    this.text += tail;
    const seconds = this.t0 === undefined ? 0 : (performance.now() - this.t0) / 1000;
    if (this.out) await this.out.close(this.bundle(seconds));
    else {
      if (tail) Deno.stdout.writeSync(new TextEncoder().encode(tail));
      console.log();
      console.error(this.status(seconds));
    }
    return { text: this.text, bytes: this.bytes, seconds };
  }

  private status(seconds = this.t0 === undefined ? 0 : (performance.now() - this.t0) / 1000): string {
    const rate = seconds > 0 ? this.bytes / seconds : 0;
    return `${this.o.title ? `${this.o.title}: ` : ""}${this.bytes} bytes in ${seconds.toFixed(2)} s ` +
      `(${rate.toFixed(0)} bytes/s)` + (this.accepted ? `, ${this.accepted} accepted from the drafter` : "");
  }

  private bundle(seconds?: number): Bundle {
    const status = this.status(seconds);
    return {
      "text/html": `<div data-live="text" data-bytes="${this.bytes}" style="${FONT}">` +
        `<div>${escapeHtml(status)}</div><pre style="white-space:pre-wrap;margin:4px 0">` +
        `<span style="color:#888">${escapeHtml(this.promptText)}</span>${escapeHtml(this.text)}</pre></div>`,
      "text/plain": `${status}\n${this.promptText}${this.text}`,
    };
  }
}

/** The live view of a training run (LiveTraining). */
export const liveTraining = (o: LiveTrainingOptions) => new LiveTraining(o);
/** A live evaluation table (LiveTable). */
export const liveTable = (o: LiveTableOptions) => new LiveTable(o);
/** Generated text streamed as it comes (LiveText). */
export const liveText = (o: LiveTextOptions = {}) => new LiveText(o);
