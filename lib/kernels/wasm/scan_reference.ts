/**
 * The fused selective scan over plain typed arrays: forward and backward, one (batch, channel) at a time,
 * with the state in a small local array. Used by the cpu and wasm backends' kernels (kernels/tfjs/scan_op.ts).
 *
 * Memory: the forward keeps only h (n values) per channel. The backward recomputes the channel's forward
 * into two (l, n) scratch arrays (the states and the decays), reused for every channel, so the extra
 * memory is O(l * n) plus the (l, n) transposes of B and C, never O(b * d * l * n).
 *
 * Math (per batch b, channel d, state n; see ../types.ts):
 *   dt_t = softplus(delta_t + bias)   a_t = exp(dt_t A_n)   h_t = a_t h_{t-1} + dt_t B_t u_t
 *   out_t = sum_n h_t C_t + D u_t      y_t = out_t silu(z_t)
 * Backward with g = dL/dy and gLast = dL/dh_{l-1}, walking t from l-1 down to 0 with the adjoint
 *   ĝ_t = dL/dh_t = gOut_t C_t + a_{t+1} ĝ_{t+1}  (ĝ_{l-1} starts from gLast):
 *   dA_n += ĝ_t h_{t-1} a_t dt_t;  ddt_t = sum_n ĝ_t (h_{t-1} a_t A_n + B_t u_t);  dB_t += ĝ_t dt_t u_t;
 *   du_t = gOut_t D + sum_n ĝ_t dt_t B_t;  dC_t += gOut_t h_t;  ddelta_t = ddt_t sigmoid(delta_t + bias).
 */

export interface ScanDims {
  batch: number;
  dInner: number;
  dState: number;
  length: number;
  /**
   * Channels-last layout: u, delta, z, y (and their gradients) are (b, l, d) and B, C are (b, l, n), as
   * a model's activations come out of a matmul, instead of (b, d, l) and (b, n, l). Default false.
   */
  channelsLast?: boolean;
}

export interface ScanArrays {
  u: Float32Array; // (b, d, l); channels last (b, l, d)
  delta: Float32Array; // (b, d, l); channels last (b, l, d)
  A: Float32Array; // (d, n)
  B: Float32Array; // (b, n, l); channels last (b, l, n)
  C: Float32Array; // (b, n, l); channels last (b, l, n)
  D?: Float32Array; // (d)
  z?: Float32Array; // (b, d, l); channels last (b, l, d)
  deltaBias?: Float32Array; // (d)
  initialState?: Float32Array; // (b, d, n)
}

export interface ScanGradients {
  u: Float32Array;
  delta: Float32Array;
  A: Float32Array;
  B: Float32Array;
  C: Float32Array;
  D: Float32Array;
  z: Float32Array;
  deltaBias: Float32Array;
  initialState: Float32Array;
}

/** PyTorch's softplus (threshold 20: linear above it, as F.softplus does). */
function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** (n, l) -> (l, n) for batch `b` of a (b, n, l) array, so the inner loop over n reads contiguously. */
function transposeBatch(src: Float32Array, b: number, n: number, l: number, dst: Float32Array): void {
  const base = b * n * l;
  for (let s = 0; s < n; s++) {
    const row = base + s * l;
    for (let t = 0; t < l; t++) dst[t * n + s] = src[row + t];
  }
}

/** (b, r, c) -> (b, c, r) */
function swapLast(src: Float32Array, b: number, r: number, c: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let i = 0; i < b; i++) {
    const o = i * r * c;
    for (let j = 0; j < r; j++) for (let k = 0; k < c; k++) dst[o + k * r + j] = src[o + j * c + k];
  }
  return dst;
}

/** The inputs of a channels-last call in the (b, d, l) layout. */
function toChannelsFirst(x: ScanArrays, dims: ScanDims): ScanArrays {
  const { batch: b, dInner: d, dState: n, length: l } = dims;
  return {
    ...x,
    u: swapLast(x.u, b, l, d),
    delta: swapLast(x.delta, b, l, d),
    z: x.z && swapLast(x.z, b, l, d),
    B: swapLast(x.B, b, l, n),
    C: swapLast(x.C, b, l, n),
  };
}

