"""PyTorch reference implementations of the project's four baseline families.

Written from the published definitions (GPT-2/nanoGPT pre-norm decoder; RoFormer rotary positions;
MegaByte, Yu et al. 2023; Perceiver AR, Hawthorne et al. 2022) plus the project's documented choices
(lib/models/*.ts doc comments), NOT from the TypeScript code. Parameter names and layouts are the
project's (nanoGPT names, Linear weights stored (out, in) as in PyTorch), so `load_state_dict` takes the
project's safetensors as they are, strictly.

Families (kind -> class):
  transformer, transformer_subword   Transformer        tied head, no biases except LayerNorm's
  megabyte                           MegaByte           global model over patches, local model per patch
  perceiver_ar                       PerceiverAR        one cross-attention to the last N positions

Shared choices of every stack (the project's, see lib/models/transformer.ts):
  block(h)   = h + attn(LN_1(h));  h = h + MLP(LN_2(h))        pre-norm, LayerNorm with weight and bias
  attention  = softmax(Q K^T / sqrt(d_head) + causal mask) V      by absolute position, multi-head,
               Q, K rotated with RoPE ("rotate half": channel i pairs with i + d_head/2, angle pos *
               theta^(-2i/d_head)); c_attn's rows are [Wq; Wk; Wv]
  MLP        = c_proj(gelu_tanh(c_fc(x))), width mlp_ratio * d
  stack      = blocks, then a final LayerNorm (ln_f)

Needs only torch (tested with Debian's python3-torch 1.13). Run the models in float64 for fixtures
(`model.double()`); the weights themselves are float32 values.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------------
# Building blocks


def rotary_tables(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    """cos, sin of shape (len(positions), head_dim), frequencies repeated for the two halves."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device) / head_dim)
    angles = torch.outer(positions.to(torch.float64), inv_freq)  # (T, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, head_dim)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """x (..., T, head_dim) rotated by its absolute positions (T,)."""
    cos, sin = rotary_tables(positions, x.shape[-1], theta, x.dtype)
    return x * cos + rotate_half(x) * sin


