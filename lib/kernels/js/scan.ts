/**
 * Plain-JS twins of the selective scan as the engine runs it on WebGPU (webgpu/scan.ts): the same buffers
 * in the same layouts, so each WGSL pass sequence is tested against these and the engine's "js"
 * execution runs them. Math as wasm/scan_reference.ts (which documents it), but reading B and C from the
 * packed token-major bct (b, l, 2, nq4) the WGSL passes read, and writing dB, dC packed into a
 * token-major buffer (the engine's d x_dbl) like bcReduceShader's `packed` output.
 *
 *   dt_t = softplus(delta_t + bias)   h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t
 *   y_t = (C_t . h_t + D u_t) silu(z_t)
 */
import { scratch } from "./scratch.ts";

export interface ScanParams {
  batch: number;
  /** channels (d_inner) */
  dim: number;
  len: number;
  /** states (d_state) */
  ns: number;
  softplus: boolean;
}

/** Floats per bct row half: ns rounded up to a multiple of 4 (the WGSL passes read vec4s). */
export const nq4 = (ns: number) => Math.ceil(ns / 4) * 4;

/** PyTorch's softplus (threshold 20). */
function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/**
 * bct (rows, 2, nq4) from columns [offset, offset + 2 ns) of the token-major x (rows, row): B then C, each
 * zero-padded to nq4. The scan's B and C come out of x_proj this way, with dt in the first columns.
 */
export interface PackParams {
  rows: number;
  row: number;
  offset: number;
  ns: number;
  /** steps per sequence (rows = sequences x len): the WebAssembly set packs per sequence (wasm/ops.ts) */
  len: number;
}

export function packBC(p: PackParams, b: { x: Float32Array; bct: Float32Array }): void {
  const q = nq4(p.ns);
  for (let i = 0; i < p.rows; i++) {
    for (let w = 0; w < 2; w++) {
      const o = (i * 2 + w) * q, src = i * p.row + p.offset + w * p.ns;
      for (let s = 0; s < q; s++) b.bct[o + s] = s < p.ns ? b.x[src + s] : 0;
    }
  }
}

export interface ScanInputs {
  u: Float32Array;
  delta: Float32Array;
  A: Float32Array;
  bct: Float32Array;
  D?: Float32Array;
  z?: Float32Array;
  deltaBias?: Float32Array;
}

/** y (b, dim, len) and last, the state after the last step (b, dim, ns). */
export function scanForward(p: ScanParams, b: ScanInputs & { y: Float32Array; last: Float32Array }): void {
  const { batch, dim, len, ns } = p;
  const q = nq4(ns);
  const h = scratch("h", ns);
  for (let bb = 0; bb < batch; bb++) {
    for (let d = 0; d < dim; d++) {
      const row = (bb * dim + d) * len;
      const bias = b.deltaBias ? b.deltaBias[d] : 0, skip = b.D ? b.D[d] : 0;
      h.fill(0);
      for (let t = 0; t < len; t++) {
        const raw = b.delta[row + t] + bias;
        const dt = p.softplus ? softplus(raw) : raw;
        const ut = b.u[row + t], dtu = dt * ut;
        const bo = (bb * len + t) * 2 * q;
        let acc = 0;
        for (let s = 0; s < ns; s++) {
          h[s] = Math.exp(dt * b.A[d * ns + s]) * h[s] + dtu * b.bct[bo + s];
          acc += h[s] * b.bct[bo + q + s];
        }
        let out = acc + skip * ut;
        if (b.z) {
          const zt = b.z[row + t];
          out *= zt / (1 + Math.exp(-zt));
        }
        b.y[row + t] = out;
      }
      for (let s = 0; s < ns; s++) b.last[(bb * dim + d) * ns + s] = h[s];
    }
  }
}

/** Where the backward writes dB and dC: dbc[(b len + t) row + offset + m], m < 2 ns (dB, then dC). */
export interface PackedBC {
  row: number;
  offset: number;
}

export interface ScanGrads {
  du: Float32Array;
  ddelta: Float32Array;
  dA: Float32Array;
  dD?: Float32Array;
  dz?: Float32Array;
  dDeltaBias?: Float32Array;
  dbc: Float32Array;
}

