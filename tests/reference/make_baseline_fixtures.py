"""Writes tests/fixtures/baselines/<kind>-<variant>.{safetensors,json} from the PyTorch references in
lib/torch/baselines.py. Regenerate (from the repository root; Debian's python3-torch, not a pyenv python):

    /usr/bin/python3 tests/reference/make_baseline_fixtures.py

For each family (transformer, transformer_subword, megabyte, perceiver_ar) and variant:
  random   weights of order 1 (embeddings 0.5 N(0, 1), q/k/v with gain 2 so attention is sharp, LayerNorms
           perturbed away from 1/0): a missing attention scale or a flipped rotary sign moves the logits a lot;
  trained  GPT-2 initialisation (N(0, 0.02)), then TRAIN_STEPS Adam steps in PyTorch on
           data/samples/prose/train (the subword model on a small BPE of it), so weights are realistic.
The .safetensors holds (little-endian F32 / I32):
  input_ids (b, l+1) I32     a window of data/samples/prose/validation
  logits (b, l, V)           model.logits(input_ids[:, :l])   (the LanguageModel contract)
  <name>                     every parameter under the project's name and layout
  grad.<name>                d loss / d parameter, loss = nextTokenLoss(model, input_ids) (lib/models/lm.ts:
                             mean next-token cross-entropy; PerceiverAR: its training loss over the latents)
The .json holds kind, variant, config (what createModel / family(kind).parseConfig accepts), loss (float64),
parameter names, and diagnostics (float32-vs-float64 errors of the same math in torch, training losses).
The reference math runs in float64 on the float32 weights; results are cast to float32 at the end.
"""

from __future__ import annotations

import glob
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib", "torch"))
from baselines import CausalAttention, apply_rotary, build  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "baselines")
TRAIN_STEPS = 600
TRAIN_LR = 3e-3

# Tiny models; shapes cover 8 MegaByte patches and 24 positions for 10 PerceiverAR latents (3 passes,
# the last over a 4-byte prefix). Non-square projections where the config allows (catches transposes).
CONFIGS = {
    "transformer": {
        "vocab_size": 256, "d_model": 32, "n_layer": 2, "n_head": 2, "mlp_ratio": 2, "rope_theta": 10000,
        "norm_eps": 1e-5,
    },
    "transformer_subword": {
        "vocab_size": 128, "d_model": 32, "n_layer": 2, "n_head": 4, "mlp_ratio": 2, "rope_theta": 10000,
        "norm_eps": 1e-5,
    },
    "megabyte": {
        "vocab_size": 256, "patch_size": 4, "d_global": 32, "n_layer_global": 2, "n_head_global": 2,
        "d_local": 16, "n_layer_local": 2, "n_head_local": 2, "d_byte_global": 12, "mlp_ratio": 2,
        "rope_theta": 10000, "norm_eps": 1e-5,
    },
    "perceiver_ar": {
        "vocab_size": 256, "d_model": 32, "n_layer": 3, "n_head": 2, "num_latents": 10, "mlp_ratio": 2,
        "rope_theta": 10000, "norm_eps": 1e-5,
    },
}
# input length l (the ids hold l+1 tokens) and batch
SHAPES = {"transformer": (2, 24), "transformer_subword": (2, 24), "megabyte": (2, 32), "perceiver_ar": (2, 24)}
# the random variant uses a smaller rotary base, so positions 0..31 turn the slow channels too
RANDOM_ROPE_THETA = 500


# ------------------------------------------------------------------------------------------------
# safetensors (written by hand: the safetensors package is not needed)

def write_safetensors(path: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    header: dict = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.float32:
            dtype, fmt = "F32", "<f"
        elif t.dtype == torch.int32:
            dtype, fmt = "I32", "<i"
        else:
            raise TypeError(f"{name}: store float32 or int32, got {t.dtype}")
        values = t.reshape(-1).tolist()
        blob = struct.pack(f"<{len(values)}{fmt[1]}", *values)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)  # pad the header to 8 bytes (allowed by the format)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------
# Data: bytes, and a small BPE for the subword model

def read_text(pattern: str) -> bytes:
    files = sorted(glob.glob(os.path.join(ROOT, pattern)))
    assert files, pattern
    return b"\n".join(open(f, "rb").read() for f in files)