class CausalAttention(nn.Module):
    """Multi-head attention of queries at positions q_pos over keys/values at positions k_pos: a query
    sees a key iff k_pos <= q_pos. Queries and keys/values may come from different rows (PerceiverAR's
    cross-attention); one c_attn matrix holds [Wq; Wk; Wv]."""

    def __init__(self, d: int, n_head: int, rope_theta: float):
        super().__init__()
        assert d % n_head == 0
        self.d, self.n_head, self.rope_theta = d, n_head, rope_theta
        self.c_attn = nn.Linear(d, 3 * d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, H, T, dh)
        B, T, _ = t.shape
        return t.view(B, T, self.n_head, self.d // self.n_head).transpose(1, 2)

    def forward(self, xq, xkv, q_pos, k_pos):
        w_q, w_k, w_v = self.c_attn.weight.split(self.d, dim=0)
        q = self.split_heads(F.linear(xq, w_q))
        k = self.split_heads(F.linear(xkv, w_k))
        v = self.split_heads(F.linear(xkv, w_v))
        q = apply_rotary(q, q_pos, self.rope_theta)
        k = apply_rotary(k, k_pos, self.rope_theta)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
        future = k_pos[None, :] > q_pos[:, None]  # (Tq, Tk)
        scores = scores.masked_fill(future, float("-inf"))
        y = scores.softmax(dim=-1) @ v  # (B, H, Tq, dh)
        B, H, Tq, dh = y.shape
        return self.c_proj(y.transpose(1, 2).reshape(B, Tq, H * dh))


class MLP(nn.Module):
    def __init__(self, d: int, width: int):
        super().__init__()
        self.c_fc = nn.Linear(d, width, bias=False)
        self.c_proj = nn.Linear(width, d, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm decoder block. With `queries=n`, only the last n rows are queries and residual rows (the
    output has n rows) while all rows are keys/values: PerceiverAR's cross-attention."""

    def __init__(self, d, n_head, mlp_width, rope_theta, eps):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = CausalAttention(d, n_head, rope_theta)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.mlp = MLP(d, mlp_width)

    def forward(self, x, pos, queries=None):
        n = x.shape[1] if queries is None else queries
        normed = self.ln_1(x)
        h = x[:, -n:] + self.attn(normed[:, -n:], normed, pos[-n:], pos)
        return h + self.mlp(self.ln_2(h))


class Stack(nn.Module):
    """Blocks h.0 .. h.{n-1} and the final LayerNorm ln_f (names as nanoGPT's transformer.h / ln_f)."""

    def __init__(self, d, n_layer, n_head, mlp_width, rope_theta, eps):
        super().__init__()
        self.h = nn.ModuleList(Block(d, n_head, mlp_width, rope_theta, eps) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d, eps=eps)

    def forward(self, x, pos):
        for blk in self.h:
            x = blk(x, pos)
        return self.ln_f(x)


def next_token_loss_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) over every predicted position."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# ------------------------------------------------------------------------------------------------
# Transformer (bytes or subwords)


class Transformer(nn.Module):
    """GPT-style decoder: wte -> Stack -> logits = h @ wte^T (tied head)."""

    def __init__(self, cfg: dict):
        super().__init__()
        d = cfg["d_model"]
        self.wte = nn.Embedding(cfg["vocab_size"], d)
        stack = Stack(d, cfg["n_layer"], cfg["n_head"], cfg["mlp_ratio"] * d, cfg["rope_theta"], cfg["norm_eps"])
        # parameters directly under the model (h.*, ln_f.*), as the project names them
        self.h, self.ln_f = stack.h, stack.ln_f

    def logits(self, ids):
        x = self.wte(ids)
        pos = torch.arange(ids.shape[1], device=ids.device)
        for blk in self.h:
            x = blk(x, pos)
        return self.ln_f(x) @ self.wte.weight.T

    def loss(self, ids):
        return next_token_loss_from_logits(self.logits(ids[:, :-1]), ids[:, 1:])


# ------------------------------------------------------------------------------------------------
# MegaByte


class _MegaByteGlobal(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        P, e, dg = cfg["patch_size"], cfg["d_byte_global"], cfg["d_global"]
        self.wte = nn.Embedding(256, e)  # byte embeddings of the patch embedder
        self.patch_proj = nn.Linear(P * e, dg, bias=False)  # project's addition (see megabyte.ts)
        self.start_patch = nn.Parameter(torch.zeros(dg))  # the global input before the first patch
        stack = Stack(dg, cfg["n_layer_global"], cfg["n_head_global"], cfg["mlp_ratio"] * dg, cfg["rope_theta"],
                      cfg["norm_eps"])
        self.h, self.ln_f = stack.h, stack.ln_f


class _MegaByteLocal(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dl = cfg["d_local"]
        self.wte = nn.Embedding(256, dl)
        stack = Stack(dl, cfg["n_layer_local"], cfg["n_head_local"], cfg["mlp_ratio"] * dl, cfg["rope_theta"],
                      cfg["norm_eps"])
        self.h, self.ln_f = stack.h, stack.ln_f


def _run(blocks, ln_f, x, pos):
    for blk in blocks:
        x = blk(x, pos)
    return ln_f(x)


class MegaByte(nn.Module):
    """MegaByte (Yu et al. 2023) with the project's choices:
      - patch embedding: the P byte embeddings of a patch concatenated (slot p = byte p), then patch_proj;
      - the global model reads [start_patch, patch_0, ..., patch_{K-2}] (shifted by one patch), rotary
        positions 0..K-1 over patches;
      - global_to_local maps each global output to P slot vectors of width d_local (slot p = rows
        p*d_local .. (p+1)*d_local-1 of the product);
      - the local model reads E_local[ids[kP + p]] + slot p of patch k, causal within the patch, rotary
        positions 0..P-1; head tied to E_local.
    So the prediction at t = kP + p sees bytes < kP through the global model and kP..t locally."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.add_module("global", _MegaByteGlobal(cfg))  # parameters "global.*"
        P, dg, dl = cfg["patch_size"], cfg["d_global"], cfg["d_local"]
        self.global_to_local = nn.Linear(dg, P * dl, bias=False)
        self.local = _MegaByteLocal(cfg)

    @property
    def glob(self) -> _MegaByteGlobal:
        return getattr(self, "global")

    def logits(self, ids):
        B, T = ids.shape
        P, dl = self.cfg["patch_size"], self.cfg["d_local"]
        assert T % P == 0, "length must be a multiple of the patch size"
        K = T // P
        g = self.glob
        patches = g.patch_proj(g.wte(ids).reshape(B, K, -1))  # (B, K, dg)
        start = g.start_patch.expand(B, 1, -1)
        g_in = torch.cat([start, patches[:, :-1]], dim=1)  # shifted by one patch
        g_out = _run(g.h, g.ln_f, g_in, torch.arange(K, device=ids.device))  # (B, K, dg)
        slots = self.global_to_local(g_out).reshape(B * K, P, dl)
        x = self.local.wte(ids).reshape(B * K, P, dl) + slots
        y = _run(self.local.h, self.local.ln_f, x, torch.arange(P, device=ids.device))  # (B*K, P, dl)
        return (y @ self.local.wte.weight.T).reshape(B, T, 256)

    def loss(self, ids):
        return next_token_loss_from_logits(self.logits(ids[:, :-1]), ids[:, 1:])


# ------------------------------------------------------------------------------------------------
# PerceiverAR


class PerceiverAR(nn.Module):
    """Perceiver AR (Hawthorne et al. 2022) with the project's choices: the latents are the last
    n = min(N, l) input embeddings themselves; block h.0 is a cross-attention whose queries (and residual
    rows) are those n rows and whose keys/values are all l rows (one LayerNorm for both), causal by
    absolute position; blocks h.1.. are self-attention over the latents (positions l-n .. l-1); ln_f;
    head tied to wte. Only the latents predict: the training loss averages over them."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        d = cfg["d_model"]
        self.wte = nn.Embedding(256, d)
        stack = Stack(d, cfg["n_layer"], cfg["n_head"], cfg["mlp_ratio"] * d, cfg["rope_theta"], cfg["norm_eps"])
        self.h, self.ln_f = stack.h, stack.ln_f

    def latent_logits(self, ids):
        """One pass: logits (B, n, V) of the last n positions (row i predicts ids[:, l-n+i+1])."""
        T = ids.shape[1]
        n = min(self.cfg["num_latents"], T)
        x = self.wte(ids)
        z = self.h[0](x, torch.arange(T, device=ids.device), queries=n)  # cross-attention
        latent_pos = torch.arange(T - n, T, device=ids.device)
        for blk in self.h[1:]:
            z = blk(z, latent_pos)
        return self.ln_f(z) @ self.wte.weight.T

    def logits(self, ids):
        """A prediction at every position: each position is predicted as a latent of the pass over the
        prefix that ends with the window it belongs to (windows of N from the end)."""
        T = ids.shape[1]
        N = self.cfg["num_latents"]
        parts = [self.latent_logits(ids[:, :end]) for end in range(T, 0, -N)]
        return torch.cat(parts[::-1], dim=1)

    def loss(self, ids):
        """The training objective: one pass over ids[:, :-1], cross-entropy at the latents only."""
        logits = self.latent_logits(ids[:, :-1])
        n = logits.shape[1]
        return next_token_loss_from_logits(logits, ids[:, -n:])


def build(kind: str, cfg: dict) -> nn.Module:
    if kind in ("transformer", "transformer_subword"):
        return Transformer(cfg)
    if kind == "megabyte":
        return MegaByte(cfg)
    if kind == "perceiver_ar":
        return PerceiverAR(cfg)
    raise ValueError(f"unknown kind {kind}")
