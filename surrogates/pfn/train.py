"""Train a PFN on the priors of ``surrogates.pfn.priors``.

    python -m surrogates.pfn.train --out runs/pfn --max-minutes 65 --threads 1   # the shipped run
    python -m surrogates.pfn.train --out runs/pfn --max-minutes 65 --threads 1   # again: resumes
    python -m surrogates.pfn.train --out runs/pfn --export surrogates/pfn/weights

Each step draws a fresh batch from the prior (function tasks with probability ``--function-share``,
learning-curve tasks otherwise, after a curriculum: see ``STEPS_PER_DIM``), with a context size
log-uniform in [MIN_CONTEXT, max_context], and minimises the bar distribution's negative log-likelihood
of the query values (AdamW, linear warm-up, cosine decay over ``--steps`` or ``--max-minutes``,
whichever ends first). Every ``--checkpoint-every`` steps and at the end, ``checkpoint.pt`` in
``--out`` holds the model, optimiser, step, elapsed time and prior generator state, so an
interrupted run resumes where it stopped. ``record.json`` holds the config, prior version, device,
steps, seconds and the validation loss on a fixed set of held-out tasks; ``--export DIR`` writes the
shipped form (``pfn.pt``: the state_dict, loadable with ``torch.load(weights_only=True)``;
``pfn.json``: the record). Runs on a GPU when one is available (``--device auto``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from surrogates.pfn import priors
from surrogates.pfn.bar_distribution import borders_from_samples
from surrogates.pfn.model import PFN, PFNConfig

N_QUERIES = 64
WARMUP_STEPS = 300
BORDER_BATCHES = 64  # prior batches whose query values place the bucket borders
VALIDATION_SEED = 987_654
# Curriculum. On the full prior from step 0, a PFN never left the "predict the marginal" plateau
# in 2,500 steps (it ignored x); on 1-D tasks it learns to use the context within ~500 steps, and
# that carries over. So function tasks start 1-D and gain a dimension every STEPS_PER_DIM steps,
# and learning-curve tasks join at CURVES_FROM_STEP.
STEPS_PER_DIM = 250
CURVES_FROM_STEP = 1000


@dataclass(frozen=True)
class TrainSettings:
    prior: str = "mixed"  # "mixed" (functions and curves) or "gp1d" (the retraining test's fixed GP)
    steps: int = 100_000
    max_minutes: float = 110.0
    batch: int = 16
    lr: float = 1e-3
    function_share: float = 0.6
    seed: int = 0
    checkpoint_every: int = 250


def sample_batch(
    settings: TrainSettings, cfg: PFNConfig, gen: torch.Generator, step: int | None = None
) -> priors.TaskBatch:
    """A training batch; ``step`` applies the curriculum (None: the full prior)."""
    low, high = math.log(priors.MIN_CONTEXT), math.log(cfg.max_context)
    n_ctx = round(math.exp(float(torch.empty(()).uniform_(low, high, generator=gen))))
    if settings.prior == "gp1d":
        return priors.fixed_gp_batch(settings.batch, n_ctx, N_QUERIES, cfg.max_dim, gen)
    curves_on = step is None or step >= CURVES_FROM_STEP
    if not curves_on or float(torch.rand((), generator=gen)) < settings.function_share:
        max_dim = cfg.max_dim if step is None else min(cfg.max_dim, 1 + step // STEPS_PER_DIM)
        dim = int(torch.randint(1, max_dim + 1, (), generator=gen))
        return priors.function_batch(settings.batch, n_ctx, N_QUERIES, cfg.max_dim, gen, dim=dim)
    return priors.curve_batch(settings.batch, n_ctx, N_QUERIES, cfg.max_dim, gen)


def validation_batches(settings: TrainSettings, cfg: PFNConfig) -> dict[str, list[priors.TaskBatch]]:
    """A fixed held-out set: the same tasks for every run with the same prior and config."""
    gen = torch.Generator().manual_seed(VALIDATION_SEED)
    sizes = (5, 20, 80, cfg.max_context)
    if settings.prior == "gp1d":
        return {"gp1d": [priors.fixed_gp_batch(32, n, N_QUERIES, cfg.max_dim, gen) for n in sizes]}
    return {
        "functions": [priors.function_batch(32, n, N_QUERIES, cfg.max_dim, gen) for n in sizes],
        "curves": [priors.curve_batch(32, n, N_QUERIES, cfg.max_dim, gen) for n in sizes],
    }


def batch_nll(model: PFN, batch: priors.TaskBatch, device: torch.device) -> torch.Tensor:
    logits = model(
        batch.x_ctx.to(device),
        batch.y_ctx.to(device),
        batch.x_qry.to(device),
        None if batch.ctx_pad is None else batch.ctx_pad.to(device),
    )
    return -model.bars.log_prob(logits, batch.y_qry.to(device)).mean()


def evaluate(
    model: PFN, batches: dict[str, list[priors.TaskBatch]], device: torch.device
) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        out = {
            kind: float(torch.stack([batch_nll(model, b, device) for b in bs]).mean())
            for kind, bs in batches.items()
        }
    model.train()
    return out


def initial_borders(settings: TrainSettings, cfg: PFNConfig) -> torch.Tensor:
    gen = torch.Generator().manual_seed(settings.seed + 1)
    values = [sample_batch(settings, cfg, gen).y_qry.flatten() for _ in range(BORDER_BATCHES)]
    return borders_from_samples(torch.cat(values), cfg.n_bars)


def learning_rate(settings: TrainSettings, step: int, elapsed_s: float) -> float:
    if step < WARMUP_STEPS:
        return settings.lr * (step + 1) / WARMUP_STEPS
    progress = min(1.0, max(step / settings.steps, elapsed_s / (60.0 * settings.max_minutes)))
    return settings.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train(
    out: Path,
    cfg: PFNConfig,
    settings: TrainSettings,
    device: torch.device,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (or resume) in ``out``; returns the record also written to ``out/record.json``."""
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / "checkpoint.pt"
    gen = torch.Generator().manual_seed(settings.seed)
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        cfg = PFNConfig(**state["config"])
        settings = replace(
            TrainSettings(**state["settings"]), max_minutes=settings.max_minutes, steps=settings.steps
        )
        model = PFN(cfg, state["model"]["borders"])
        model.load_state_dict(state["model"])
        step, elapsed_s, history = int(state["step"]), float(state["elapsed_s"]), list(state["history"])
        gen.set_state(state["generator"])
        log(f"resuming at step {step} ({elapsed_s / 60:.1f} min trained)")
    else:
        model = PFN(cfg, initial_borders(settings, cfg))
        step, elapsed_s, history = 0, 0.0, []
    model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    if checkpoint_path.exists():
        optimiser.load_state_dict(state["optimiser"])
    held_out = validation_batches(settings, cfg)

    def save() -> None:
        state = {
            "config": cfg.to_json(),
            "settings": settings.__dict__,
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "step": step,
            "elapsed_s": elapsed_s,
            "history": history,
            "generator": gen.get_state(),
        }
        tmp = checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(checkpoint_path)

    budget_s = 60.0 * settings.max_minutes
    started, running_loss = time.monotonic() - elapsed_s, 0.0
    while step < settings.steps and elapsed_s < budget_s:
        batch = sample_batch(settings, cfg, gen, step)
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(settings, step, elapsed_s)
        loss = batch_nll(model, batch, device)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        step += 1
        elapsed_s = time.monotonic() - started
        running_loss += float(loss.detach())
        if step % settings.checkpoint_every == 0:
            val = evaluate(model, held_out, device)
            history.append(
                {
                    "step": step,
                    "minutes": elapsed_s / 60,
                    "train_nll": running_loss / settings.checkpoint_every,
                    **val,
                }
            )
            log(json.dumps(history[-1]))
            running_loss = 0.0
            save()
    save()
    record = {
        "config": cfg.to_json(),
        "prior_version": priors.PRIOR_VERSION,
        "prior": settings.prior,
        "settings": settings.__dict__,
        "steps": step,
        "train_seconds": round(elapsed_s, 1),
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "n_parameters": model.n_parameters(),
        "validation_nll": evaluate(model, held_out, device),
        "history": history,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / "record.json").write_text(json.dumps(record, indent=2))
    return record


