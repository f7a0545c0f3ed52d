"""``sms`` command line: ``sms stylize …`` and ``sms methods``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sms.models.errors import ModelLoadError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sms", description="Style Matching Score and baselines")
    parser.add_argument("--plugins", action="append", default=[], metavar="DIR",
                        help="folder of extra method files to register (repeatable)")
    commands = parser.add_subparsers(dest="command", required=True)
    stylize = commands.add_parser("stylize", help="stylise images with a score-distillation method")
    stylize.add_argument("images", nargs="+", type=Path)
    stylize.add_argument("--out", type=Path, required=True)
    stylize.add_argument("--method", default="sms")
    stylize.add_argument("--profile", default=None, help="the method's named profile (default: its own)")
    stylize.add_argument("--model", default="tiny", help="'tiny', hub id, diffusers folder or .safetensors file")
    stylize.add_argument("--style-base", default=None, help="style checkpoint if different from --model")
    stylize.add_argument("--style-lora", default=None, help="style LoRA file (kohya/Civitai or diffusers)")
    stylize.add_argument("--lora-scale", type=float, default=0.8)
    stylize.add_argument("--apply-text-encoder-lora", action="store_true")
    stylize.add_argument("--style-prompt", default=None)
    stylize.add_argument("--caption", default="")
    stylize.add_argument("--style-name", default="", help="style label written to the manifest")
    stylize.add_argument("--lambda", dest="lambda_identity", type=float, default=None)
    stylize.add_argument("--identity", default=None, help="identity loss: none, latent_mse, psr, psr_fixed, …")
    stylize.add_argument("--iters", type=int, default=None)
    stylize.add_argument("--resolution", type=int, default=None, help="short side in pixels (default 512; tiny: 64)")
    stylize.add_argument("--seed", type=int, default=0)
    stylize.add_argument("--device", default="cpu")
    stylize.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                         help="frozen UNet weights (LoRA and latents stay fp32); check a reduced precision's "
                              "gradient error on your weights with benchmarks/bench_methods.py first")
    stylize.add_argument("--tf32", action="store_true", help="CUDA: fp32 UNet matmuls on TF32 tensor cores")
    stylize.add_argument("--channels-last", action="store_true", help="UNet activations in channels-last format")
    stylize.add_argument("--compile", nargs="?", const="default", default=None, metavar="MODE",
                         help="torch.compile the UNet(s); MODE e.g. reduce-overhead (CUDA graphs), max-autotune")
    stylize.add_argument("--preview-every", type=int, default=0)
    stylize.add_argument("--shard", default=None, help="i/n: process every n-th image starting at i")
    stylize.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                         help="method setting override, e.g. --set guidance_scale=7.5 (repeatable)")
    stylize.add_argument("--allow-pickle", action="store_true")
    stylize.add_argument("--no-progress", action="store_true")
    commands.add_parser("methods", help="list registered methods and their profiles")
    return parser


def _overrides(pairs: list[str]) -> dict:
    values = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def _run_config(args):
    from sms.config import RunConfig
    from sms.method import Prompts
    from sms.models.loading import TINY
    from sms.models.stack import ModelSpec
    from sms.models.tiny import TINY_IMAGE_SIZE, TINY_STYLE_PROMPT

    tiny = args.model == TINY
    if args.style_prompt is None and not tiny:
        raise SystemExit("sms stylize: --style-prompt is required with a real model (e.g. 'watercolor style')")
    if not tiny and args.style_lora is None and args.style_base is None:
        print("sms stylize: warning: neither --style-lora nor --style-base given, so the style network is the "
              "base model itself (fine for SDS/DDS/PDS with their base prior; SMS then has no style to match)",
              file=sys.stderr)
    loop = {"seed": args.seed, "preview_every": args.preview_every}
    for key in ("lambda_identity", "identity", "iters", "resolution"):
        if getattr(args, key) is not None:
            loop[key] = getattr(args, key)
    if tiny and args.resolution is None:
        loop["resolution"] = TINY_IMAGE_SIZE
    model = ModelSpec(base=args.model, style_base=args.style_base, style_lora=args.style_lora,
                      lora_scale=args.lora_scale, apply_text_encoder_lora=args.apply_text_encoder_lora,
                      dtype=args.dtype, device=args.device, allow_pickle=args.allow_pickle, tf32=args.tf32,
                      channels_last=args.channels_last, compile=args.compile is not None,
                      compile_mode=None if args.compile in (None, "default") else args.compile)
    prompts = Prompts(style=args.style_prompt or TINY_STYLE_PROMPT, caption=args.caption)
    return RunConfig(method=args.method, profile=args.profile, prompts=prompts, model=model,
                     loop_overrides=loop, method_overrides=_overrides(args.set))


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    from sms.plugins import load_methods

    load_methods(args.plugins)
    from sms.method import methods

    if args.command == "methods":
        for name in methods.names():
            cls = methods.get(name)
            print(f"{name:12s} profiles: {', '.join(sorted(cls.profiles))} (default {cls.default_profile})")
        return 0
    from sms.runner import InputError, stylize_files

    try:
        report = stylize_files(args.images, _run_config(args), args.out, shard=args.shard,
                               style_name=args.style_name, progress=not args.no_progress)
    except (ModelLoadError, InputError) as error:
        print(f"sms stylize: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(report.written)} image(s) to {args.out}; {len(report.skipped_finished)} already finished")
    for path, reason in report.failed.items():
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return 1 if report.failed and not (report.written or report.skipped_finished) else 0


if __name__ == "__main__":
    sys.exit(main())
