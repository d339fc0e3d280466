"""The lab's trainer on PyTorch's distributed engine: one run of a job folder written by
`deno task mambabyte job` (lib/runs/job.ts), on one or many processes started by torchrun.

    python3 launch.py --nproc_per_node N train.py RUN_DIR     (what run.sh does)
    python3 train.py RUN_DIR                                  (one process, no torchrun)

What it keeps equal to the lab's trainer (lib/train/trainer.ts), so that a job's curve is the lab's curve:
  - the model starts from the lab's initial weights (RUN_DIR/init/, written by the job writer);
  - step s trains on the lab's batch s: the window starts in RUN_DIR/offsets.u64 ((steps, batch) uint64,
    drawn by the lab's seeded batcher), each rank taking its own contiguous slice of the rows, in
    micro-batches of `micro_batch` rows (gradient accumulation), so any number of processes sees the
    same global batch and the same mean loss;
  - AdamW with the lab's settings and decay exemptions, warm-up then cosine schedule, global-norm clipping
    (scale = clip / norm when norm > clip), fp32 parameters; a non-finite loss or norm stops the run
    before the update.
What it writes (rank 0): RUN_DIR/checkpoint/ (model.safetensors under mamba_ssm's / the lab's names,
config.json, optimizer.safetensors with m.<name> and v.<name>, trainer_state.json), replaced atomically
(written under a temporary name, renamed); train_log.jsonl in the lab's record schema plus bytes, FLOPs and
GPUs; eval.json (bits per byte of the test shard) at the end. Started again after a kill it continues
from the checkpoint, with the log cut back to it, so the curve continues exactly.

Needs only torch and numpy (Debian's python3-torch works); uses mamba_ssm for Mamba models when it is
importable (installed, or a source checkout named by MAMBA_SSM_SOURCE with its compiled CUDA scan on
PYTHONPATH) and the job runs on CUDA, else the PyTorch reference in mamba.py. Never downloads anything.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import math
import os
import shutil
import signal
import struct
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CHECKPOINT = "checkpoint"
LOG = "train_log.jsonl"
STATE_FORMAT = "mambabyte-lab-torch-trainer/1"

# ------------------------------------------------------------------------------------------------
# safetensors (the format is a little-endian u64 header length, a JSON header, then the raw tensors)

DTYPES = {"F32": (torch.float32, 4), "I32": (torch.int32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def read_safetensors(path: str) -> dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dtype, _ = DTYPES[t["dtype"]]
        a, b = t["data_offsets"]
        raw = bytearray(blob[8 + n + a : 8 + n + b])
        out[name] = torch.frombuffer(raw, dtype=dtype).reshape(t["shape"]).clone() if b > a else torch.zeros(t["shape"], dtype=dtype)
    return out


def write_safetensors(path: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    header, parts, at = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        data = t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [at, at + len(data)]}
        parts.append(data)
        at += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for p in parts:
            f.write(p)
        f.flush()
        os.fsync(f.fileno())


# ------------------------------------------------------------------------------------------------
# The run's settings, data and model


def fail(message: str) -> None:
    """One line naming what is wrong (from the first process only), exit status 2 (no traceback)."""
    if os.environ.get("RANK", "0") == "0":
        print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def read_json(path: str, what: str, fix: str):
    """A JSON file, or one line naming it, what it should hold and what to do."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: cannot read {what} ({e}); {fix}")


def read_run(run_dir: str) -> dict:
    path = os.path.join(run_dir, "run.json")
    run = read_json(path, "the run's settings", "write the job again with `deno task mambabyte job`")
    if run.get("format") != "mambabyte-lab-job-run/1":
        fail(f'{path}: format is not "mambabyte-lab-job-run/1"')
    for k in ("kind", "steps", "batch", "length", "lr", "warmup", "min_lr_ratio", "adamw", "no_weight_decay", "train_data", "offsets"):
        if k not in run:
            fail(f"{path}: the field {k} is missing")
    return run


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def open_shard(job_dir: str, shard: dict, verify: bool) -> np.ndarray:
    """A byte shard, memory-mapped; its size (and, with verify, its sha256) checked against the job's."""
    path = os.path.join(job_dir, shard["file"])
    try:
        size = os.path.getsize(path)
    except OSError as e:
        fail(f"{path}: {e.strerror} (the job's data shard)")
    if size != shard["bytes"]:
        fail(f"{path}: {size} bytes, expected {shard['bytes']} (a damaged or replaced shard: write the job again)")
    if verify and sha256(path) != shard["sha256"]:
        fail(f"{path}: sha256 differs from the job's manifest (a damaged or replaced shard: write the job again)")
    return np.memmap(path, dtype=np.uint8, mode="r")


