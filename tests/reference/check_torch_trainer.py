"""The PyTorch side of the torch jobs (lib/torch/mamba.py, lib/torch/train.py) against mamba_ssm's outputs
(tests/fixtures/reference): prints one JSON object of errors that tests/torch_job_test.ts checks.

    /usr/bin/python3 tests/reference/check_torch_trainer.py

  tiny:   logits and gradients of the mean next-byte loss (relative L2 errors);
  train3: train.py's own step (train_step, make_optimizer: AdamW, decay exemptions, clipping) for the three
          recorded steps: losses, gradient norms and every parameter after the steps.
"""

import json
import os
import re
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "lib", "torch"))
from mamba import MambaLM  # noqa: E402
from train import Objective, make_optimizer, read_safetensors, train_step  # noqa: E402

FIX = os.path.join(ROOT, "tests", "fixtures", "reference")


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def load(name):
    meta = json.load(open(os.path.join(FIX, f"{name}.json")))
    net = MambaLM(meta["config"])
    weights = read_safetensors(os.path.join(FIX, f"{name}.model.safetensors"))
    net.load_state_dict(weights, strict=True)
    return meta, net, read_safetensors(os.path.join(FIX, f"{name}.expected.safetensors"))


out = {}
torch.set_num_threads(1)

meta, net, exp = load("mambabyte-tiny-public")
ids = exp["input_ids"].long()
logits = net.logits(ids)
out["tiny_logits_rel"] = rel(logits, exp["logits"])
loss = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:])
loss.backward()
out["tiny_loss"] = float(loss)
out["tiny_loss_expected"] = meta["loss_next_byte_ce_nats"]
out["tiny_grad_rel_max"] = max(rel(p.grad, exp[f"grad.{n}"]) for n, p in net.named_parameters())

meta, net, exp = load("mambabyte-train3-public")
ids = exp["input_ids"].long()
trainables = list(net.named_parameters())
pattern = re.compile(meta["no_weight_decay"])
no_decay = {n for n, _ in trainables if pattern.search(n)}
a = meta["adamw"]
opt = make_optimizer(trainables, no_decay, meta["lr"], {"weight_decay": a["weight_decay"], "beta1": a["beta1"],
                                                          "beta2": a["beta2"], "eps": a["eps"]})
model = Objective(net, lambda net, ids: net.loss(ids))
losses, norms = [], []
for _ in range(3):
    loss, norm = train_step(model, [p for _, p in trainables], opt, ids, ids.shape[0], a["clip_norm"], 1)
    losses.append(loss)
    norms.append(norm)
out["train3_losses"] = losses
out["train3_losses_expected"] = meta["loss_before_step_nats"]
out["train3_norms"] = norms
out["train3_norms_expected"] = meta["grad_norm_before_clip"]
out["train3_after_rel_max"] = max(rel(p.detach(), exp[f"after3.{n}"]) for n, p in trainables)
print(json.dumps(out))