/** Forward: writes y (b, d, l) (channels last: (b, l, d)) and lastState (b, d, n). */
export function scanForward(
  x: ScanArrays,
  dims: ScanDims,
  deltaSoftplus: boolean,
  y: Float32Array,
  lastState: Float32Array,
): void {
  if (!dims.channelsLast) return forwardCore(x, dims, deltaSoftplus, y, lastState);
  const { batch: b, dInner: d, length: l } = dims;
  const yt = new Float32Array(y.length);
  forwardCore(toChannelsFirst(x, dims), dims, deltaSoftplus, yt, lastState);
  y.set(swapLast(yt, b, d, l));
}

function forwardCore(
  x: ScanArrays,
  dims: ScanDims,
  deltaSoftplus: boolean,
  y: Float32Array,
  lastState: Float32Array,
): void {
  const { batch, dInner: D, dState: N, length: L } = dims;
  const Bt = new Float32Array(L * N), Ct = new Float32Array(L * N);
  const h = new Float64Array(N);
  for (let b = 0; b < batch; b++) {
    transposeBatch(x.B, b, N, L, Bt);
    transposeBatch(x.C, b, N, L, Ct);
    for (let d = 0; d < D; d++) {
      const off = (b * D + d) * L;
      const aOff = d * N;
      const bias = x.deltaBias ? x.deltaBias[d] : 0;
      const skip = x.D ? x.D[d] : 0;
      for (let s = 0; s < N; s++) h[s] = x.initialState ? x.initialState[(b * D + d) * N + s] : 0;
      for (let t = 0; t < L; t++) {
        const raw = x.delta[off + t] + bias;
        const dt = deltaSoftplus ? softplus(raw) : raw;
        const ut = x.u[off + t];
        const dtu = dt * ut;
        const tn = t * N;
        let acc = 0;
        for (let s = 0; s < N; s++) {
          const hs = Math.exp(dt * x.A[aOff + s]) * h[s] + dtu * Bt[tn + s];
          h[s] = hs;
          acc += hs * Ct[tn + s];
        }
        let out = acc + skip * ut;
        if (x.z) {
          const zt = x.z[off + t];
          out *= zt / (1 + Math.exp(-zt));
        }
        y[off + t] = out;
      }
      for (let s = 0; s < N; s++) lastState[(b * D + d) * N + s] = h[s];
    }
  }
}

/**
 * Backward: gradients of L with respect to every input (in the inputs' layout), given gy = dL/dy and
 * optionally gLast = dL/dlastState (b, d, n). Gradients of absent optional inputs are returned as zeros.
 */
export function scanBackward(
  x: ScanArrays,
  dims: ScanDims,
  deltaSoftplus: boolean,
  gy: Float32Array,
  gLast: Float32Array | undefined,
): ScanGradients {
  if (!dims.channelsLast) return backwardCore(x, dims, deltaSoftplus, gy, gLast);
  const { batch: b, dInner: d, dState: n, length: l } = dims;
  const g = backwardCore(toChannelsFirst(x, dims), dims, deltaSoftplus, swapLast(gy, b, l, d), gLast);
  return {
    ...g,
    u: swapLast(g.u, b, d, l),
    delta: swapLast(g.delta, b, d, l),
    z: swapLast(g.z, b, d, l),
    B: swapLast(g.B, b, n, l),
    C: swapLast(g.C, b, n, l),
  };
}