def lr_at(step: int, run: dict) -> float:
    """The lab's warmupCosine (lib/train/adamw.ts): linear warm-up to lr, cosine to lr * min_lr_ratio."""
    peak, warmup, total, floor = run["lr"], run["warmup"], run["steps"], run["min_lr_ratio"]
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class Objective(nn.Module):
    """The network and the lab's training loss of ids (b, l + 1): forward returns the mean nats."""

    def __init__(self, net: nn.Module, loss_fn):
        super().__init__()
        self.net = net
        self.loss_fn = loss_fn

    def forward(self, ids):
        return self.loss_fn(self.net, ids)


# parts of mamba_ssm's package a Mamba-1 language model never runs, whose imports need builds (Mamba-2's
# triton kernels, causal-conv1d) or the network (the hub helpers): stand-ins when loading from a checkout
MAMBA_SSM_UNUSED = {
    "mamba_ssm.modules.mamba2": {"Mamba2": None},
    "mamba_ssm.modules.mamba3": {"Mamba3": None},
    "mamba_ssm.modules.mha": {"MHA": None},
    "mamba_ssm.modules.mlp": {"GatedMLP": None},
    "mamba_ssm.utils.generation": {"GenerationMixin": object},
    "mamba_ssm.utils.hf": {"load_config_hf": None, "load_state_dict_hf": None},
}


def forget_mamba_ssm() -> None:
    """Drops mamba_ssm and its submodules from sys.modules (a failed or partial import's leftovers)."""
    for name in [k for k in sys.modules if k == "mamba_ssm" or k.startswith("mamba_ssm.")]:
        del sys.modules[name]


def mamba_ssm_importable() -> bool:
    """Whether mamba_ssm's MambaLMHeadModel imports: installed, or from the source checkout named by
    MAMBA_SSM_SOURCE (the package's own __init__ skipped: it imports every model family), with its CUDA
    scan (the compiled module selective_scan_cuda) importable, e.g. from a folder on PYTHONPATH."""
    try:
        import mamba_ssm.models.mixer_seq_simple  # noqa: F401
        return True
    except Exception as err:  # ImportError, or an installed build that fails as it loads
        installed_error = err
    src = os.environ.get("MAMBA_SSM_SOURCE")
    if not src:
        return False
    import types

    forget_mamba_ssm()  # what the failed import above left half-made
    src = os.path.abspath(src)
    for pkg in ["mamba_ssm", "mamba_ssm.models", "mamba_ssm.modules", "mamba_ssm.ops", "mamba_ssm.ops.triton",
                "mamba_ssm.utils"]:
        module = types.ModuleType(pkg)
        module.__path__ = [os.path.join(src, *pkg.split("."))]
        sys.modules[pkg] = module
    for name, attrs in MAMBA_SSM_UNUSED.items():
        module = types.ModuleType(name)
        for key, value in attrs.items():
            setattr(module, key, value)
        sys.modules[name] = module
    try:
        import selective_scan_cuda  # noqa: F401
        import mamba_ssm.models.mixer_seq_simple  # noqa: F401,F811
    except Exception as err:
        print(f"train.py: mamba_ssm from MAMBA_SSM_SOURCE={src} does not import ({err}; installed: "
              f"{installed_error}): the PyTorch reference (mamba.py) trains instead", file=sys.stderr, flush=True)
        forget_mamba_ssm()
        return False
    return True