def train_bpe(data: bytes, vocab_size: int):
    """Byte-pair merges over the symbols of `data`; id 0 is reserved for bytes never seen in training."""
    alphabet = sorted(set(data))
    symbols = {(b,): i + 1 for i, b in enumerate(alphabet)}
    seq = [symbols[(b,)] for b in data]
    merges = []
    while len(symbols) + 1 < vocab_size:
        counts: dict[tuple[int, int], int] = {}
        for a, b in zip(seq, seq[1:]):
            counts[(a, b)] = counts.get((a, b), 0) + 1
        pair = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        new = len(symbols) + 1
        symbols[("merge", new)] = new
        merges.append((pair, new))
        seq = _apply_merge(seq, pair, new)
    return alphabet, merges


def _apply_merge(seq, pair, new):
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def bpe_encode(data: bytes, alphabet, merges):
    index = {b: i + 1 for i, b in enumerate(alphabet)}
    seq = [index.get(b, 0) for b in data]
    for pair, new in merges:
        seq = _apply_merge(seq, pair, new)
    return seq


# ------------------------------------------------------------------------------------------------
# Weights

def random_weights(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Order-1 weights: unit-variance activations, sharp attention (q.k/sqrt(d_head) of std ~4)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            z = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if name.endswith("wte.weight") or name.endswith("start_patch"):
                p.copy_(0.5 * z)  # tied heads: logits of std ~3
            elif ".ln_" in name or name.startswith("ln_"):
                p.copy_(1 + 0.3 * z if name.endswith("weight") else 0.3 * z)
            else:  # Linear (out, in)
                gain = 2.0 if "c_attn" in name else 1.0
                p.copy_(z * gain / p.shape[1] ** 0.5)


def gpt2_init(model: torch.nn.Module, gen: torch.Generator, n_layers: dict[str, int]) -> None:
    """N(0, 0.02); projections into the residual stream N(0, 0.02 / sqrt(2 n_layer)); LayerNorms 1, 0."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            z = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if ".ln_" in name or name.startswith("ln_"):
                p.copy_(torch.ones_like(z) if name.endswith("weight") else torch.zeros_like(z))
            elif name.endswith("c_proj.weight"):
                depth = n_layers["local" if name.startswith("local.") else "global"]
                p.copy_(z * 0.02 / (2 * depth) ** 0.5)
            else:
                p.copy_(z * 0.02)


def depths(kind: str, cfg: dict) -> dict[str, int]:
    if kind == "megabyte":
        return {"global": cfg["n_layer_global"], "local": cfg["n_layer_local"]}
    return {"global": cfg["n_layer"], "local": cfg["n_layer"]}


def train(model, tokens: torch.Tensor, batch: int, length: int, gen: torch.Generator, steps: int, lr: float):
    """`steps` Adam steps (20 warm-up steps to `lr`, clip 1.0) on random windows of `tokens`; float32."""
    model.float().train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 20)
        starts = torch.randint(0, len(tokens) - length - 1, (batch,), generator=gen)
        ids = torch.stack([tokens[s:s + length + 1] for s in starts.tolist()]).long()
        loss = model.loss(ids)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return losses


# ------------------------------------------------------------------------------------------------
# Expected outputs

def evaluate(model, ids: torch.Tensor, dtype: torch.dtype):
    """logits of ids[:, :-1], loss of ids, and every parameter's gradient, computed in `dtype`."""
    m = model.to(dtype)
    m.zero_grad()
    logits = m.logits(ids[:, :-1])
    loss = m.loss(ids)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in m.named_parameters()}
    return logits.detach(), loss.detach(), grads


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def check_causal(model, ids: torch.Tensor) -> None:
    """Changing the last input token must leave every earlier position's logits unchanged."""
    x = ids[:, :-1].clone()
    with torch.no_grad():
        a = model.logits(x)
        x[:, -1] = (x[:, -1] + 1) % model_vocab(model)
        b = model.logits(x)
    assert torch.equal(a[:, :-1], b[:, :-1]), "reference is not causal"
    assert not torch.equal(a[:, -1], b[:, -1]), "the last position ignores its own token"


def model_vocab(model) -> int:
    return model.wte.num_embeddings if hasattr(model, "wte") else 256


def attention_sharpness(model, ids: torch.Tensor) -> float:
    """Mean over layers, heads and queries (but the first, which sees one key) of the largest attention
    weight (1 = one-hot)."""
    values = []

    def hook(mod, args, _out):
        xq, xkv, q_pos, k_pos = args
        w_q, w_k, _ = mod.c_attn.weight.split(mod.d, dim=0)
        q = apply_rotary(mod.split_heads(xq @ w_q.T), q_pos, mod.rope_theta)
        k = apply_rotary(mod.split_heads(xkv @ w_k.T), k_pos, mod.rope_theta)
        s = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).masked_fill(k_pos[None] > q_pos[:, None], float("-inf"))
        values.append(float(s.softmax(-1).max(-1).values[..., 1:].mean()))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, CausalAttention)]
    with torch.no_grad():
        model.logits(ids[:, :-1])
    for h in handles:
        h.remove()
    return sum(values) / len(values)