def export(run: Path, dest: Path) -> Path:
    """Write the shipped form of a run's model: ``pfn.pt`` (state_dict) and ``pfn.json`` (record)."""
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    record = json.loads((run / "record.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    weights = {k: v.float().contiguous() for k, v in state["model"].items()}
    torch.save(weights, dest / "pfn.pt")
    (dest / "pfn.json").write_text(json.dumps(record, indent=2))
    return dest / "pfn.pt"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="run directory (checkpoint and record)")
    parser.add_argument("--export", type=Path, help="after training, write pfn.pt and pfn.json here")
    parser.add_argument("--prior", choices=("mixed", "gp1d"), default="mixed")
    parser.add_argument("--steps", type=int, default=TrainSettings.steps)
    parser.add_argument("--max-minutes", type=float, default=TrainSettings.max_minutes)
    parser.add_argument("--batch", type=int, default=TrainSettings.batch)
    parser.add_argument("--lr", type=float, default=TrainSettings.lr)
    parser.add_argument("--function-share", type=float, default=TrainSettings.function_share)
    parser.add_argument("--seed", type=int, default=TrainSettings.seed)
    parser.add_argument("--checkpoint-every", type=int, default=TrainSettings.checkpoint_every)
    parser.add_argument("--device", default="auto", help="auto (a GPU when available), cpu or cuda")
    parser.add_argument("--threads", type=int, help="torch intra-op threads on CPU")
    for name, default in PFNConfig().to_json().items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = PFNConfig(**{name: getattr(args, name) for name in PFNConfig().to_json()})
    settings = TrainSettings(
        prior=args.prior,
        steps=args.steps,
        max_minutes=args.max_minutes,
        batch=args.batch,
        lr=args.lr,
        function_share=args.function_share,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    record = train(args.out, cfg, settings, pick_device(args.device))
    print(json.dumps({k: record[k] for k in ("steps", "train_seconds", "device", "validation_nll")}))
    if args.export:
        print(f"exported {export(args.out, args.export)}")


if __name__ == "__main__":
    main()