def build_net(run: dict, device: torch.device) -> tuple[nn.Module, object, object, str]:
    """(network, training loss of ids (b, l + 1), logits of inputs (b, l) -> (b, l, V), implementation name)."""
    kind, cfg = run["kind"], run["config"]
    if kind == "mambabyte":
        if device.type == "cuda" and mamba_ssm_importable():
            from mamba_ssm.models.config_mamba import MambaConfig
            from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel

            import dataclasses

            # the fields this mamba_ssm's MambaConfig has (1.x lacks d_intermediate, for one)
            known = {f.name for f in dataclasses.fields(MambaConfig)}
            net = MambaLMHeadModel(MambaConfig(**{k: v for k, v in cfg.items() if k in known}), device=device)
            vocab = cfg["vocab_size"]

            def logits(net, inputs):
                return net(inputs).logits[..., :vocab]

            def loss(net, ids):
                out = logits(net, ids[:, :-1])
                return F.cross_entropy(out.reshape(-1, vocab).float(), ids[:, 1:].reshape(-1))

            return net, loss, logits, "mamba_ssm (MambaLMHeadModel, CUDA scan)"
        from mamba import MambaLM

        return (MambaLM(cfg).to(device), lambda net, ids: net.loss(ids), lambda net, x: net.logits(x),
                "PyTorch reference (lib/torch/mamba.py)")
    if kind in ("transformer", "megabyte", "perceiver_ar"):
        from baselines import build

        return (build(kind, cfg).to(device), lambda net, ids: net.loss(ids), lambda net, x: net.logits(x),
                "PyTorch reference (lib/torch/baselines.py)")
    fail(f"run.json: kind {kind!r} has no PyTorch model here (mambabyte, transformer, megabyte, perceiver_ar)")