def make(kind: str, variant: str, data: dict) -> dict:
    cfg = dict(CONFIGS[kind])
    if variant == "random":
        cfg["rope_theta"] = RANDOM_ROPE_THETA
    b, l = SHAPES[kind]
    seed = {"transformer": 1, "transformer_subword": 2, "megabyte": 3, "perceiver_ar": 4}[kind]
    seed += 100 if variant == "trained" else 0
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build(kind, cfg)
    train_tokens, eval_tokens = data["subword" if kind == "transformer_subword" else "bytes"]
    info: dict = {}
    if variant == "random":
        random_weights(model, gen)
    else:
        gpt2_init(model, gen, depths(kind, cfg))
        losses = train(model, train_tokens, batch=16, length=l, gen=gen, steps=TRAIN_STEPS, lr=TRAIN_LR)
        info["train_loss_first_10"] = sum(losses[:10]) / 10
        info["train_loss_last_10"] = sum(losses[-10:]) / 10
    # the stored weights are float32; the reference math uses exactly those values in float64
    weights = {n: p.detach().float().clone() for n, p in model.named_parameters()}
    model.load_state_dict({n: w.double() for n, w in weights.items()}, strict=True)

    # input: b windows of the validation text, far apart
    starts = [101 + i * (len(eval_tokens) // (b + 1)) for i in range(b)]
    ids = torch.stack([eval_tokens[s:s + l + 1] for s in starts]).long()

    model.double().eval()
    check_causal(model, ids)
    logits, loss, grads = evaluate(model, ids, torch.float64)
    sharp = attention_sharpness(model, ids)
    logits32, loss32, grads32 = evaluate(model, ids, torch.float32)  # what float32 arithmetic reaches
    fp32 = {
        "logits_rel_l2": rel_l2(logits32, logits),
        "loss_rel": abs(float(loss32) - float(loss)) / abs(float(loss)),
        "grad_rel_l2_max": max(rel_l2(grads32[n], grads[n]) for n in grads),
    }

    tensors = {"input_ids": ids.to(torch.int32), "logits": logits.float()}
    tensors.update(weights)
    tensors.update({f"grad.{n}": g.float() for n, g in grads.items()})
    name = f"{kind}-{variant}"
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors,
                      {"format": "pt", "generator": "tests/reference/make_baseline_fixtures.py"})
    meta = {
        "kind": kind,
        "variant": variant,
        "config": cfg,
        "loss": float(loss),
        "input": f"input_ids ({b}, {l + 1}): windows of data/samples/prose/validation"
        + (" (BPE ids)" if kind == "transformer_subword" else " (bytes)")
        + f"; logits = logits(input_ids[:, :{l}])",
        "parameters": list(weights),
        "n_params": sum(w.numel() for w in weights.values()),
        "seed": seed,
        "attention_max_weight_mean": sharp,
        "float32_torch_vs_float64": fp32,
        **info,
    }
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def main() -> None:
    torch.set_num_threads(1)  # reproducible sums
    os.makedirs(OUT, exist_ok=True)
    train_bytes = read_text("data/samples/prose/train/*.txt")
    eval_bytes = read_text("data/samples/prose/validation/*.txt")
    alphabet, merges = train_bpe(train_bytes, CONFIGS["transformer_subword"]["vocab_size"])
    as_tensor = lambda xs: torch.tensor(list(xs), dtype=torch.int64)  # noqa: E731
    data = {
        "bytes": (as_tensor(train_bytes), as_tensor(eval_bytes)),
        "subword": (as_tensor(bpe_encode(train_bytes, alphabet, merges)),
                    as_tensor(bpe_encode(eval_bytes, alphabet, merges))),
    }
    for kind in CONFIGS:
        for variant in ("random", "trained"):
            m = make(kind, variant, data)
            extra = f", train loss {m['train_loss_first_10']:.3f} -> {m['train_loss_last_10']:.3f}" \
                if variant == "trained" else ""
            size = os.path.getsize(os.path.join(OUT, f"{kind}-{variant}.safetensors"))
            print(f"{kind}-{variant}: {m['n_params']} params, {size} bytes, loss {m['loss']:.4f}, "
                  f"max attention weight {m['attention_max_weight_mean']:.2f}, fp32 vs fp64 "
                  f"{m['float32_torch_vs_float64']}{extra}")


if __name__ == "__main__":
    main()
