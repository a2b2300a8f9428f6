"""Every configuration of the platform, as pydantic models, and TOML loading.

A run's configuration is layered, later layers winning key by key:

1. the defaults of the models below;
2. the domain's preset (``Domain.presets[name]``, a partial nested dict);
3. a TOML file given with ``--config``;
4. command-line flags.

Every model forbids unknown keys, so a misspelled key is an error that names the file and the
key path (``run.toml: generation.n_sample: Extra inputs are not permitted``).
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from noa_platform.errors import ConfigError
from noa_platform.tokenizer.config import TokenizerConfig

#: The core's tokenizer family: the default of ``[tokenizer] name``.
BUILTIN_TOKENIZER = "vqvae"


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(StrictModel):
    """Fractions of samples in each split; assigned deterministically by sample index."""

    train: float = Field(0.8, ge=0, le=1)
    val: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        if abs(self.train + self.val + self.test - 1.0) > 1e-9:
            raise ValueError("train + val + test must equal 1")
        return self


class GenerationConfig(StrictModel):
    """How a CNO dataset is generated (``noa generate``)."""

    n_samples: int = Field(
        256, ge=1, le=10_000_000, description="number of trajectories (at most 10 million: "
        "θ, seeds and splits of the whole run are planned in memory)")
    n_frames: int = Field(32, ge=1, description="frames after the initial condition (T)")
    resolution: int = Field(32, ge=8, description="grid points per side")
    seed: int = Field(0, ge=0, description="dataset seed; every per-sample seed derives from it")
    batch_size: int = Field(16, ge=1, description="samples integrated together")
    ic_families: dict[str, float] = Field(
        default_factory=dict,
        description="initial-condition family -> relative weight; empty = all families equally",
    )
    noise_amplitude: float = Field(0.0, ge=0, description="additive solver noise; 0 = deterministic")
    burn_in_frames: int = Field(
        0, ge=0, description="frames simulated from the initial condition and discarded, so that "
        "stored trajectories start from developed states")
    parameter_ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="parameter -> [low, high]: sample θ in this part of the domain's box "
        "(physical values, inside the parameter's range)")
    dtype: Literal["float32", "float64"] = "float32"
    splits: SplitConfig = Field(default_factory=SplitConfig)
    compression_level: int = Field(4, ge=0, le=9, description="gzip level of trajectories")
    features: bool = Field(True, description="compute and store features while generating")

    @model_validator(mode="after")
    def _positive_weights(self) -> GenerationConfig:
        for name, w in self.ic_families.items():
            if not w > 0:
                raise ValueError(f"ic_families.{name}: weight must be > 0")
        for name, (lo, hi) in self.parameter_ranges.items():
            if not lo < hi:
                raise ValueError(f"parameter_ranges.{name}: need low < high, got [{lo}, {hi}]")
        return self


class FeaturesConfig(StrictModel):
    """Which feature families a run computes, tokenizes and compares (``[features]``)."""

    families: list[str] = Field(
        default_factory=lambda: ["initial", "summary", "temporal"],
        min_length=1,
        description="feature families by name, looked up among those plugins register through "
        "noa_feature_extractors (the core's: initial, summary, temporal)",
    )

    @model_validator(mode="after")
    def _distinct(self) -> FeaturesConfig:
        repeated = sorted({f for f in self.families if self.families.count(f) > 1})
        if repeated:
            raise ValueError(f"families: {', '.join(repeated)} listed more than once")
        return self


class TokenizerSection(BaseModel):
    """``[tokenizer]``: the tokenizer family by name, and that family's own settings.

    The other keys go to the family's factory. Those of the built-in ``vqvae`` are checked
    here already (:class:`~noa_platform.tokenizer.config.TokenizerConfig`), so a misspelled key
    is reported with the file that holds it; a plugin's family checks its own when built.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str = Field("vqvae", min_length=1, description="tokenizer family (noa_tokenizers)")

    @model_validator(mode="after")
    def _check_builtin_settings(self) -> TokenizerSection:
        if self.name == BUILTIN_TOKENIZER:
            try:
                TokenizerConfig.model_validate(self.settings())
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"{where}: {first['msg']}") from None
        return self

    def settings(self) -> dict[str, Any]:
        """Every key but ``name``: the keyword arguments of the family's factory."""
        return dict(self.model_extra or {})


