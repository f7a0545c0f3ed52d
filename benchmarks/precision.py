"""Where a reduced precision's error in SMS's gradient comes from: one table, quantity by quantity.

    python benchmarks/precision.py                                            # tiny, bf16 + fp16
    python benchmarks/precision.py --model sd15-random --style-base sd15-random:1 --dtypes bfloat16

Every quantity is computed on an fp32 stack and on a stack in each dtype, on the same z_t, t and ε, and
reported as ‖x − x_fp32‖ / ‖x_fp32‖: one UNet call, its CFG-guided prediction, the style − fake
difference, and SMS's g after ``begin`` + one ``update`` (benchmarks/numerics.py) with and without SAGR
and fake-score CFG. Error that grows down the table is the dtype's error amplified by cancellation, not
a fault of any execution order. ``--whole-run N`` adds what it does to a whole N-iteration run: PSNR of
the output against the fp32 reference order, next to another fp32 seed's for scale.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks import numerics, stacks  # noqa: E402
from sms.config import RunConfig, resolve  # noqa: E402
from sms.diffusion import NoiseSchedule, add_noise, cfg  # noqa: E402
from sms.method import Prompts  # noqa: E402
from sms.models import ModelSpec  # noqa: E402

PROMPTS = Prompts("watercolor style", "a photo")
TIMESTEPS = (21, 201, 499)
G_CASES = {  # label → SMS config overrides
    "g without SAGR, fake CFG 1": {"relevance": False, "fake_guidance_scale": 1.0},
    "g without SAGR": {"relevance": False},
    "g (SMS as specified)": {},
}


def _scores(models, z: torch.Tensor, scale: float) -> dict[str, list[torch.Tensor]]:
    """Per t (ε seeded by t): one style call, CFG(style), CFG(style) − CFG(fake) (fake = real at init), float64."""
    emb = models.embed([PROMPTS.target, ""])
    schedule = NoiseSchedule.from_scheduler(models.scheduler)
    out: dict[str, list[torch.Tensor]] = {"one UNet call ε_style(z_t; y)": [], "CFG(ε_style)": [],
                                          "CFG(ε_style) − CFG(ε_fake)": []}
    with torch.no_grad():
        for t in TIMESTEPS:
            timestep = torch.tensor(t, device=models.device)
            eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(t))
            z_t = add_noise(z, eps, schedule.alpha_bar(t))
            pair = torch.cat([z_t, z_t]).to(models.device)
            style = models.denoisers.style(pair, timestep, emb).double().cpu()
            fake = models.denoisers.fake(pair, timestep, emb).double().cpu()
            guided = cfg(*style.chunk(2), scale)
            out["one UNet call ε_style(z_t; y)"].append(style[:1])
            out["CFG(ε_style)"].append(guided)
            out["CFG(ε_style) − CFG(ε_fake)"].append(guided - cfg(*fake.chunk(2), scale))
    return out


def _gradients(models, latents, resolution: int) -> dict[str, torch.Tensor]:
    grads = {}
    for label, overrides in G_CASES.items():
        run = resolve(RunConfig(method="sms", prompts=PROMPTS, model=models.spec, method_overrides=overrides,
                                loop_overrides={"resolution": resolution, "seed": 0}))
        grads[label] = numerics.one_gradient(models, run, *latents)
    return grads


def measure(spec: ModelSpec, dtypes: list[str], resolution: int, scale: float = 4.5) -> dict[str, dict[str, float]]:
    """{quantity: {dtype: relative error vs fp32}} (scores: the mean over TIMESTEPS)."""
    reference = stacks.load(spec)
    run = resolve(RunConfig(method="sms", prompts=PROMPTS, model=spec, loop_overrides={"resolution": resolution}))
    latents = numerics.probe_latents(reference, run, numerics.probe_photo(resolution))
    z = latents[0]
    base_scores, base_grads = _scores(reference, z, scale), _gradients(reference, latents, resolution)
    del reference
    table: dict[str, dict[str, float]] = {}
    for dtype in dtypes:
        models = stacks.load(ModelSpec(**{**spec.__dict__, "dtype": dtype}))
        for label, values in _scores(models, z, scale).items():
            errors = [numerics.relative_error(v, b) for v, b in zip(values, base_scores[label])]
            table.setdefault(label, {})[dtype] = sum(errors) / len(errors)
        for label, g in _gradients(models, latents, resolution).items():
            table.setdefault(label, {})[dtype] = numerics.relative_error(g, base_grads[label])
        del models
        stacks.free_memory(torch.device(spec.device))
    return table


def _psnr(a, b) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(10 * np.log10(255.0**2 / max(np.mean((x - y) ** 2), 1e-12)))


def whole_runs(spec: ModelSpec, dtypes: list[str], iters: int, resolution: int) -> dict[str, float]:
    """{run: PSNR (dB) of its output vs the fp32 reference order's}, on scikit-image's astronaut."""
    from skimage import data

    from sms.loop import stylize_image

    photo = Image.fromarray(data.astronaut()).resize((resolution, resolution))
    cases = {"fp32 batched": ("float32", 0, "batched"), "fp32 reference order, seed 1": ("float32", 1, "reference"),
             **{f"{dtype} batched": (dtype, 0, "batched") for dtype in dtypes}}
    outputs, loaded = {}, {}
    for label, (dtype, seed, execution) in {"reference": ("float32", 0, "reference"), **cases}.items():
        model = ModelSpec(**{**spec.__dict__, "dtype": dtype})
        if dtype not in loaded:
            loaded.clear()  # one stack in memory at a time (full size: 7 GB in fp32)
            loaded[dtype] = stacks.load(model)
        run = resolve(RunConfig(method="sms", prompts=PROMPTS, model=model, method_overrides={"execution": execution},
                                loop_overrides={"iters": iters, "resolution": resolution, "seed": seed}))
        outputs[label] = stylize_image(photo, "precision", loaded[dtype], run, progress=False).image
    return {label: _psnr(outputs[label], outputs["reference"]) for label in cases}


def format_table(table: dict[str, dict[str, float]], dtypes: list[str]) -> str:
    lines = ["| quantity | " + " | ".join(f"{d} error" for d in dtypes) + " |", "|---|" + "---|" * len(dtypes)]
    lines += [f"| {label} | " + " | ".join(f"{row[d]:.2e}" for d in dtypes) + " |" for label, row in table.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--style-base", default=None, help="e.g. tiny:1 / sd15-random:1 (default: shared base)")
    parser.add_argument("--style-lora", default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtypes", default="bfloat16,float16")
    parser.add_argument("--resolution", type=int, default=None, help="default: 64 (tiny) or 512")
    parser.add_argument("--whole-run", type=int, default=0, metavar="N", help="also PSNR of whole N-iteration runs")
    args = parser.parse_args(argv)
    resolution = args.resolution or (64 if args.model.startswith("tiny") else 512)
    dtypes = [d for d in args.dtypes.split(",") if d]
    spec = ModelSpec(base=args.model, style_base=args.style_base, style_lora=args.style_lora, device=args.device)
    table = measure(spec, dtypes, resolution)
    print(f"model={args.model} style_base={args.style_base or 'shared'} device={args.device} "
          f"resolution={resolution} t={','.join(map(str, TIMESTEPS))} (torch {torch.__version__})\n")
    print(format_table(table, dtypes))
    if args.whole_run:
        print(f"\nwhole runs, {args.whole_run} iterations: PSNR vs the fp32 reference order")
        for label, value in whole_runs(spec, dtypes, args.whole_run, resolution).items():
            print(f"  {label}: {value:.1f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
