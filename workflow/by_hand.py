"""``sms stylize IMAGES… --out DIR``: stylising files or folders by hand, outside params.yaml."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from sms.folders import list_images
from workflow.errors import UserError


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders replaced by the images under them (the suite's one folder lister)."""
    found = []
    for path in paths:
        path = Path(path).expanduser()
        if path.is_dir():
            images = list_images(path)
            if not images:
                raise UserError(f"{path} is a folder with no image files; give image files or a folder of them.")
            found += images
        elif path.exists():
            found.append(path)
        else:
            raise UserError(f"{path} does not exist; give image files or folders of images.")
    return found


def parse_settings(pairs: list[str]) -> dict:
    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set guidance_scale=7.5")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def run_config(args):
    from sms.config import RunConfig
    from sms.method import Prompts
    from sms.models.loading import TINY
    from sms.models.stack import ModelSpec
    from sms.models.tiny import TINY_IMAGE_SIZE, TINY_STYLE_PROMPT

    tiny = args.model == TINY
    if args.style_prompt is None and not tiny:
        raise UserError("--style-prompt is required with a real model (e.g. --style-prompt 'watercolor style').")
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
    model = ModelSpec(base=args.model, single_file_config=args.model_config, style_base=args.style_base,
                      style_base_config=args.style_base_config, style_lora=args.style_lora,
                      lora_scale=args.lora_scale, apply_text_encoder_lora=args.apply_text_encoder_lora,
                      dtype=args.dtype, device=args.device, allow_pickle=args.allow_pickle, tf32=args.tf32,
                      channels_last=args.channels_last, compile=args.compile is not None,
                      release_lora_merge=args.release_lora_merge,
                      compile_mode=None if args.compile in (None, "default") else args.compile,
                      controlnet=args.controlnet, vgg19=args.vgg19)
    prompts = Prompts(style=args.style_prompt or TINY_STYLE_PROMPT, caption=args.caption)
    return RunConfig(method=args.method, profile=args.profile, prompts=prompts, model=model,
                     loop_overrides=loop, method_overrides=parse_settings(args.set),
                     exemplar=str(Path(args.exemplar).expanduser()) if args.exemplar else None)


def stylize_by_hand(args) -> int:
    from sms.config import resolve
    from workflow.executor import StylizeJob, executor_flags, executor_options, stylize_jobs

    options = executor_options(None, **executor_flags(args))
    if args.out is None:
        raise UserError("--out DIR is required when stylising files by hand (or use --run RUN for a declared run).")
    if not args.images:
        raise UserError("give image files or folders to stylise (or --run RUN for a declared run of params.yaml).")
    config = run_config(args)
    resolve(config)  # unknown method, profile or setting: refused before any image or model is loaded
    job = StylizeJob(expand_inputs(args.images), config, args.out, style_name=args.style_name, shard=args.shard)
    [report] = stylize_jobs([job], options, progress=not args.no_progress, plugins=args.plugins)
    return outcome(report, args.out)


def outcome(report, out) -> int:
    """Print what a by-hand stylisation wrote, kept and failed; 1 if any image failed, else 0."""
    print(f"wrote {len(report.written)} image(s) to {out}; {len(report.skipped_finished)} already finished")
    for path, reason in report.failed.items():
        print(f"failed {path}: {reason}", file=sys.stderr)
    return 1 if report.failed else 0
