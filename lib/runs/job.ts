/**
 * Training jobs for PyTorch's distributed engine (torchrun; NCCL on GPUs, gloo on CPU processes): the lab
 * plans a run (or a plan's runs) and writes a self-contained folder that any machine with torch runs, and
 * `import` (import_job.ts) brings its records and checkpoints back into the lab's results.
 *
 * The folder (`deno task mambabyte job ... --out DIR`):
 *   job.json                 what was written: engine, device, processes, the lab's commit, the runs
 *   run.sh                   torchrun for every run in turn (GPUS, NNODES, NODE_RANK, RDZV_ENDPOINT, PYTHON
 *                            override the defaults); started again it resumes each run from its checkpoint
 *   train.py mamba.py baselines.py launch.py      the trainer and models (lib/torch/), copied
 *   data/<scale>-<domain>-<split>.bin             the lab's split as raw bytes (memory-mapped by train.py)
 *   data/manifest.json       each shard's bytes and sha256, and the corpus manifest's checksums it came from
 *   runs/<name>/run.json     model, config, steps, batch, length, schedule, AdamW settings and decay
 *                            exemptions exactly as the lab's trainer uses them
 *   runs/<name>/init/        the lab's initial weights for the run's seed (model.safetensors, config.json)
 *   runs/<name>/offsets.u64  the window starts of every step (steps x batch, uint64), drawn by the lab's
 *                            seeded batcher: the job trains on the lab's batches, whatever the process count
 * The folder is written under a temporary name and renamed into place: it exists whole or not at all.
 */
import { createModel, family, saveModel } from "../models/registry.ts";
import { countParameters, disposeModel } from "../models/lm.ts";
import { ByteBatcher } from "../data/bytes.ts";
import { ADAMW_DEFAULTS, MIN_LR_RATIO } from "../train/adamw.ts";
import { CHECKPOINT_DIR, TRAIN_LOG } from "../train/trainer.ts";
import { InputError } from "../io/errors.ts";
import { sha256Bytes } from "../data/corpora/acquire.ts";
import { atomicWriteFile, pathExists } from "../io/atomic.ts";
import { gitCommit } from "../results/store.ts";
import { REPO_ROOT } from "../paths.ts";
import { domainText, type RunSpec, trainSchedule } from "./experiment.ts";

/** Where the job's processes run: CUDA GPUs (NCCL) or CPU processes (gloo). */
export type JobDevice = "cuda" | "cpu";

export interface JobOptions {
  /** Processes per node (GPUs per node on cuda). */
  gpus: number;
  device: JobDevice;
  /** Rows of a process's share of the batch per forward pass (gradient accumulation); default: all of it. */
  microBatch?: number;
  /**
   * How the processes share the model: "ddp" (default), each a copy of the weights and AdamW moments, or
   * "fsdp", each a shard of them (PyTorch's fully_shard; torch 2.6 or newer).
   */
  parallel?: JobParallel;
  /** The data/ folder (default the repository's). */
  dataDir?: string;
  quiet?: boolean;
}

export const JOB_FORMAT = "mambabyte-lab-job/1";
export const JOB_RUN_FORMAT = "mambabyte-lab-job-run/1";
/** The model families train.py builds (byte-level; subword models would need the tokenizer there too). */
export const JOB_KINDS = ["mambabyte", "transformer", "megabyte", "perceiver_ar"] as const;
const TORCH_FILES = ["train.py", "mamba.py", "baselines.py", "launch.py"];

export interface JobFile {
  format: typeof JOB_FORMAT;
  engine: "torch";
  device: JobDevice;
  gpus: number;
  lab_commit: string;
  created: string;
  runs: { name: string; dir: string; spec: RunSpec; steps: number; parameters: number }[];
}

export type JobParallel = "ddp" | "fsdp";

