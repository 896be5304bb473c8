"""The RunConfig flags of ``run`` and ``sweep`` and how they become a config.

With ``multi`` each flag takes a comma-separated list (a sweep's grid); the base
config comes from ``--preset``, ``--config`` or the defaults, and flags given after
it override it.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable

from ..commands import CommandError, Scheduled, parse_command
from ..config import ACTIVATIONS, DATASETS, INITS, MODEL_DEFAULTS, MODELS, OPTIMIZERS, SCALED_INITS, ConfigError, RunConfig


def positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    return x


def clip(text: str) -> tuple[str, float]:
    try:
        cmd = parse_command(f"clip={text}")
    except CommandError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return cmd.mode, cmd.threshold  # type: ignore[attr-defined]


def comma_list(f: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """A sweep flag's converter: each comma-separated value through ``f``, and a bad
    one named (argparse's own message named the converter, "invalid <lambda> value")."""
    def convert(text: str) -> list[Any]:
        out = []
        for v in text.split(","):
            try:
                out.append(f(v.strip()))
            except ValueError:
                raise argparse.ArgumentTypeError(f"{v.strip()!r} in {text!r} is not a valid {f.__name__} (give comma-separated values)") from None
        return out

    return convert


def add_config_flags(p: argparse.ArgumentParser, multi: bool = False) -> None:
    """The RunConfig flags; with ``multi`` each takes a comma-separated list (sweep)."""
    conv: Callable[[Any], Any] = comma_list if multi else (lambda f: f)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="start from a preset in resources/presets")
    src.add_argument("--config", help="start from a config JSON, a preset file or an exported session.json (replays its events)")
    p.add_argument("--dataset", type=conv(str), help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--depth", type=conv(int), help="hidden blocks, 1-200")
    p.add_argument("--width", type=conv(int), help="units per hidden layer, 1-2048")
    p.add_argument("--activation", type=conv(str), help=f"one of {', '.join(ACTIVATIONS)}")
    p.add_argument("--init", type=conv(str), help=f"one of {', '.join(INITS)}; normal:STD and uniform:SCALE set the number too")
    p.add_argument("--init-std", type=conv(float), help="std of the 'normal' init")
    p.add_argument("--init-scale", type=conv(float), help="bound of the 'uniform' init")
    p.add_argument("--bias-std", type=conv(float), help="std of the initial biases (default 0: zero biases)")
    bn = p.add_mutually_exclusive_group()
    bn.add_argument("--batchnorm", dest="batchnorm", action="store_const", const=True, default=None)
    bn.add_argument("--no-batchnorm", dest="batchnorm", action="store_const", const=False)
    ln = p.add_mutually_exclusive_group()
    ln.add_argument("--layernorm", dest="layernorm", action="store_const", const=True, default=None, help="layer norm after each hidden Linear (per sample: works at batch size 1)")
    ln.add_argument("--no-layernorm", dest="layernorm", action="store_const", const=False)
    res = p.add_mutually_exclusive_group()
    res.add_argument("--residual", dest="residual", action="store_const", const=True, default=None, help="skip connections: hidden blocks 2..depth become z + alpha * Linear(act(z)) (pre-activation residual)")
    res.add_argument("--no-residual", dest="residual", action="store_const", const=False)
    p.add_argument("--residual-alpha", type=conv(positive_float), help="alpha of the skip connections (default 1/sqrt(depth))")
    p.add_argument("--clip", type=conv(clip), help="none, norm:X or value:X")
    p.add_argument("--optimizer", type=conv(str), help=f"one of {', '.join(OPTIMIZERS)}")
    p.add_argument("--lr", type=conv(positive_float), help="learning rate > 0")
    p.add_argument("--batch-size", type=conv(int))
    p.add_argument("--steps", type=conv(int))
    p.add_argument("--seed", type=conv(int))
    p.add_argument("--stats-every", type=conv(int), help="sample activation statistics every K steps")
    add_family_flags(p, conv)
    p.add_argument("--event", action="append", default=[], metavar="STEP:KEY=VALUE", help="a command at a step, e.g. 200:batchnorm=on (repeatable)")
    p.add_argument("--max-memory", type=float, help="cap of the in-memory metric store in MB (default 256)")
    p.add_argument("--out", required=True, help="output folder")


FLAG_TO_FIELD = {
    "dataset": "dataset",
    "depth": "depth",
    "width": "width",
    "activation": "activation",
    "init": "init",
    "init_std": "init_std",
    "init_scale": "init_scale",
    "bias_std": "bias_std",
    "batchnorm": "batchnorm",
    "layernorm": "layernorm",
    "residual": "residual",
    "residual_alpha": "residual_alpha",
    "optimizer": "optimizer",
    "lr": "lr",
    "batch_size": "batch_size",
    "steps": "steps",
    "seed": "seed",
    "stats_every": "stats_every",
    "max_memory": "max_memory_mb",
    # the model family's fields (recurrent models: --model rnn --dataset adding --seq-len 50 ...)
    "model": "model",
    "seq_len": "seq_len",
    "recurrent_init": "recurrent_init",
    "forget_bias": "forget_bias",
    "heads": "heads",
    "norm_position": "norm_position",
    "warmup_steps": "warmup_steps",
}


def add_family_flags(p: argparse.ArgumentParser, conv: Callable[[Any], Any]) -> None:
    """The model-family flags, mirroring their RunConfig fields."""
    p.add_argument("--model", type=conv(str), help=f"the network family: one of {', '.join(MODELS)} (default mlp)")
    p.add_argument("--seq-len", type=conv(int), help="tokens per input sequence of sequence models (recurrent and transformer), 2-1000")
    p.add_argument("--recurrent-init", type=conv(str), help="W_hh of recurrent models: orthogonal, identity or normal:G (spectral radius about G)")
    p.add_argument("--forget-bias", type=conv(float), help="the LSTM's initial forget-gate bias (default 1)")
    p.add_argument("--heads", type=conv(int), help="attention heads of a transformer (width must be divisible by it)")
    p.add_argument("--norm-position", type=conv(str), help="transformer layer norms: pre (before each sublayer) or post (after each residual add)")
    p.add_argument("--warmup-steps", type=conv(int), help="steps of linear learning-rate warm-up (default 0: none)")


def base_config(args: argparse.Namespace) -> tuple[RunConfig, tuple[Scheduled, ...], str]:
    """The starting config, its events and a label saying where it came from."""
    from ..teaching.presets import load_preset, parse_run_file

    if args.preset:
        p = load_preset(args.preset)
        return p.config, p.events, f"preset {p.name}"
    if args.config:
        cfg, events = parse_run_file(args.config)
        return cfg, events, f"config {args.config}"
    return RunConfig(), (), "default config"


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the flags set (a list per field for a sweep)."""
    out = {field: getattr(args, flag) for flag, field in FLAG_TO_FIELD.items() if getattr(args, flag, None) is not None}
    if getattr(args, "clip", None) is not None:
        out["clip"] = args.clip
    return out


def apply_changes(cfg: RunConfig, changes: dict[str, Any]) -> RunConfig:
    """``cfg`` with the flags' values, ``--init NAME:NUMBER`` and ``--clip`` spelled out."""
    changes = dict(changes)
    if changes.get("model", cfg.model) != cfg.model:  # --model rnn alone: a depth and dataset that family takes
        changes = {**MODEL_DEFAULTS.get(changes["model"], {}), **changes}
    init = changes.get("init")
    if isinstance(init, str) and ":" in init:
        # NAME:NUMBER, the spelling events, presets and the window use (normal:0.5):
        # the number goes to the field that scheme reads (init_std or init_scale).
        try:
            cmd = parse_command(f"init={init}")
        except CommandError as exc:
            raise ConfigError(f"--init {init}: {exc}", field="init") from None
        changes["init"] = cmd.scheme  # type: ignore[attr-defined]
        changes[SCALED_INITS[cmd.scheme]] = cmd.scale  # type: ignore[attr-defined]
    clip = changes.pop("clip", None)
    if clip is not None:
        changes["clip_mode"], changes["clip_threshold"] = clip[0], (clip[1] if clip[0] != "none" else cfg.clip_threshold)
    return cfg.with_changes(**changes)
