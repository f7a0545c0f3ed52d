"""``sms train-generator`` and ``sms stylize --generator``: the feed-forward generator by hand or for a run."""
from __future__ import annotations

from pathlib import Path

from workflow.errors import UserError

EPILOG = """examples:
  sms train-generator --content photos/ --model tiny --out gen/        a few CPU minutes on the stand-ins
  sms train-generator --run ff_sms                                     a run of params.yaml (every style)
  sms train-generator --method sms --content ~/data/DIV2K_train_HR --model ~/sd15.safetensors \\
      --style-lora ~/watercolor.safetensors --style-prompt 'watercolor style' --device cuda --out gen/
  sms stylize --generator gen/ photos/ --out out/                      one forward pass per image

Rerunning the same command resumes from the last checkpoint (bit-identical on CPU); a finished run is kept."""
# TrainConfig fields settable from the command line (flag = field name with dashes): type, help
TRAIN_FLAGS = {
    "steps": (int, "training steps of the method's loss (default 2000)"),
    "batch_size": (int, "crops per step (default 4)"),
    "crop": (int, "crop side in pixels, a multiple of 8 (default 512)"),
    "short_side": (int, "resize each training image to this short side before cropping (default: as it is)"),
    "lr": (float, "AdamW learning rate of θ (default 1e-4)"),
    "schedule": (str, "constant or cosine, after --warmup steps (default constant)"),
    "warmup": (int, "linear warm-up steps (default 0)"),
    "reconstruction_steps": (int, "explicit ‖G(z) − z‖² steps first (default 0: G starts as the identity)"),
    "checkpoint_every": (int, "write a checkpoint every N steps (default 100)"),
    "keep_checkpoints": (int, "checkpoints kept (default 2)"),
    "architecture": (str, "default (≈ 43.7 MB, the paper's size) or tiny"),
}


def add_train_parser(commands, formatter, add_run_flags) -> None:
    train = commands.add_parser("train-generator", formatter_class=formatter, epilog=EPILOG,
                                help="train a feed-forward generator G_θ with a method's gradient (Algorithm 1)")
    train.add_argument("--run", default=None, help="a run of params.yaml that declares `generator:` (all its styles)")
    train.add_argument("--content", action="append", type=Path, default=[], metavar="PATH",
                       help="training images: files or folders (repeatable; by hand)")
    train.add_argument("--out", type=Path, default=None, metavar="RUN_DIR", help="where checkpoints and the generator go")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--restart", action="store_true",
                       help="RUN_DIR holds a training with other settings: discard it and train anew")
    settings = train.add_argument_group("training (default: the suite's; tiny model: tiny network, 64 px crops)")
    for name, (kind, text) in TRAIN_FLAGS.items():
        settings.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, dest=f"train_{name}",
                              metavar=name.split("_")[0].upper(), help=text)
    add_run_flags(train.add_argument_group("the run (by hand)"))


def train_settings(args) -> dict:
    from sms.models.loading import TINY
    from sms.models.tiny import TINY_IMAGE_SIZE

    given = {name: getattr(args, f"train_{name}") for name in TRAIN_FLAGS if getattr(args, f"train_{name}") is not None}
    if args.model == TINY:
        given = {"crop": TINY_IMAGE_SIZE, "architecture": "tiny", **given}
    return given


def train_config(settings: dict):
    from sms.config import from_dict
    from sms.generator_train import TrainConfig

    return from_dict(TrainConfig, settings)


def train_by_hand(args) -> int:
    from sms.config import resolve
    from sms.generator_train import train_generator
    from workflow.by_hand import expand_inputs, run_config

    if args.out is None or not args.content:
        raise UserError("give --content (training images: files or folders) and --out RUN_DIR, or --run RUN for "
                        "a run of params.yaml that declares `generator:`.")
    config = run_config(args)
    resolve(config)
    train = train_config(train_settings(args))
    result = train_generator(expand_inputs(args.content), config, train, args.out, progress=not args.no_progress,
                             restart=args.restart)
    _print_trained(args.out, result)
    return 0


def _print_trained(out: Path, result) -> None:
    if result.steps_run == 0:
        print(f"{out}: already trained ({result.resumed_from} steps); kept")
    else:
        resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from else ""
        print(f"{out}: trained {result.steps_run} steps{resumed}, {result.seconds_per_step:.3g} s/step")


def stylize_by_hand(args) -> int:
    from sms.generator_infer import stylize_with_generator
    from workflow.by_hand import expand_inputs, outcome

    if args.out is None or not args.images:
        raise UserError("with --generator, give image files or folders and --out DIR.")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    report = stylize_with_generator(expand_inputs(args.images), args.generator, args.out,
                                    batch_size=args.batch_size, device=args.device, style_name=args.style_name)
    return outcome(report, args.out)