/** What run.json holds (read by train.py). */
export interface JobRun {
  format: typeof JOB_RUN_FORMAT;
  name: string;
  kind: string;
  config: Record<string, unknown>;
  device: JobDevice;
  steps: number;
  batch: number;
  length: number;
  /** Rows per forward pass of each process; absent: the process's whole share (whatever the count). */
  micro_batch?: number;
  /** "ddp": a copy of the model per process; "fsdp": weights, gradients and moments sharded over them. */
  parallel: JobParallel;
  lr: number;
  warmup: number;
  min_lr_ratio: number;
  seed: number;
  adamw: { beta1: number; beta2: number; eps: number; weight_decay: number; clip_norm: number };
  no_weight_decay: string[];
  flops_per_token: number;
  bytes_per_token: number;
  checkpoint_every: number;
  train_data: Shard;
  test_data: Shard;
  eval_window: number;
  /** The split the test shard holds ("test", or "validation"). */
  eval_split: string;
  /** Inputs are padded to a multiple of this when scored (MegaByte's patch; 1 for the others). */
  length_multiple: number;
  offsets: string;
}

interface Shard {
  file: string;
  bytes: number;
  sha256: string;
}

/** A file name from a run name (plans nest runs with "/"). */
const runFolder = (name: string) => name.replaceAll("/", "__");

/** The run directory run.sh and train.py use for a run of the job. */
export function jobRunDir(jobDir: string, name: string): string {
  return `${jobDir}/runs/${runFolder(name)}`;
}

/**
 * Writes the job folder for `specs` at `out` (which must not exist). Returns what job.json says.
 * Errors (an unsupported model, a batch the processes cannot share, data that is missing) are
 * InputErrors naming the field, raised before anything is written.
 */
