/**
 * Peer measurements ("anchors") to print beside our own figures: data/anchors/ holds byte-identical
 * copies of the measured peer data (see its README.md), so the repository is self-contained.
 *
 * Two files carry selective-scan timings:
 *  - cpu-pytorch-*.json: PyTorch on this 2-core CPU; `scan` entries keyed (b, d_inner, d_state, length)
 *    with mamba.py's pscan (`pscan_fwd_s`, `pscan_fwdbwd_s`) and the reference loop (`seq_fwd_s`, ...).
 *  - h200-selective-scan-*.json: one NVIDIA H200; entries keyed (B, D, N, L) with mamba_ssm's CUDA kernel
 *    (`cuda_fwd_ms`, `cuda_fwdbwd_ms`), mamba.py's pscan (`pscan_fwd_ms`) and the loop (`ref_fwd_ms`).
 */
import type { BackendName } from "../backend.ts";
import { type Pass, type Shape } from "./options.ts";
import { ANCHORS_DIR, repoRelative } from "../paths.ts";

/** One peer figure for a (shape, pass). */
export interface PeerFigure {
  /** Short name for tables: "pytorch-pscan", "pytorch-ref", "mamba_ssm-cuda". */
  peer: string;
  ms: number;
  /** Which hardware the peer ran on. */
  peerDevice: string;
  /** File (relative to the repository root) and key the figure comes from. */
  source: string;
  key: string;
}

interface CpuScanEntry {
  b: number;
  d_inner: number;
  d_state: number;
  length: number;
  [key: string]: number;
}
interface GpuScanEntry {
  B: number;
  D: number;
  N: number;
  L: number;
  [key: string]: number;
}

/** (peer name, key in seconds or ms, pass) per file kind, in order of preference (the first is "the" peer). */
const CPU_KEYS: { peer: string; key: string; pass: Pass }[] = [
  { peer: "pytorch-pscan", key: "pscan_fwd_s", pass: "fwd" },
  { peer: "pytorch-pscan", key: "pscan_fwdbwd_s", pass: "fwd+bwd" },
  { peer: "pytorch-ref", key: "seq_fwd_s", pass: "fwd" },
  { peer: "pytorch-ref", key: "seq_fwdbwd_s", pass: "fwd+bwd" },
];
const GPU_KEYS: { peer: string; key: string; pass: Pass }[] = [
  { peer: "mamba_ssm-cuda", key: "cuda_fwd_ms", pass: "fwd" },
  { peer: "mamba_ssm-cuda", key: "cuda_fwdbwd_ms", pass: "fwd+bwd" },
  { peer: "pytorch-pscan", key: "pscan_fwd_ms", pass: "fwd" },
  { peer: "pytorch-ref", key: "ref_fwd_ms", pass: "fwd" },
];

async function anchorFiles(prefix: string, dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.startsWith(prefix) && e.name.endsWith(".json")) names.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort().reverse(); // newest date first
}

/**
 * Peer figures for a shape and pass, best first. CPU peers (measured on this machine kind) apply to the
 * cpu and wasm backends; the H200 peers apply to webgpu only when the device is an H200. Empty when no
 * anchor covers the shape.
 */
export async function peerFigures(
  backend: BackendName,
  device: string,
  shape: Shape,
  pass: Pass,
  dir = `${ANCHORS_DIR}/`,
): Promise<PeerFigure[]> {
  const out: PeerFigure[] = [];
  if (backend === "cpu" || backend === "wasm") {
    for (const name of await anchorFiles("cpu-pytorch-", dir)) {
      const data = JSON.parse(await Deno.readTextFile(dir + name)) as {
        what?: string;
        scan?: CpuScanEntry[];
      };
      const entry = data.scan?.find((e) =>
        e.b === shape.B && e.d_inner === shape.D && e.d_state === shape.N && e.length === shape.L
      );
      if (!entry) continue;
      for (const { peer, key } of CPU_KEYS.filter((k) => k.pass === pass)) {
        if (typeof entry[key] === "number") {
          out.push({
            peer,
            ms: entry[key] * 1000,
            peerDevice: "this 2-core CPU, PyTorch 1.13",
            source: repoRelative(dir + name),
            key,
          });
        }
      }
      break;
    }
  } else if (backend === "webgpu" && /H200/i.test(device)) {
    for (const name of await anchorFiles("h200-selective-scan-", dir)) {
      const data = JSON.parse(await Deno.readTextFile(dir + name)) as GpuScanEntry[];
      const entry = data.find((e) =>
        e.B === shape.B && e.D === shape.D && e.N === shape.N && e.L === shape.L
      );
      if (!entry) continue;
      for (const { peer, key } of GPU_KEYS.filter((k) => k.pass === pass)) {
        if (typeof entry[key] === "number") {
          out.push({
            peer,
            ms: entry[key],
            peerDevice: "NVIDIA H200, PyTorch",
            source: repoRelative(dir + name),
            key,
          });
        }
      }
      break;
    }
  }
  return out;
}