def named_trainables(net: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Parameters under the lab's names, each once (a tied head is the embedding)."""
    return list(net.named_parameters())


# ------------------------------------------------------------------------------------------------
# Checkpoints


def whole(t: torch.Tensor) -> torch.Tensor:
    """A tensor whole on this process: an FSDP shard (a DTensor) gathered from every process (a collective:
    every process calls it, in the same order), any other tensor as it is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def gather_checkpoint(net: nn.Module, opt: torch.optim.Optimizer, names: dict) -> tuple[dict, dict]:
    """The weights (state_dict names) and AdamW moments (m.<name>, v.<name>) as whole tensors. Under FSDP
    every process must call it (the shards are gathered); under DDP each process holds them already."""
    sd = {k: whole(v) for k, v in net.state_dict().items()}
    moments = {}
    for p, name in names.items():
        st = opt.state.get(p, {})
        moments[f"m.{name}"] = whole(st["exp_avg"]) if "exp_avg" in st else torch.zeros(p.shape)
        moments[f"v.{name}"] = whole(st["exp_avg_sq"]) if "exp_avg_sq" in st else torch.zeros(p.shape)
    return sd, moments


def save_checkpoint(run_dir: str, sd: dict, moments: dict, state: dict) -> None:
    """Writes checkpoint.tmp-<pid>/ and swaps it in for checkpoint/ (the old one stays whole until then)."""
    final = os.path.join(run_dir, CHECKPOINT)
    tmp = os.path.join(run_dir, f"{CHECKPOINT}.tmp-{os.getpid()}")
    old = final + ".old"
    os.makedirs(tmp, exist_ok=True)
    write_safetensors(os.path.join(tmp, "model.safetensors"), sd, {"format": "pt", "step": str(state["step"]), "engine": "torch"})
    with open(os.path.join(run_dir, "init", "config.json")) as f:
        config_text = f.read()
    with open(os.path.join(tmp, "config.json"), "w") as f:
        f.write(config_text)
        f.flush()
        os.fsync(f.fileno())
    write_safetensors(os.path.join(tmp, "optimizer.safetensors"), moments, {"format": "mambabyte-lab-adamw"})
    with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
        json.dump(state, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    if os.path.exists(final):
        if os.path.exists(old):
            shutil.rmtree(old)
        os.rename(final, old)
    os.rename(tmp, final)
    fsync_dir(run_dir)
    if os.path.exists(old):
        shutil.rmtree(old)


def fsync_dir(path: str) -> None:
    """Makes the renames in a folder durable (they live in the folder's own entry)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(run_dir: str) -> None:
    """Removes checkpoint.tmp-<pid> folders left by processes killed while saving (never a live one's)."""
    for name in os.listdir(run_dir):
        if not name.startswith(CHECKPOINT + ".tmp-"):
            continue
        try:
            os.kill(int(name.rsplit("-", 1)[1]), 0)
            continue  # its writer still runs
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError):
            continue
        shutil.rmtree(os.path.join(run_dir, name))


def load_checkpoint(run_dir: str, net: nn.Module, fingerprint: dict):
    """Restores the weights from checkpoint/ (or checkpoint.old/) and returns (its folder, the trainer
    state), or None if there is none; the moments follow once the optimizer exists (load_moments)."""
    for d in (CHECKPOINT, CHECKPOINT + ".old"):
        ckpt = os.path.join(run_dir, d)
        if os.path.exists(os.path.join(ckpt, "trainer_state.json")):
            break
    else:
        return None
    path = os.path.join(ckpt, "trainer_state.json")
    state = read_json(path, "the trainer state", f"remove {ckpt} to start the run over")
    if state.get("format") != STATE_FORMAT:
        fail(f'{path}: format is not "{STATE_FORMAT}"; remove {ckpt} to start the run over')
    if state.get("fingerprint") != fingerprint:
        fail(f"{path}: the run's settings changed since this checkpoint (run.json); remove {ckpt} to start over")
    load_weights(net, os.path.join(ckpt, "model.safetensors"))
    return ckpt, state


def load_moments(ckpt: str, state: dict, opt: torch.optim.Optimizer, names: dict) -> None:
    """AdamW's moments from a checkpoint, each placed as its parameter is (an FSDP shard: this process's
    part of the whole tensor)."""
    moments = read_safetensors(os.path.join(ckpt, "optimizer.safetensors"))

    def placed(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        t = t.to(p.device).reshape(p.shape)
        if hasattr(p, "device_mesh"):  # a DTensor: keep this process's shard
            from torch.distributed.tensor import distribute_tensor

            return distribute_tensor(t, p.device_mesh, p.placements)
        return t

    for p, name in names.items():
        opt.state[p] = {
            "step": torch.tensor(float(state["adam_step"])),
            "exp_avg": placed(moments[f"m.{name}"], p),
            "exp_avg_sq": placed(moments[f"v.{name}"], p),
        }


def shard_model(model: nn.Module, device: torch.device, world: int) -> None:
    """FSDP: each block (every element of the model's ModuleLists, innermost first) and then the whole
    model sharded over the processes with PyTorch's fully_shard, in place: parameter names stay."""
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
    except Exception as err:  # torch before 2.6 has no public fully_shard; 1.13's FSDP fails to import on 3.11
        fail(f"run.json: parallel is fsdp, which needs PyTorch's fully_shard (torch 2.6 or newer); torch "
             f"{torch.__version__} here has none ({type(err).__name__}): write the job without --fsdp")
    mesh = init_device_mesh(device.type, (world,))
    blocks = [m for lst in model.modules() if isinstance(lst, nn.ModuleList) for m in lst]
    for block in reversed(blocks):
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)


def load_weights(net: nn.Module, path: str) -> None:
    tensors = read_safetensors(path)
    own = net.state_dict()
    missing = [k for k in own if k not in tensors]
    extra = [k for k in tensors if k not in own]
    if missing or extra:
        fail(f"{path}: the weights do not fit the model (missing {missing[:3]}, unexpected {extra[:3]})")
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(tensors[k].reshape(v.shape))


def read_log(run_dir: str, upto: int) -> list[str]:
    """The logged lines of steps <= upto (a torn last line from a kill is dropped)."""
    path = os.path.join(run_dir, LOG)
    if not os.path.exists(path):
        return []
    keep = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line)["step"] <= upto:
                    keep.append(line if line.endswith("\n") else line + "\n")
            except (ValueError, KeyError):
                pass
    return keep


def write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------
# Evaluation: the lab's evalWindows (contiguous windows of length + 1 bytes, stride length)