export async function writeJob(specs: RunSpec[], out: string, opts: JobOptions): Promise<JobFile> {
  if (!specs.length) {
    throw new InputError("job", undefined, "job: no runs to write (the plan selection is empty)");
  }
  if (await pathExists(out)) {
    throw new InputError(
      out,
      undefined,
      `${out} already exists; choose another --out (a job folder is written once)`,
    );
  }
  const world = opts.gpus;
  for (const spec of specs) {
    family(spec.model);
    if (!jobSupports(spec.model)) {
      throw new InputError(
        "--model",
        "model",
        `job: ${spec.model} cannot run on the torch engine (it runs ${JOB_KINDS.join(", ")})`,
      );
    }
    if (spec.train.batch % world !== 0) {
      throw new InputError(
        "--batch",
        "batch",
        `job: the batch of ${spec.name} (${spec.train.batch}) must be a multiple of --gpus ${world}`,
      );
    }
    const rows = spec.train.batch / world;
    if (opts.microBatch !== undefined && rows % opts.microBatch !== 0) {
      throw new InputError(
        "--micro-batch",
        "micro-batch",
        `job: --micro-batch ${opts.microBatch} must divide the ${rows} rows each process gets of ${spec.name}'s batch`,
      );
    }
  }
  const parent = out.includes("/") ? out.slice(0, out.lastIndexOf("/")) || "/" : ".";
  await Deno.mkdir(parent, { recursive: true });
  const tmp = `${out}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.mkdir(`${tmp}/data`, { recursive: true });
    for (const f of TORCH_FILES) await Deno.copyFile(`${REPO_ROOT}lib/torch/${f}`, `${tmp}/${f}`);
    const shards = new Map<string, Shard>();
    const manifest: Record<string, unknown> = {};
    const shard = async (key: string, bytes: Uint8Array, source: Record<string, unknown>) => {
      const existing = shards.get(key);
      if (existing) return existing;
      const s: Shard = { file: `data/${key}.bin`, bytes: bytes.length, sha256: sha256Bytes(bytes) };
      await Deno.writeFile(`${tmp}/${s.file}`, bytes);
      shards.set(key, s);
      manifest[s.file] = { ...s, ...source };
      return s;
    };
    const runs: JobFile["runs"] = [];
    for (const spec of specs) {
      const text = await domainText(spec.domain, spec.scale, spec.eval.split, opts.dataDir);
      const t = spec.train;
      if (text.train.length < t.length + 1) {
        throw new InputError(
          text.trainPath,
          undefined,
          `${text.trainPath}: ${text.train.length} bytes, fewer than one training window of ${t.length + 1}`,
        );
      }
      const source = { source: text.source, domain: spec.domain, scale: spec.scale };
      const train = await shard(`${spec.scale}-${spec.domain}-train`, text.train, {
        ...source,
        split: "train",
      });
      const testBytes = spec.eval.maxBytes ? text.test.subarray(0, spec.eval.maxBytes) : text.test;
      const test = await shard(
        `${spec.scale}-${spec.domain}-${text.evalSplit}${spec.eval.maxBytes ? `-${testBytes.length}` : ""}`,
        testBytes,
        { ...source, split: text.evalSplit },
      );
      const model = createModel(spec.model, { ...spec.config }, t.seed);
      try {
        const multiple = model.lengthMultiple ?? 1;
        if (t.length % multiple !== 0) {
          throw new InputError(
            "--length",
            "length",
            `job: ${spec.model} needs a sequence length that is a multiple of ${multiple} (got ${t.length})`,
          );
        }
        const { steps, warmup } = trainSchedule(spec, model);
        const parameters = countParameters(model);
        const dir = jobRunDir(tmp, spec.name);
        await saveModel(model, `${dir}/init`, { run: spec.name, role: "initial weights" });
        const batcher = new ByteBatcher(text.train, t.batch, t.length, t.seed);
        const offsets = new BigUint64Array(steps * t.batch);
        for (let s = 0; s < steps; s++) {
          batcher.nextStarts().forEach((start, i) => offsets[s * t.batch + i] = BigInt(start));
        }
        await Deno.writeFile(`${dir}/offsets.u64`, new Uint8Array(offsets.buffer));
        const run: JobRun = {
          format: JOB_RUN_FORMAT,
          name: spec.name,
          kind: spec.model,
          config: model.config,
          device: opts.device,
          steps,
          batch: t.batch,
          length: t.length,
          ...(opts.microBatch !== undefined ? { micro_batch: opts.microBatch } : {}),
          parallel: opts.parallel ?? "ddp",
          lr: t.lr,
          warmup,
          min_lr_ratio: MIN_LR_RATIO,
          seed: t.seed,
          adamw: {
            beta1: ADAMW_DEFAULTS.beta1,
            beta2: ADAMW_DEFAULTS.beta2,
            eps: ADAMW_DEFAULTS.eps,
            weight_decay: ADAMW_DEFAULTS.weightDecay,
            clip_norm: ADAMW_DEFAULTS.clipNorm,
          },
          no_weight_decay: [...model.params.keys()].filter((n) => model.noWeightDecay(n)),
          flops_per_token: model.trainFlopsPerToken(t.length),
          bytes_per_token: 1,
          checkpoint_every: t.checkpointEvery ?? Math.max(1, Math.round(steps / 20)),
          train_data: train,
          test_data: test,
          eval_window: spec.eval.window ?? t.length,
          eval_split: text.evalSplit,
          length_multiple: model.lengthMultiple ?? 1,
          offsets: "offsets.u64",
        };
        await atomicWriteFile(`${dir}/run.json`, JSON.stringify(run, null, 2) + "\n");
        runs.push({
          name: spec.name,
          dir: `runs/${runFolder(spec.name)}`,
          spec,
          steps,
          parameters,
        });
        if (!opts.quiet) {
          console.error(
            `job: ${spec.name}: ${spec.model}, ${parameters.toLocaleString("en")} parameters, ${steps} ` +
              `steps of ${t.batch} x ${t.length} bytes on ${spec.domain} (${text.source})`,
          );
        }
      } finally {
        disposeModel(model);
      }
    }
    await atomicWriteFile(`${tmp}/data/manifest.json`, JSON.stringify(manifest, null, 2) + "\n");
    const job: JobFile = {
      format: JOB_FORMAT,
      engine: "torch",
      device: opts.device,
      gpus: world,
      lab_commit: gitCommit(),
      created: new Date().toISOString(),
      runs,
    };
    await atomicWriteFile(`${tmp}/job.json`, JSON.stringify(job, null, 2) + "\n");
    await atomicWriteFile(`${tmp}/run.sh`, runScript(job));
    await Deno.chmod(`${tmp}/run.sh`, 0o755);
    await atomicWriteFile(`${tmp}/README.md`, jobReadme(job));
    await Deno.rename(tmp, out);
    return job;
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** run.sh: torchrun (through launch.py) for every run in turn; the environment overrides the defaults. */
function runScript(job: JobFile): string {
  const runs = job.runs.map((r) => `  ${JSON.stringify(r.dir)}`).join("\n");
  return `#!/usr/bin/env bash
# Trains every run of this job in turn on PyTorch's distributed engine (written by the MambaByte lab at
# commit ${job.lab_commit}; see README.md). Started again after a kill, each run continues from its
# checkpoint; a finished run is skipped.
#
#   GPUS            processes per node (default ${job.gpus}${
    job.device === "cuda" ? ": one per GPU" : ", CPU processes"
  })