function backwardCore(
  x: ScanArrays,
  dims: ScanDims,
  deltaSoftplus: boolean,
  gy: Float32Array,
  gLast: Float32Array | undefined,
): ScanGradients {
  const { batch, dInner: D, dState: N, length: L } = dims;
  const g: ScanGradients = {
    u: new Float32Array(batch * D * L),
    delta: new Float32Array(batch * D * L),
    A: new Float32Array(D * N),
    B: new Float32Array(batch * N * L),
    C: new Float32Array(batch * N * L),
    D: new Float32Array(D),
    z: new Float32Array(batch * D * L),
    deltaBias: new Float32Array(D),
    initialState: new Float32Array(batch * D * N),
  };
  const Bt = new Float32Array(L * N), Ct = new Float32Array(L * N);
  const gBt = new Float64Array(L * N), gCt = new Float64Array(L * N); // accumulated over channels
  const hs = new Float64Array(L * N); // h_t of the current channel
  const as = new Float64Array(L * N); // a_t = exp(dt_t A) of the current channel
  const dts = new Float64Array(L), outs = new Float64Array(L);
  const gh = new Float64Array(N);
  const gA = new Float64Array(N);
  for (let b = 0; b < batch; b++) {
    transposeBatch(x.B, b, N, L, Bt);
    transposeBatch(x.C, b, N, L, Ct);
    gBt.fill(0);
    gCt.fill(0);
    for (let d = 0; d < D; d++) {
      const off = (b * D + d) * L;
      const aOff = d * N;
      const sOff = (b * D + d) * N;
      const bias = x.deltaBias ? x.deltaBias[d] : 0;
      const skip = x.D ? x.D[d] : 0;
      // recompute the forward of this channel, keeping h_t and a_t
      for (let s = 0; s < N; s++) gh[s] = x.initialState ? x.initialState[sOff + s] : 0; // h_{-1}, reused below
      for (let t = 0; t < L; t++) {
        const raw = x.delta[off + t] + bias;
        const dt = deltaSoftplus ? softplus(raw) : raw;
        dts[t] = dt;
        const dtu = dt * x.u[off + t];
        const tn = t * N;
        let acc = 0;
        for (let s = 0; s < N; s++) {
          const prev = t > 0 ? hs[tn - N + s] : gh[s];
          const a = Math.exp(dt * x.A[aOff + s]);
          as[tn + s] = a;
          const h = a * prev + dtu * Bt[tn + s];
          hs[tn + s] = h;
          acc += h * Ct[tn + s];
        }
        outs[t] = acc + skip * x.u[off + t];
      }
      // reverse pass
      for (let s = 0; s < N; s++) gh[s] = gLast ? gLast[sOff + s] : 0;
      gA.fill(0);
      let gD = 0, gBias = 0;
      for (let t = L - 1; t >= 0; t--) {
        const ut = x.u[off + t];
        let gOut = gy[off + t];
        if (x.z) {
          const zt = x.z[off + t];
          const sg = 1 / (1 + Math.exp(-zt));
          g.z[off + t] = gOut * outs[t] * sg * (1 + zt * (1 - sg));
          gOut *= zt * sg;
        }
        gD += gOut * ut;
        const dt = dts[t];
        const tn = t * N;
        let gU = gOut * skip, gDt = 0;
        for (let s = 0; s < N; s++) {
          const ghs = gh[s] + gOut * Ct[tn + s]; // dL/dh_t
          gCt[tn + s] += gOut * hs[tn + s];
          const prev = t > 0 ? hs[tn - N + s] : (x.initialState ? x.initialState[sOff + s] : 0);
          const a = as[tn + s];
          const An = x.A[aOff + s];
          const gDecay = ghs * prev * a; // dL/d(dt A) through a = exp(dt A)
          gDt += gDecay * An + ghs * Bt[tn + s] * ut;
          gA[s] += gDecay * dt;
          gBt[tn + s] += ghs * dt * ut;
          gU += ghs * dt * Bt[tn + s];
          gh[s] = ghs * a; // dL/dh_{t-1}
        }
        g.u[off + t] = gU;
        const gDelta = deltaSoftplus ? gDt / (1 + Math.exp(-(x.delta[off + t] + bias))) : gDt;
        g.delta[off + t] = gDelta;
        gBias += gDelta;
      }
      for (let s = 0; s < N; s++) {
        g.initialState[sOff + s] = gh[s];
        g.A[aOff + s] += gA[s];
      }
      g.D[d] += gD;
      g.deltaBias[d] += gBias;
    }
    // (l, n) -> (n, l) into this batch's rows
    const base = b * N * L;
    for (let s = 0; s < N; s++) {
      for (let t = 0; t < L; t++) {
        g.B[base + s * L + t] = gBt[t * N + s];
        g.C[base + s * L + t] = gCt[t * N + s];
      }
    }
  }
  return g;
}
