"""The one command line: ``sms <command>``; every pipeline stage, stylising by hand, and the registries."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workflow.errors import reported
from workflow.generator_cli import add_train_parser

EPILOG = """examples:
  sms check                                   validate the active profile of params.yaml, list every problem
  dvc repro                                   the whole pipeline (each stage below is one `sms` command)
  sms stylize --run sms                       one declared run of params.yaml, every style of the profile
  sms stylize photos/ --model tiny --out out/ stylise a folder by hand (offline stand-in models)
  sms stylize photo.jpg --method dds --profile official --out out/
  sms metrics sms                             one run's numbers, per style (after `dvc repro`)
  sms methods                                 registered methods: family, style input, profiles
  sms stylize photo.jpg --method magenta --exemplar painting.jpg --out out/   an exemplar method
  sms train-generator --content photos/ --out gen/   distil a method into a feed-forward generator
  sms stylize --generator gen/ photos/ --out out/     … and stylise with it, one forward pass per image
"""
STAGE_HELP = {
    "check": "validate the active profile: paths, files (headers), methods, settings, data sets",
    "stage": "stage the content and style reference sets (hashed manifests) into data/staged/",
    "prepare": "centre-crop and resize the content images into data/prepared/content/",
    "evaluate": "compute every metric over the declared runs' results into reports/metrics/",
    "report": "write tables, figures and report.md into reports/paper/",
}


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=36)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sms", formatter_class=_formatter, epilog=EPILOG,
                                     description="Style Matching Score (SMS, ICCV 2025), its baselines, metrics "
                                                 "and the paper's pipeline.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="the experiment settings (default: ./params.yaml)")
    parser.add_argument("--plugins", action="append", default=[], metavar="DIR",
                        help="folder of extra method files to register (repeatable; also $SMS_PLUGINS)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("check", help=STAGE_HELP["check"], formatter_class=_formatter)
    check.add_argument("--locks", type=Path, default=None, metavar="DIR",
                       help="also write the weight files' sha256 into DIR (the pipeline's build/locks)")
    for name in ("stage", "prepare", "evaluate", "report"):
        commands.add_parser(name, help=STAGE_HELP[name], formatter_class=_formatter)
    metrics = commands.add_parser("metrics", help="one run's metrics (style → metric) from the evaluate stage",
                                  formatter_class=_formatter, epilog="example:\n  sms metrics sms")
    metrics.add_argument("run", help="a run of params.yaml")
    metrics.add_argument("--json", type=Path, default=None, metavar="FILE",
                         help="write them as JSON (the pipeline's reports/metrics/runs/RUN.json) instead of printing")
    _add_stylize(commands)
    add_train_parser(commands, _formatter, add_run_flags)
    commands.add_parser("methods", help="list registered methods: family, style input, profiles and settings")
    return parser


def _add_stylize(commands) -> None:
    stylize = commands.add_parser(
        "stylize", help="stylise images: a declared run (--run) or files/folders by hand", formatter_class=_formatter,
        epilog="examples:\n  sms stylize --run dds --executor ray   run `dds` on every GPU (README: Scale out on Ray)\n"
               "  sms stylize --run dds --shard 0/2      half of run `dds` (the other GPU: --shard 1/2)\n"
               "  sms stylize photos/ --model tiny --out out/\n  sms stylize a.jpg --model ~/sd15.safetensors "
               "--style-lora ~/watercolor.safetensors \\\n      --style-prompt 'watercolor style' --device cuda --out out/")
    stylize.add_argument("images", nargs="*", type=Path, help="image files or folders (searched recursively)")
    stylize.add_argument("--run", default=None, help="a run of params.yaml (the pipeline's stylise stage)")
    stylize.add_argument("--out", type=Path, default=None, help="output folder (by hand)")
    stylize.add_argument("--shard", default=None, help="i/n: process every n-th image starting at i")
    stylize.add_argument("--no-progress", action="store_true", help="no progress bars")
    scale = stylize.add_argument_group("where images run (with --run, default: the profile's `executor:` section)")
    scale.add_argument("--executor", choices=["local", "ray"], default=None,
                       help="local: this process (default); ray: a pool of workers on a Ray cluster, one per GPU "
                            "share (pip install -c constraints.txt -e \".[ray]\")")
    scale.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="Ray cluster, e.g. HEAD_IP:6379 (default: $RAY_ADDRESS, else a local cluster started "
                            "for the run and stopped after)")
    scale.add_argument("--gpus-per-worker", type=float, default=None, metavar="G",
                       help="GPUs per Ray worker: 1 (default), 0.5 = two workers share a GPU, 0 = CPU workers "
                            "(a worker computes on one GPU: more only reserves them)")
    scale.add_argument("--max-retries", type=int, default=None, metavar="N",
                       help="retries of an image whose worker died or failed other than by its input (default 2)")
    scale.add_argument("--workers", type=int, default=None, metavar="N",
                       help="at most N Ray workers (default: every GPU share of the cluster)")
    stylize.add_argument("--generator", type=Path, default=None, metavar="RUN_DIR",
                         help="stylise with a trained generator (`sms train-generator`): one forward pass per image")
    stylize.add_argument("--batch-size", type=int, default=8, metavar="N",
                         help="with --generator: images per forward pass (default 8)")
    add_run_flags(stylize.add_argument_group("by hand (ignored with --run: params.yaml decides)"))


def add_run_flags(group) -> None:
    """What a run is made of, given on the command line (stylising or training a generator by hand)."""
    add = group.add_argument
    add("--method", default="sms", help="registered method (see `sms methods`)")
    add("--profile", default=None, help="the method's named profile (default: its own)")
    add("--set", action="append", default=[], metavar="KEY=JSON",
        help="method setting, e.g. --set guidance_scale=7.5 (repeatable)")
    add("--model", default="tiny", help="'tiny', hub id, diffusers folder or single .safetensors file")
    add("--model-config", default=None, metavar="DIR", help="diffusers config folder for a non-SD-1.5 single file")
    add("--style-base", default=None, help="style checkpoint if different from --model")
    add("--style-base-config", default=None, metavar="DIR", help="config folder for a single-file --style-base")
    add("--style-lora", default=None, help="style LoRA file (kohya/Civitai or diffusers)")
    add("--lora-scale", type=float, default=0.8, help="style LoRA strength (default 0.8, as the release)")
    add("--apply-text-encoder-lora", action="store_true", help="also apply the LoRA's text-encoder keys")
    add("--style-prompt", default=None, help="the style's prompt, e.g. 'watercolor style' (required for real models)")
    add("--caption", default="", help="content caption appended to the prompt")
    add("--style-name", default="", help="style label written to the manifest")
    add("--exemplar", default=None, metavar="IMAGE|DIR",
        help="style image of an exemplar method (styleid, magenta, gatys); a folder: one image per content image")
    add("--controlnet", default=None, metavar="FILE|DIR",
        help="SD-1.5 ControlNet (canny/tile) for style_lora_controlnet; 'tiny' = stand-in")
    add("--vgg19", default=None, metavar="FILE",
        help="VGG-19 weights for gatys (torchvision's vgg19-dcbb9e9d.pth); 'tiny' = seeded stand-in")
    add("--lambda", dest="lambda_identity", type=float, default=None, help="identity-loss weight λ")
    add("--identity", default=None, help="identity loss: none, latent_mse, psr, psr_fixed, fft_lowpass, …")
    add("--iters", type=int, default=None, help="iterations (default: the method's N)")
    add("--resolution", type=int, default=None, help="short side in pixels (default 512; tiny: 64)")
    add("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    add("--device", default="cpu", help="cpu, cuda, cuda:1, …")
    add("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
        help="frozen UNet weights (LoRA and latents stay fp32); check a reduced precision first (README)")
    add("--tf32", action="store_true", help="CUDA: fp32 UNet matmuls on TF32 tensor cores")
    add("--channels-last", action="store_true", help="UNet activations in channels-last format")
    add("--compile", nargs="?", const="default", default=None, metavar="MODE",
        help="torch.compile the UNet(s); MODE e.g. reduce-overhead (CUDA graphs), max-autotune")
    add("--preview-every", type=int, default=0, help="save a strip of intermediate decodes every N iterations")
    add("--release-lora-merge", action="store_true",
        help="merge the style LoRA in fp16, as the authors' release (sms/deviations.py: fp16_lora_merge)")
    add("--allow-pickle", action="store_true", help="allow .ckpt/.pt files (they can run code when loaded)")


def _params(args):
    from workflow.params import load_params

    return load_params(args.params)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with reported(f"sms {args.command}"):
        if args.command in ("check", "stylize", "methods", "train-generator"):  # the others need no method (and no torch)
            from workflow.discovery import load_methods

            load_methods(args.plugins)
        return _dispatch(args)


def _dispatch(args) -> int:
    from workflow import stages

    if args.command == "methods":
        return _list_methods()
    if args.command == "train-generator":
        from workflow import generator_cli

        if args.run:
            from workflow import generator_stages

            return generator_stages.train(_params(args), args.run, progress=not args.no_progress)
        return generator_cli.train_by_hand(args)
    if args.command == "stylize":
        if args.generator is not None and not args.run:
            from workflow.generator_cli import stylize_by_hand as stylize_with_generator

            return stylize_with_generator(args)
        if args.run:
            params = _params(args)
            if params.is_generator_run(args.run):
                from workflow import generator_stages

                return generator_stages.stylize(params, args.run, progress=not args.no_progress,
                                                batch_size=args.batch_size)
            from workflow.executor import executor_flags

            return stages.stylize(params, args.run, args.shard, progress=not args.no_progress,
                                  executor=executor_flags(args), plugins=args.plugins)
        from workflow.by_hand import stylize_by_hand

        return stylize_by_hand(args)
    params = _params(args)
    if args.command == "check":
        identities = stages.check(params, locks=args.locks)
        print(f"profile {params.profile_name!r}: {len(params.runs)} runs × {len(params.styles)} styles resolve; "
              f"every path, weight file and data set checked ({len(identities)} weight references).")
        return 0
    if args.command == "report":
        return stages.report(params)
    if args.command == "metrics":
        return _show_metrics(stages.run_metrics(params, args.run), args.json)
    getattr(stages, args.command)(params)
    return 0


def _show_metrics(found: dict[str, dict[str, float]], json_path: Path | None) -> int:
    if json_path is not None:
        from sms.outputs import atomic_write_json

        atomic_write_json(json_path, found)
        return 0
    for style, values in found.items():
        print(f"{style}: " + ", ".join(f"{metric} {value:g}" for metric, value in sorted(values.items())))
    return 0


def _list_methods() -> int:
    import dataclasses

    from sms.config import method_class
    from sms.method import methods
    from sms.stylizer import stylizers

    print("Every score-distillation method also runs feed-forward: `sms train-generator --method NAME` (README).")
    for name in sorted({*methods.names(), *stylizers.names()}, key=lambda n: (method_class(n).family, n)):
        cls = method_class(name)
        print(f"{name:22s} family: {cls.family}; style input: {' + '.join(cls.style_inputs)}"
              + (f"; weights: {', '.join(cls.spec_weights)}" if getattr(cls, "spec_weights", ()) else ""))
        default = "" if list(cls.profiles) == [cls.default_profile] else f" (default {cls.default_profile})"
        print(f"{'':22s} profiles: {', '.join(sorted(cls.profiles))}{default}")
        print(f"{'':22s} settings: {', '.join(field.name for field in dataclasses.fields(cls.Config))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