#   NNODES          nodes (default 1); NODE_RANK this node's index (default 0)
#   RDZV_ENDPOINT   host:port of the rendezvous (default localhost:29500; on a cluster: node 0's address)
#   PYTHON          the python with torch (default python3)
#   NCCL_NVLS_ENABLE=0 is set unless given (NVLink multicast off, as the lab's GPU machines need)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=\${PYTHON:-python3}
export NCCL_NVLS_ENABLE=\${NCCL_NVLS_ENABLE:-0}
export OMP_NUM_THREADS=\${OMP_NUM_THREADS:-1}
runs=(
${runs}
)
for run in "\${runs[@]}"; do
  "$PYTHON" launch.py --nnodes "\${NNODES:-1}" --node_rank "\${NODE_RANK:-0}" --nproc_per_node "\${GPUS:-${job.gpus}}" \\
    --rdzv_backend c10d --rdzv_endpoint "\${RDZV_ENDPOINT:-localhost:29500}" --rdzv_id "\${RDZV_ID:-mambabyte-job}" \\
    train.py "$run" "$@"
done
`;
}

function jobReadme(job: JobFile): string {
  const rows = job.runs.map((r) =>
    `| ${r.name} | ${r.spec.model} | ${
      r.parameters.toLocaleString("en")
    } | ${r.steps} | ${r.spec.train.batch} x ${r.spec.train.length} |`
  );
  return `# A MambaByte lab training job (torch engine)

Written by the MambaByte lab at commit ${job.lab_commit} on ${job.created}, for ${job.gpus} ${
    job.device === "cuda" ? "GPU(s) per node (NCCL)" : "CPU process(es) (gloo)"
  }.

| run | model | parameters | steps | batch x bytes |
|---|---|---|---|---|
${rows.join("\n")}

Run it with \`bash run.sh\` on a machine with PyTorch (Debian's python3-torch does for CPU jobs;
mamba_ssm is used for Mamba models on CUDA when it is importable, else lib/torch/mamba.py's reference).
Several nodes: on each node \`NNODES=N NODE_RANK=i RDZV_ENDPOINT=node0:29500 bash run.sh\`. Each run
writes \`${CHECKPOINT_DIR}/\`, \`${TRAIN_LOG}\` and \`eval.json\` into its folder under runs/; a killed job
continues from its last checkpoint when started again. Bring the results into the lab with
\`deno task mambabyte import DIR\`.
`;
}

/** Whether a model family can run on the torch engine (the byte-level families with a PyTorch twin). */
export function jobSupports(kind: string): boolean {
  return (JOB_KINDS as readonly string[]).includes(kind);
}