class MNOConfig(StrictModel):
    """The learned operator: which architecture and its keyword arguments."""

    architecture: dict[str, Any] = Field(
        default_factory=dict,
        description="architecture name and its settings (validated by the architecture); "
        "empty keys fall back to the domain's default_architecture",
    )
    increment_cutoff: float | None = Field(
        None, gt=0, le=1, description="low-pass the predicted increment: keep Fourier modes "
        "with |k| <= cutoff * k_max (k_max = half the grid side); none = no filter")


class TrainingConfig(StrictModel):
    """How the MNO is trained on CNO trajectories (windows over the whole stored horizon)."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0, description="peak AdamW learning rate")
    weight_decay: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(50, ge=0, description="linear warm-up, then cosine decay to 0")
    bptt_window: int = Field(
        4, ge=1, description="steps rolled out with gradient per training window")
    windows_per_sample: int = Field(
        1, ge=1, description="training windows drawn from each trajectory per epoch")
    start_at_zero: float = Field(
        0.1, ge=0, le=1, description="share of windows that start at frame 0; the others start "
        "at a uniformly drawn frame of the stored horizon")
    curriculum_epochs: int = Field(
        0, ge=0, description="epochs over which the window grows from 1 step to bptt_window "
        "(0 = the full window from the start)")
    pushforward_steps: int = Field(
        0, ge=0, description="at most this many steps rolled out without gradient before a "
        "window, so that it trains on the model's own state (0 = off)")
    input_noise: float = Field(
        0.0, ge=0, description="Gaussian noise added to each window's first state, in units of "
        "each channel's frame-increment std (0 = off)")
    traj_per_sample_floor: float = Field(
        0.0, ge=0, description="0: L_traj is the MSE in channel stds; s > 0: each sample's "
        "error divided by its own spatial variance (floored at s channel variances)")
    lambda_commit: float = Field(
        0.0, ge=0, description="weight of L_commit: distance between the tokenizer latents of "
        "MNO and CNO features over the window's frames (0 = off)")
    lambda_latent: float = Field(
        0.0, ge=0, description="weight of L_latent: projected MNO bottleneck against the "
        "tokenizer latent of the CNO window (0 = off)")
    latent_sample_steps: int = Field(
        3, ge=1, description="bottleneck latents sampled per window for L_latent")
    ema_decay: float = Field(
        0.0, ge=0, lt=1, description="decay of an exponential moving average of the weights, "
        "which validation, best.pt and the report then use (0 = off)")
    grad_clip: float = Field(1.0, gt=0, description="max global gradient norm")
    max_nonfinite: int = Field(
        20, ge=0, description="stop when more updates than this had a non-finite loss or gradient")
    early_stop_patience: int = Field(
        3, ge=1, description="stop after this many epochs without a better validation VRMSE")
    save_every: int = Field(100, ge=1, description="checkpoint every N optimizer steps")
    keep_checkpoints: int = Field(
        2, ge=0, description="epoch checkpoints kept besides best.pt, last.pt and final.pt: "
        "the newest N epoch-NNNN.pt (0: none)")
    seed: int = Field(0, ge=0)
    validation_samples: int | None = Field(
        None, ge=1, description="samples of the report's split (test, or val with --report-split) used by post-training validation (default: all)")


class RunConfig(StrictModel):
    """The whole configuration of a run of ``noa`` on one domain."""

    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    tokenizer: TokenizerSection = Field(default_factory=TokenizerSection)
    mno: MNOConfig = Field(default_factory=MNOConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)


# --------------------------------------------------------------------------------------------
# Loading and layering
# --------------------------------------------------------------------------------------------


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        # A section's own validator names the key inside it ("steps: ..."): one dotted key.
        inner = re.match(r"Value error, ([A-Za-z_]\w*(?:\.[\w-]+)*): ", msg)
        if inner:
            loc, msg = f"{loc}.{inner.group(1)}", msg[inner.end():]
        lines.append(f"{source}: {loc}: {msg.removeprefix('Value error, ')}")
    return "\n".join(lines)


class SettingError(ConfigError):
    """A value that only the domain or a plugin can judge (θ ranges, initial-condition
    families, architecture or tokenizer settings), raised where that check runs; ``key`` is
    the dotted key, so that the caller who knows the layers can name the file that set it
    (:func:`setting_source`)."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