@torch.no_grad()
def evaluate(net: nn.Module, logits_fn, data: np.ndarray, window: int, multiple: int, device) -> dict:
    """Nats of every byte after the first, window by window, each position scored from the model's logits
    (PerceiverAR too, not its latents-only training loss); inputs padded at the end to the model's length
    multiple (MegaByte's patch), as the lab's scorer does: causal models never look ahead, so the padding
    changes none of the scored positions."""
    nats, count = 0.0, 0
    for start in range(0, len(data) - 1, window):
        w = torch.from_numpy(np.asarray(data[start : min(len(data), start + window + 1)], dtype=np.int64))
        n = len(w) - 1
        inputs = torch.zeros(1, -(-n // multiple) * multiple, dtype=torch.int64)
        inputs[0, :n] = w[:-1]
        out = logits_fn(net, inputs.to(device))[0, :n].float()
        nats += float(F.cross_entropy(out, w[1:].to(device), reduction="sum"))
        count += n
    return {"bytes": int(len(data)), "predicted": count, "nats": nats, "bits_per_byte": nats / count / math.log(2)}


# ------------------------------------------------------------------------------------------------
# The loop


def make_optimizer(trainables, no_decay: set, lr: float, a: dict) -> torch.optim.Optimizer:
    """AdamW with the lab's settings: decoupled decay except on the parameters named in no_decay."""
    return torch.optim.AdamW(
        [
            {"params": [p for n, p in trainables if n not in no_decay], "weight_decay": a["weight_decay"]},
            {"params": [p for n, p in trainables if n in no_decay], "weight_decay": 0.0},
        ],
        lr=lr, betas=(a["beta1"], a["beta2"]), eps=a["eps"], foreach=False,
    )


def train_step(model, params, opt, ids_all, micro: int, clip: float, world: int):
    """One update on this process's rows ids_all (rows, l + 1), in micro-batches of `micro` rows: the mean
    loss over every process's rows and the global gradient norm before clipping, or the name of what was
    not finite (then nothing is updated). With several processes `model` is DDP-wrapped or FSDP-sharded:
    gradients are averaged over the processes when the last micro-batch's backward runs (under FSDP each
    process keeps its shard, and the norm sums every process's part)."""
    accum = ids_all.shape[0] // micro
    opt.zero_grad(set_to_none=True)
    local = torch.zeros((), dtype=torch.float64, device=ids_all.device)
    for k in range(accum):
        ids = ids_all[k * micro : (k + 1) * micro]
        sync = k == accum - 1
        if hasattr(model, "set_requires_gradient_sync"):  # FSDP: reduce the gradients on the last only
            model.set_requires_gradient_sync(sync)
        with (model.no_sync() if not sync and hasattr(model, "no_sync") else contextlib.nullcontext()):
            loss = model(ids) / accum
            loss.backward()
        local += loss.detach().double()
    if world > 1:
        dist.all_reduce(local)
        local /= world
    mean_loss = float(local)
    sq = torch.zeros((), dtype=torch.float64, device=ids_all.device)
    sharded = False
    for p in params:
        if p.grad is not None:
            g = p.grad
            if hasattr(g, "to_local"):  # an FSDP shard: this process's part of the gradient
                g, sharded = g.to_local(), True
            sq += g.double().pow(2).sum()
    if sharded:
        dist.all_reduce(sq)
    norm = math.sqrt(float(sq))
    if not math.isfinite(mean_loss):
        return f"the loss ({mean_loss})"
    if not math.isfinite(norm):
        return "the gradient norm"
    if clip > 0 and norm > clip:  # the lab's clipping: scale = clip / norm exactly
        for p in params:
            if p.grad is not None:
                p.grad.mul_(clip / norm)
    opt.step()
    return mean_loss, norm


def main() -> int:
    ap = argparse.ArgumentParser(description="Train one run of a lab job folder (see the job's README.md).")
    ap.add_argument("run_dir", help="RUN_DIR: the job's runs/<name> folder (holds run.json)")
    ap.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the data shards")
    args = ap.parse_args()
    run_dir = os.path.abspath(args.run_dir)
    job_dir = os.path.dirname(os.path.dirname(run_dir))
    run = read_run(run_dir)

    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    use_cuda = run.get("device", "cuda") == "cuda"
    if use_cuda and not torch.cuda.is_available():
        fail("the job was written for CUDA GPUs and this torch sees none (write it with --device cpu for CPU processes)")
    if distributed:
        # evaluation runs on rank 0 alone while the others wait: a long timeout, not the default 30 minutes
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(hours=6))
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if rank == 0 else (lambda *a: None)

    batch, length, steps = run["batch"], run["length"], run["steps"]
    if batch % world:
        fail(f"run.json: batch {batch} is not a multiple of the {world} processes")
    rows = batch // world
    micro = run.get("micro_batch") or rows
    if rows % micro:
        fail(f"run.json: micro_batch {micro} does not divide the {rows} rows of each process")
    accum = rows // micro

    train_data = open_shard(job_dir, run["train_data"], verify=not args.no_verify and local_rank == 0)
    offsets = np.memmap(os.path.join(run_dir, run["offsets"]), dtype="<u8", mode="r")
    if offsets.size != steps * batch:
        fail(f"{run['offsets']}: {offsets.size} window starts, expected steps x batch = {steps * batch}")

    parallel = run.get("parallel", "ddp")
    if parallel not in ("ddp", "fsdp"):
        fail(f"run.json: parallel must be ddp or fsdp (got {parallel!r})")
    fsdp = parallel == "fsdp"
    if fsdp and not distributed:
        fail("run.json: parallel is fsdp, which runs under torchrun (bash run.sh), not as one plain process")

    torch.manual_seed(0)  # nothing is random after the lab's initial weights; this only pins library defaults
    net, loss_fn, logits_fn, impl = build_net(run, device)
    load_weights(net, os.path.join(run_dir, "init", "model.safetensors"))
    fingerprint = {k: run[k] for k in ("kind", "config", "steps", "batch", "length", "lr", "warmup", "seed") if k in run}
    resumed = load_checkpoint(run_dir, net, fingerprint)  # the weights now; the moments once the optimizer exists
    state = resumed[1] if resumed else None
    model = Objective(net, loss_fn)
    if fsdp:  # before the optimizer: sharding replaces the parameters (their names stay)
        shard_model(model, device, world)
    trainables = named_trainables(net)
    names = {p: n for n, p in trainables}
    no_decay = set(run["no_weight_decay"])
    unknown = [n for n in no_decay if n not in {n for n, _ in trainables}]
    if unknown:
        fail(f"run.json: no_weight_decay names parameters the model lacks: {unknown[:3]}")
    a = run["adamw"]
    opt = make_optimizer(trainables, no_decay, run["lr"], a)
    if resumed:
        load_moments(resumed[0], state, opt, names)
    start = state["step"] if state else 0
    if distributed:  # every process must resume from the same step: the run folder must be shared storage
        seen = torch.tensor([start, -start], dtype=torch.float64, device=device)
        dist.all_reduce(seen, op=dist.ReduceOp.MAX)
        if seen[0] != -seen[1]:
            fail(f"the processes found checkpoints at different steps ({int(-seen[1])} and {int(seen[0])}): "
                 "every node must see the same job folder (shared storage), as rank 0 alone writes checkpoints")
    wall_before = state["wall_s"] if state else 0.0
    if start >= steps and os.path.exists(os.path.join(run_dir, "eval.json")):
        say(f"{os.path.basename(run_dir)}: finished ({steps} steps); nothing to do")
        if distributed:
            dist.destroy_process_group()
        return 0

    if distributed and not fsdp:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)
    params = [p for _, p in trainables]

    if rank == 0:
        remove_stale_temporaries(run_dir)
        write_atomic(os.path.join(run_dir, LOG), "".join(read_log(run_dir, start)))
        say(f"{os.path.basename(run_dir)}: {run['kind']} on {world} {'GPU' if use_cuda else 'CPU process'}{'es' if world > 1 and not use_cuda else 's' if world > 1 else ''} "
            f"({impl}{', FSDP' if fsdp else ''}), batch {batch} x {length} ({accum} micro-batch{'es' if accum > 1 else ''} of {micro} per process), "
            + (f"resuming at step {start} of {steps}" if start else f"{steps} steps"))
    stop = {"asked": False}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.__setitem__("asked", True))

    bytes_per_token = run.get("bytes_per_token", 1)
    fpt = run.get("flops_per_token", 0)
    tokens_per_step = batch * length
    every = run.get("checkpoint_every") or max(1, steps // 20)
    t0 = time.time()
    log = open(os.path.join(run_dir, LOG), "a") if rank == 0 else None
    w = length + 1
    span = np.arange(w, dtype=np.int64)
    for s in range(start, steps):
        lr = lr_at(s, run)
        for g in opt.param_groups:
            g["lr"] = lr
        starts = np.asarray(offsets[s * batch + rank * rows : s * batch + (rank + 1) * rows], dtype=np.int64)
        ids_all = torch.from_numpy(np.asarray(train_data[starts[:, None] + span[None, :]], dtype=np.int64)).to(device)
        outcome = train_step(model, params, opt, ids_all, micro, a["clip_norm"], world if distributed else 1)
        if isinstance(outcome, str):
            fail(f"training stopped at step {s + 1}: {outcome} is not finite (lower the learning rate); the last good checkpoint is kept")
        mean_loss, norm = outcome
        step = s + 1
        wall = wall_before + time.time() - t0
        if rank == 0:
            entry = {
                "step": step,
                "loss": mean_loss,
                "bits_per_byte": mean_loss / bytes_per_token / math.log(2),
                "lr": lr,
                "grad_norm": norm,
                "bytes_per_s": (step - start) * tokens_per_step * bytes_per_token / max(1e-9, time.time() - t0),
                "wall_s": wall,
                "bytes": step * tokens_per_step * bytes_per_token,
                "flops": step * tokens_per_step * fpt,
                "gpus": world if use_cuda else 0,
                "processes": world,
            }
            log.write(json.dumps(entry) + "\n")
            log.flush()
            if step % max(1, steps // 20) == 0 or step == steps:
                say(f"step {step}/{steps}  loss {mean_loss:.4f}  bpb {entry['bits_per_byte']:.4f}  {entry['bytes_per_s']:.0f} B/s")
        stopping = stop["asked"]
        if distributed:
            flag = torch.tensor([1.0 if stopping else 0.0], device=device)
            dist.all_reduce(flag)
            stopping = bool(flag.item() > 0)
        if step == steps or step % every == 0 or stopping:
            sd, moments = gather_checkpoint(net, opt, names)  # every process: FSDP gathers the shards
            if rank == 0:
                save_checkpoint(run_dir, sd, moments, {
                    "format": STATE_FORMAT, "step": step, "adam_step": step, "tokens_seen": step * tokens_per_step,
                    "wall_s": wall, "processes": world, "gpus": world if use_cuda else 0, "implementation": impl,
                    "parallel": parallel, "fingerprint": fingerprint,
                })
            del sd, moments
        if stopping and step < steps:
            say(f"stopped at step {step}; checkpoint saved; run the job again to continue")
            if distributed:
                dist.destroy_process_group()
            return 130
    if log:
        log.close()
    if rank == 0 and run.get("test_data"):
        test = open_shard(job_dir, run["test_data"], verify=not args.no_verify)
        if fsdp:  # rank 0 scores alone: a whole copy of the final weights, from the last checkpoint
            net, _, logits_fn, _ = build_net(run, device)
            load_weights(net, os.path.join(run_dir, CHECKPOINT, "model.safetensors"))
        net.eval()
        result = evaluate(net, logits_fn, test, run.get("eval_window") or length, run.get("length_multiple") or 1, device)
        result.update({"step": steps, "implementation": impl, "processes": world, "gpus": world if use_cuda else 0,
                       "parallel": parallel})
        write_atomic(os.path.join(run_dir, "eval.json"), json.dumps(result, indent=2) + "\n")
        say(f"test bits per byte {result['bits_per_byte']:.4f} over {result['bytes']} bytes")
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