/**
 * Gradients of every input given dy = dL/dy (the last state's gradient taken as zero): du, ddelta, dz
 * (b, dim, len); dA (dim, ns), dD, dDeltaBias (dim) summed over batch and steps; dB, dC packed. All
 * overwritten.
 */
export function scanBackward(
  p: ScanParams & PackedBC,
  b: ScanInputs & { dy: Float32Array } & ScanGrads,
): void {
  const { batch, dim, len, ns } = p;
  const q = nq4(ns);
  const hs = scratch("hs", len * ns), as = scratch("as", len * ns);
  const dts = scratch("dts", len), outs = scratch("outs", len);
  const gh = scratch("gh", ns), gA = scratch("gA", ns);
  const gB = scratch("gB", len * ns), gC = scratch("gC", len * ns);
  b.dA.fill(0);
  b.dD?.fill(0);
  b.dDeltaBias?.fill(0);
  for (let bb = 0; bb < batch; bb++) {
    gB.fill(0);
    gC.fill(0);
    for (let d = 0; d < dim; d++) {
      const row = (bb * dim + d) * len;
      const bias = b.deltaBias ? b.deltaBias[d] : 0, skip = b.D ? b.D[d] : 0;
      // the channel's forward again, keeping h_t and exp(dt_t A)
      for (let t = 0; t < len; t++) {
        const raw = b.delta[row + t] + bias;
        const dt = p.softplus ? softplus(raw) : raw;
        dts[t] = dt;
        const dtu = dt * b.u[row + t];
        const bo = (bb * len + t) * 2 * q, tn = t * ns;
        let acc = 0;
        for (let s = 0; s < ns; s++) {
          const a = Math.exp(dt * b.A[d * ns + s]);
          as[tn + s] = a;
          const hv = a * (t > 0 ? hs[tn - ns + s] : 0) + dtu * b.bct[bo + s];
          hs[tn + s] = hv;
          acc += hv * b.bct[bo + q + s];
        }
        outs[t] = acc + skip * b.u[row + t];
      }
      gh.fill(0);
      gA.fill(0);
      let gD = 0, gBias = 0;
      for (let t = len - 1; t >= 0; t--) {
        const ut = b.u[row + t];
        let gOut = b.dy[row + t];
        if (b.z) {
          const zt = b.z[row + t], sg = 1 / (1 + Math.exp(-zt));
          b.dz![row + t] = gOut * outs[t] * sg * (1 + zt * (1 - sg));
          gOut *= zt * sg;
        }
        gD += gOut * ut;
        const dt = dts[t], tn = t * ns, bo = (bb * len + t) * 2 * q;
        let gU = gOut * skip, gDt = 0;
        for (let s = 0; s < ns; s++) {
          const Bt = b.bct[bo + s], Ct = b.bct[bo + q + s];
          const ghs = gh[s] + gOut * Ct; // dL/dh_t
          gC[tn + s] += gOut * hs[tn + s];
          const prev = t > 0 ? hs[tn - ns + s] : 0;
          const a = as[tn + s];
          const gDecay = ghs * prev * a; // dL/d(dt A) through exp(dt A)
          gDt += gDecay * b.A[d * ns + s] + ghs * Bt * ut;
          gA[s] += gDecay * dt;
          gB[tn + s] += ghs * dt * ut;
          gU += ghs * dt * Bt;
          gh[s] = ghs * a;
        }
        b.du[row + t] = gU;
        const gDelta = p.softplus ? gDt / (1 + Math.exp(-(b.delta[row + t] + bias))) : gDt;
        b.ddelta[row + t] = gDelta;
        gBias += gDelta;
      }
      for (let s = 0; s < ns; s++) b.dA[d * ns + s] += gA[s];
      if (b.dD) b.dD[d] += gD;
      if (b.dDeltaBias) b.dDeltaBias[d] += gBias;
    }
    for (let t = 0; t < len; t++) {
      const o = (bb * len + t) * p.row + p.offset;
      for (let s = 0; s < ns; s++) {
        b.dbc[o + s] = gB[t * ns + s];
        b.dbc[o + ns + s] = gC[t * ns + s];
      }
    }
  }
}