def first_difference(old: Any, new: Any, prefix: str = "", labels: tuple[str, str] = (
        "then", "now")) -> str | None:
    """The first key path where two JSON-like values differ, described for a message.

    ``first_difference({"a": {"b": 1}}, {"a": {"b": 2}})`` is ``"a.b: 1 then, 2 now"``.
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            diff = first_difference(old.get(key), new.get(key), f"{prefix}{key}.", labels)
            if diff:
                return diff
        return None
    if old != new:
        return f"{prefix.rstrip('.')}: {old!r} {labels[0]}, {new!r} {labels[1]}"
    return None


#: Settings that change what a run keeps on disk, not what it computes: a checkpoint or a
#: finished run made with other values of these is the same training, so changing them between
#: reruns (or running a folder written before one of them existed) is not "other settings".
BOOKKEEPING_KEYS = (("training", "keep_checkpoints"), ("training", "save_every"))

#: Settings added after run folders were written, with the value every earlier run had: a
#: config without one is read as having that value, so those runs stay up to date and resume.
ADDED_SETTINGS = (("training", "ema_decay", 0.0),)


def run_difference(old: Any, new: Any, labels: tuple[str, str] = ("then", "now")) -> str | None:
    """:func:`first_difference` of two run configs (JSON), over the settings that change the
    run's result: :data:`BOOKKEEPING_KEYS` are left out, :data:`ADDED_SETTINGS` filled in."""
    def comparable(config: Any) -> Any:
        if not isinstance(config, Mapping):
            return config
        config = {k: dict(v) if isinstance(v, Mapping) else v for k, v in config.items()}
        for section, key in BOOKKEEPING_KEYS:
            if isinstance(config.get(section), dict):
                config[section].pop(key, None)
        for section, key, then in ADDED_SETTINGS:
            if isinstance(config.get(section), dict):
                config[section].setdefault(key, then)
        return config

    return first_difference(comparable(old), comparable(new), labels=labels)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file, turning I/O and syntax errors into one-line :class:`ConfigError`."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # tomllib decodes the bytes before parsing them
        raise ConfigError(f"{p}: invalid TOML: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``override``, recursing into nested tables.

    A table that names what it configures (``[tokenizer]``, ``[mno.architecture]``) and names
    something else than ``base`` replaces it whole: the earlier keys belong to the other
    tokenizer or architecture, whose settings the new one would reject.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        old = out.get(key)
        renamed = (isinstance(value, Mapping) and isinstance(old, Mapping)
                   and "name" in value and "name" in old and value["name"] != old["name"])
        if isinstance(value, Mapping) and isinstance(old, Mapping) and not renamed:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def validate_layer(data: Mapping[str, Any], source: str) -> None:
    """Check one layer on its own, so an error names the layer that introduced it."""
    try:
        RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_config(path: str | Path) -> RunConfig:
    """Load and validate one TOML file as a complete run config (defaults fill the rest)."""
    data = read_toml(path)
    validate_layer(data, str(path))
    return RunConfig.model_validate(data)


def resolve_config(
    preset: Mapping[str, Any] | None = None,
    preset_name: str = "",
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    default_architecture: str | None = None,
) -> RunConfig:
    """Layer defaults ← preset ← file ← overrides and validate each layer and the result.

    ``default_architecture`` names the architecture that layers leaving
    ``mno.architecture.name`` unset configure (the domain's).
    """
    layers: list[tuple[Mapping[str, Any], str]] = []
    if preset:
        layers.append((preset, f"preset {preset_name!r}"))
    if config_file is not None:
        layers.append((read_toml(config_file), str(config_file)))
    if overrides:
        layers.append((overrides, "command line"))
    # The implicit names, so that a layer naming another tokenizer or architecture replaces
    # the earlier layers' settings of the default one instead of merging with them.
    merged: dict[str, Any] = {"tokenizer": {"name": BUILTIN_TOKENIZER}}
    if default_architecture:
        merged["mno"] = {"architecture": {"name": default_architecture}}
    for data, source in layers:
        validate_layer(data, source)
        merged = deep_merge(merged, data)
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as exc:  # layers valid alone but not together
        raise ConfigError(_format_errors(exc, "merged config")) from None


def domain_config(
    domain: Any,
    preset: str | None = "quick",
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The run config for a domain: its preset, then the file, then the overrides.

    What only the domain can judge (θ ranges inside its box, its initial-condition families)
    is checked here too, so that it fails when the config is read, naming the layer that set
    it, not when generation starts (or never, when the dataset exists already).
    """
    preset_data = _preset(domain, preset)
    default_arch = dict(getattr(domain, "default_architecture", None) or {}).get("name")
    cfg = resolve_config(preset_data, f"{domain.name}:{preset}", config_file, overrides,
                         default_architecture=default_arch)
    try:
        check_generation_for(domain, cfg.generation)
    except SettingError as exc:
        raise ConfigError(f"{setting_source(exc.key, domain, preset, config_file, overrides)}: "
                          f"{exc}") from None
    return cfg


def _preset(domain: Any, preset: str | None) -> Mapping[str, Any]:
    if not preset:
        return {}
    if preset not in domain.presets:
        known = ", ".join(domain.presets) or "none"
        raise ConfigError(f"domain {domain.name!r} has no preset {preset!r}; known: {known}")
    return domain.presets[preset]


def check_generation_for(domain: Any, generation: GenerationConfig) -> None:
    """Raise :class:`SettingError` for a ``[generation]`` value the domain cannot honour (a
    parameter range outside its box, an initial-condition family it does not have, a grid it
    cannot make): generation's own plan of the run, made without simulating anything, for one
    sample (the checks do not depend on the count, and a huge count would cost memory)."""
    from noa_platform.data.generate import Plan
    from noa_platform.errors import NoaError

    try:
        Plan(domain, generation.model_copy(update={"n_samples": 1}))
    except NoaError as exc:
        found = re.match(r"generation\.[\w.]+", str(exc))
        raise SettingError(found.group(0) if found else "generation",
                           str(exc).removeprefix(found.group(0) if found else "")
                           .lstrip(": =")) from None


def setting_source(key: str, domain: Any, preset: str | None,
                   config_file: str | Path | None,
                   overrides: Mapping[str, Any] | None = None) -> str:
    """The layer of :func:`domain_config` that last set the dotted ``key`` (or a table
    above it): ``command line``, the config file, or the preset; for messages."""
    def sets(data: Mapping[str, Any] | None) -> bool:
        parts = key.split(".")
        for i in range(len(parts)):
            if not isinstance(data, Mapping) or parts[i] not in data:
                return False
            data = data[parts[i]]
        return True

    if sets(overrides):
        return "command line"
    if config_file is not None and sets(read_toml(config_file)):
        return str(config_file)
    if preset and sets(_preset(domain, preset)):
        return f"preset {f'{domain.name}:{preset}'!r}"
    return "defaults"
