"""MambaByte in plain PyTorch: mamba_ssm's `MambaLMHeadModel` (Mamba-1 mixer, RMSNorm, residual in fp32,
tied head) with the same parameter names and layouts, so a state dict moves between this module,
mamba_ssm and the lab unchanged. Written from the Mamba paper (Gu & Dao 2023) and the MambaByte paper's
description, for the training jobs of lib/runs/job.ts when mamba_ssm (and its CUDA scan) is not importable:
CPU jobs, tests, machines without a CUDA toolchain. The scan is the sequential recurrence (slow on long
sequences; a GPU job should have mamba_ssm).

Shapes: b batch, l length, d d_model, e d_inner = expand * d, n d_state, r dt_rank, k d_conv, V vocab.
Checked against mamba_ssm's outputs by tests/torch_job_test.ts (tests/fixtures/reference: logits,
gradients, three AdamW steps).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):  # (b, l, d) -> (b, l, d)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def selective_scan(u, delta, A, B, C, D, z, delta_bias):
    """The selective SSM over a sequence, one step at a time (the recurrence itself).

    u, delta, z: (b, e, l); A: (e, n); B, C: (b, n, l); D, delta_bias: (e,). Returns y: (b, e, l).
      delta_t = softplus(delta_t + delta_bias)                        (b, e)
      h_t     = exp(delta_t A) * h_{t-1} + delta_t B_t u_t             (b, e, n)
      y_t     = <h_t, C_t> + D u_t, then gated by silu(z_t)            (b, e)
    """
    delta = F.softplus(delta + delta_bias[None, :, None])  # (b, e, l)
    dA = torch.exp(delta.unsqueeze(-1) * A[None, :, None, :])  # (b, e, l, n)
    dBu = (delta * u).unsqueeze(-1) * B.transpose(1, 2)[:, None, :, :]  # (b, e, l, n)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])  # (b, e, n)
    ys = []
    # unbind, not indexing per step: the backward of l slices would add l full-size gradients (O(l^2))
    for dA_t, dBu_t, C_t in zip(dA.unbind(2), dBu.unbind(2), C.unbind(2)):
        h = dA_t * h + dBu_t
        ys.append(torch.einsum("ben,bn->be", h, C_t))
    y = torch.stack(ys, dim=2) + u * D[None, :, None]  # (b, e, l)
    return y * F.silu(z)


class Mamba(nn.Module):
    """The Mamba-1 mixer (mamba_ssm.modules.mamba_simple.Mamba) with mamba_ssm's names."""

    def __init__(self, d_model: int, d_state=16, d_conv=4, expand=2, dt_rank="auto", conv_bias=True, bias=False):
        super().__init__()
        self.d_inner = int(expand * d_model)
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        e = self.d_inner
        self.in_proj = nn.Linear(d_model, 2 * e, bias=bias)
        self.conv1d = nn.Conv1d(e, e, d_conv, groups=e, padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(e, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, e, bias=True)
        self.A_log = nn.Parameter(torch.zeros(e, d_state))
        self.D = nn.Parameter(torch.ones(e))
        self.out_proj = nn.Linear(e, d_model, bias=bias)

    def forward(self, h):  # (b, l, d) -> (b, l, d)
        l = h.shape[1]
        xz = self.in_proj(h).transpose(1, 2)  # (b, 2e, l)
        x, z = xz.chunk(2, dim=1)  # (b, e, l) each
        x = F.silu(self.conv1d(x)[..., :l])  # causal depthwise conv: (b, e, l)
        x_dbl = self.x_proj(x.transpose(1, 2))  # (b, l, r + 2n)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = (dt @ self.dt_proj.weight.T).transpose(1, 2)  # (b, e, l); the bias goes in the scan
        A = -torch.exp(self.A_log.float())  # (e, n)
        y = selective_scan(
            x, dt, A, B.transpose(1, 2), C.transpose(1, 2), self.D.float(), z, self.dt_proj.bias.float()
        )  # (b, e, l)
        return self.out_proj(y.transpose(1, 2))  # (b, l, d)


class Block(nn.Module):
    """mamba_ssm's Block: residual = h + residual (fp32); h = mixer(norm(residual))."""

    def __init__(self, d_model: int, ssm_cfg: dict):
        super().__init__()
        self.norm = RMSNorm(d_model)
        self.mixer = Mamba(d_model, **ssm_cfg)

    def forward(self, h, residual):
        residual = h if residual is None else h + residual
        return self.mixer(self.norm(residual.to(self.norm.weight.dtype))), residual.float()


class Backbone(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        ssm = {k: v for k, v in (cfg.get("ssm_cfg") or {}).items() if k in ("d_state", "d_conv", "expand", "dt_rank", "conv_bias", "bias")}
        self.embedding = nn.Embedding(padded_vocab(cfg), cfg["d_model"])
        self.layers = nn.ModuleList([Block(cfg["d_model"], ssm) for _ in range(cfg["n_layer"])])
        self.norm_f = RMSNorm(cfg["d_model"])

    def forward(self, ids):  # (b, l) -> (b, l, d)
        h, residual = self.embedding(ids), None
        for layer in self.layers:
            h, residual = layer(h, residual)
        residual = h + residual
        return self.norm_f(residual.to(self.norm_f.weight.dtype))


def padded_vocab(cfg: dict) -> int:
    m = cfg.get("pad_vocab_size_multiple", 8)
    v = cfg["vocab_size"]
    return v + (m - v % m) % m


class MambaLM(nn.Module):
    """MambaLMHeadModel: backbone, then a head tied to the embedding (lm_head.weight is the same tensor)."""

    def __init__(self, cfg: dict):
        super().__init__()
        unsupported = [k for k in ("rms_norm", "tie_embeddings") if cfg.get(k, True) is not True]
        if unsupported or cfg.get("d_intermediate", 0) or cfg.get("attn_layer_idx"):
            raise ValueError(f"the PyTorch reference implements RMSNorm, tied heads and plain Mamba layers only (config: {cfg})")
        self.vocab_size = cfg["vocab_size"]
        self.backbone = Backbone(cfg)
        self.lm_head = nn.Linear(cfg["d_model"], padded_vocab(cfg), bias=False)
        self.lm_head.weight = self.backbone.embedding.weight

    def logits(self, ids):  # (b, l) -> (b, l, V)
        return self.lm_head(self.backbone(ids))[..., : self.vocab_size]

    def loss(self, ids):
        """Mean next-byte cross-entropy (nats) of ids (b, l + 1): the lab's nextTokenLoss."""
        logits = self.logits(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))

