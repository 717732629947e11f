"""Agent checkpoints without pickle: JSON for config, safetensors for tensors, .npz buffers.

A checkpoint is a directory::

    agent.json            format, agent name, config, seed, spaces, rng state, optimizer hyper-
                          parameters, agent-specific metadata (counters)
    weights.safetensors   every network and optimizer tensor, flat names "<module>.<param>" and
                          "optim.<optimizer>.<param index>.<slot>"
    replay_<name>.npz     replay buffers, only with ``save(path, include_replay=True)``

A *policy-only* checkpoint (``"contents": "policy"`` in agent.json, written by
``agents.registry.export_policy``) holds only the networks the agent acts with (its class's
``policy_modules``): no critics, targets, optimizer state or replay. It can be evaluated
(``load_agent(path, allow_policy_only=True)``), not trained further.

Spaces are stored as JSON; a ``Box`` whose bounds are one value everywhere (e.g. an image's
0..255) stores that value once (``"low": 0``) instead of one number per element.

``np.load(allow_pickle=False)`` and ``safetensors`` never execute code from the file.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from agents.config import config_to_dict

CHECKPOINT_FORMAT = "insertbench-agent/1"
AGENT_JSON = "agent.json"
WEIGHTS = "weights.safetensors"
#: agent.json's "contents" for a checkpoint holding only the acting networks (absent: everything).
POLICY_CONTENTS = "policy"


def read_json(path: Path, what: str) -> Any:
    """The JSON in ``path``; ValueError naming the file (a damaged ``what``) if it does not
    parse: a cut-off copy ended in a bare "JSONDecodeError: Expecting ..."."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{path} is not valid JSON (a damaged {what}?): {err}") from None


def read_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``; ValueError naming the file (a damaged
    ``what``) if it is missing or not a safetensors file."""
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is not readable (a damaged {what}?): {err}") from None


def load_module_state(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``module``; ValueError naming ``where`` (the weights file) unless it
    holds exactly the module's tensors, each of its shape and dtype, floats all finite: torch
    converted int64 weights without a word, and NaN weights turned a reward classifier's every
    answer into "no success"."""
    expected = module.state_dict()
    missing, unknown = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unknown:
        raise ValueError(f"{where} does not fit this network: missing tensors {missing[:5]}, "
                         f"unknown tensors {unknown[:5]} (a damaged or edited file?)")
    for key, tensor in state.items():
        want = expected[key]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            raise ValueError(f"{where}: tensor {key!r} is {tensor.dtype} {tuple(tensor.shape)}, "
                             f"this network's is {want.dtype} {tuple(want.shape)}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{where}: tensor {key!r} holds NaN or inf (a damaged file?)")
    module.load_state_dict(state, strict=True)


#: The optimizer settings that change its arithmetic: a checkpoint's must be what the agent's
#: config builds.
OPTIMIZER_SETTINGS = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[int, dict[str, Any]],
                         groups: Any, settings_file: str, tensors_file: str) -> None:
    """Load a checkpoint's optimizer ``state`` (parameter index -> slot -> tensor) and check its
    stored param ``groups`` against ``optimizer``'s own; ValueError naming the file at fault
    (``settings_file`` for the groups, ``tensors_file`` for the state) unless the
    settings match and every slot is finite, of its parameter's shape (``step`` a count), and
    second moments are not negative. Unchecked, a NaN moment turned the weights NaN at the first
    update, and an edited ``lr`` of 1e6 or ``maximize`` trained on without a word."""
    own = optimizer.state_dict()["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(own) or not all(
            isinstance(g, dict) for g in groups):
        raise ValueError(f"{settings_file}: its optimizer settings do not fit this agent's "
                         "optimizer (a damaged or edited checkpoint?)")
    for stored, current in zip(groups, own, strict=True):
        differ = [f"{k} {stored[k]!r} (config: {current[k]!r})" for k in OPTIMIZER_SETTINGS
                  if k in stored and k in current
                  and json.loads(json.dumps(stored[k])) != json.loads(json.dumps(current[k]))]
        if differ:
            raise ValueError(f"{settings_file}: its optimizer settings differ from the config's: "
                             f"{', '.join(differ)} (a damaged or edited checkpoint?)")
        # The rest are switches of the implementation (fused, foreach, ...), kept as saved: a
        # checkpoint of unfused Adam resumes unfused, exactly.
        odd = [k for k, v in stored.items() if k not in OPTIMIZER_SETTINGS
               and (v != current["params"] if k == "params" else v not in (True, False, None))]
        if odd:
            raise ValueError(f"{settings_file}: its optimizer settings {odd} are not this "
                             "agent's optimizer's (a damaged or edited checkpoint?)")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, slots in state.items():
        if not 0 <= index < len(params):
            raise ValueError(f"{tensors_file}: optimizer state for parameter {index}, of "
                             f"{len(params)} (a damaged or edited checkpoint?)")
        for slot, tensor in slots.items():
            shape = () if slot == "step" else tuple(params[index].shape)
            bad = (tuple(tensor.shape) not in {shape, (1,) * len(shape)} if slot == "step"
                   else tuple(tensor.shape) != shape)
            if bad or not tensor.is_floating_point():
                raise ValueError(f"{tensors_file}: optimizer slot {index}.{slot} is {tensor.dtype} "
                                 f"{tuple(tensor.shape)}, its parameter's is {shape}")
            if not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"{tensors_file}: optimizer slot {index}.{slot} holds NaN or inf "
                                 "(a damaged checkpoint?)")
            if (slot == "step" or slot.endswith("_sq")) and bool((tensor < 0).any()):
                raise ValueError(f"{tensors_file}: optimizer slot {index}.{slot} is negative (a "
                                 "damaged or edited checkpoint?)")
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_tensors_then_json(path: Path, tensors_name: str, tensors: dict[str, torch.Tensor],
                           json_name: str, meta: Any) -> None:
    """Write ``tensors`` (safetensors) and then ``meta`` (JSON) into folder ``path``, each file
    whole or not at all (a temporary file renamed into place), the JSON last, and its text
    made first: a value JSON cannot hold failed after the weights were written, and a kill
    mid-write left a cut-off file (agent checkpoints, reward classifiers)."""
    text = json.dumps(meta, indent=1)
    save_file(tensors, str(path / f"{tensors_name}.tmp"))
    os.replace(path / f"{tensors_name}.tmp", path / tensors_name)
    (path / f"{json_name}.tmp").write_text(text)
    os.replace(path / f"{json_name}.tmp", path / json_name)


def read_meta(agent_dir: str | Path) -> dict[str, Any]:
    """The agent.json of the checkpoint in ``agent_dir``; ValueError naming the file if it is
    not a JSON object of this checkpoint format (another object ended in a bare KeyError in
    `insertbench eval` and `sim2sim`, which read it before `load_agent` checked it)."""
    path = Path(agent_dir) / AGENT_JSON
    meta = read_json(path, "checkpoint")
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not an agent checkpoint (a JSON object)")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} has format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}"
        )
    # Read before load_agent by eval and sim2sim: a missing name was a bare KeyError there.
    for key, kind in (("agent", str), ("config", dict), ("observation_space", dict),
                      ("action_space", dict)):
        if not isinstance(meta.get(key), kind):
            what = "a JSON string" if kind is str else "a JSON object"
            raise ValueError(f"{path}: {key} must be {what}, got {meta.get(key)!r} (a damaged "
                             "or edited checkpoint?)")
    return meta


def read_weights(agent_dir: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of the checkpoint in ``agent_dir`` (`read_tensors`)."""
    return read_tensors(Path(agent_dir) / WEIGHTS, "checkpoint")


def _bound_to_json(bound: np.ndarray) -> float | list[Any]:
    """One number when every element of a Box bound is the same, else the nested list."""
    flat = bound.ravel()
    if flat.size > 0 and np.all(flat == flat[0]):
        return flat[0].item()
    return bound.tolist()


def _bound_from_json(value: Any, shape: list[int], dtype: np.dtype) -> np.ndarray:
    """Inverse of ``_bound_to_json``; also reads the element-by-element lists of older files."""
    if isinstance(value, list):
        return np.asarray(value, dtype=dtype).reshape(shape)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a Box bound must be a number or a list of numbers, not {value!r}")
    return np.full(shape, value, dtype=dtype)


def space_to_json(space: gym.spaces.Space) -> dict[str, Any]:
    """JSON description of a ``Dict`` / ``Box`` space (the only kinds InsertBench uses).

    A Box bound that is the same everywhere is stored as that one number.
    """
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(s) for k, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).name,
            "low": _bound_to_json(space.low),
            "high": _bound_to_json(space.high),
        }
    raise ValueError(f"cannot store space {space}: only Dict and Box spaces are supported")


#: The most elements a stored Box may have: a 512x512 RGB image is 786,432; a hand-edited shape
#: of 10^14 was allocated (filled with its bound) before anything else was read.
MAX_SPACE_ELEMENTS = 10**8


def space_from_json(data: dict[str, Any]) -> gym.spaces.Space:
    """Inverse of ``space_to_json`` (also reads bounds spelled out element by element)."""
    if data["type"] == "Dict":
        return gym.spaces.Dict({k: space_from_json(v) for k, v in data["spaces"].items()})
    if data["type"] == "Box":
        dtype = np.dtype(data["dtype"])
        shape = [int(n) for n in data["shape"]]
        if any(n < 0 for n in shape) or math.prod(shape) > MAX_SPACE_ELEMENTS:
            raise ValueError(f"a Box shape must have at most {MAX_SPACE_ELEMENTS:,} elements, "
                             f"none negative; got {shape}")
        return gym.spaces.Box(
            low=_bound_from_json(data["low"], shape, dtype),
            high=_bound_from_json(data["high"], shape, dtype),
            dtype=dtype,
        )
    raise ValueError(f"unknown space type {data['type']!r} in checkpoint")


def _without_lists(state: Any) -> Any:
    """``state`` with every list left out of its dicts, at any depth."""
    if not isinstance(state, dict):
        return state
    return {k: _without_lists(v) for k, v in state.items() if not isinstance(v, list)}


class CheckpointMixin:
    """``save`` / ``load_state`` for agents; subclasses list what to store.

    The agent must have ``name``, ``config``, ``seed``, ``rng`` (numpy Generator),
    ``observation_space`` and ``action_space`` and may override the four hooks below.
    """

    name: str
    config: Any
    seed: int
    rng: np.random.Generator
    observation_space: gym.spaces.Space
    action_space: gym.spaces.Space
    #: Keys of ``_checkpoint_modules`` that acting needs (what a policy-only checkpoint keeps);
    #: empty means all of them.
    policy_modules: tuple[str, ...] = ()

    def _checkpoint_modules(self) -> dict[str, torch.nn.Module]:
        """Networks whose parameters and buffers are saved."""
        return {}

    def _acting_modules(self) -> dict[str, torch.nn.Module]:
        """The networks acting reads: `policy_modules` of `_checkpoint_modules` (all of them
        where it names none)."""
        return {k: m for k, m in self._checkpoint_modules().items()
                if not self.policy_modules or k in self.policy_modules}

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers whose state (Adam moments, step counts) is saved, for exact resumption."""
        return {}

    def _checkpoint_buffers(self) -> dict[str, Any]:
        """Replay buffers saved with ``include_replay=True``."""
        return {}

    def _extra_state(self) -> dict[str, Any]:
        """JSON-able counters and flags (e.g. number of env steps observed)."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``_extra_state`` returned."""

    def save(self, path: str | Path, *, include_replay: bool = False) -> None:
        """Write this agent to directory ``path`` (created if needed)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        for mod_name, module in self._checkpoint_modules().items():
            for key, value in module.state_dict().items():
                tensors[f"{mod_name}.{key}"] = value.detach().cpu()
        # Modules may share submodules (SAC's one encoder); safetensors stores a tensor once per
        # key, so every entry gets storage of its own.
        tensors = {k: v.clone(memory_format=torch.contiguous_format) for k, v in tensors.items()}
        optim_groups: dict[str, Any] = {}
        for opt_name, opt in self._checkpoint_optimizers().items():
            state = opt.state_dict()
            optim_groups[opt_name] = state["param_groups"]
            for index, slots in state["state"].items():
                for slot, value in slots.items():
                    tensors[f"optim.{opt_name}.{index}.{slot}"] = torch.as_tensor(value).clone()
        meta = {
            "format": CHECKPOINT_FORMAT,
            "agent": self.name,
            "config": config_to_dict(self.config),
            "seed": self.seed,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "rng_state": self.rng.bit_generator.state,
            "optimizer_param_groups": optim_groups,
            "extra": self._extra_state(),
            # Saved without them, the rows its buffers held: a demo buffer lost is refused.
            "buffer_rows": {name: len(buffer)
                            for name, buffer in self._checkpoint_buffers().items()},
        }
        save_tensors_then_json(path, WEIGHTS, tensors, AGENT_JSON, meta)
        written = set()
        if include_replay:
            for buf_name, buffer in self._checkpoint_buffers().items():
                buffer.save(path / f"replay_{buf_name}.npz")
                written.add(f"replay_{buf_name}.npz")
        for stale in path.glob("replay_*.npz"):  # an earlier save's: load_state reads any
            if stale.name not in written:
                stale.unlink()

    def load_state(self, path: str | Path, meta: dict[str, Any]) -> None:
        """Restore weights, optimizer state, rng, counters and (if saved) replay buffers.

        A policy-only checkpoint restores the acting networks only; the rest keeps its fresh
        initialisation (``agents.registry.load_agent`` refuses to hand it out for training).
        """
        path = Path(path)
        policy_only = meta.get("contents") == POLICY_CONTENTS
        # Each was a bare KeyError or TypeError, or (no optimizer groups, no "extra") a resume
        # with fresh Adam moments or zeroed counters without a word.
        missing = [k for k in ("rng_state", "extra", "optimizer_param_groups") if k not in meta]
        if not policy_only:
            missing += [f"optimizer_param_groups[{name!r}]" for name in
                        self._checkpoint_optimizers()
                        if name not in meta.get("optimizer_param_groups", {})]
        if missing:
            raise ValueError(f"{path / AGENT_JSON} lacks {', '.join(missing)} (a damaged or "
                             "edited checkpoint?)")
        tensors = read_weights(path)
        modules = self._checkpoint_modules()
        optimizers = self._checkpoint_optimizers()
        stray = sorted(k for k in tensors
                       if (k.split(".", 2)[1] not in optimizers if k.startswith("optim.")
                           else k.split(".", 1)[0] not in modules))
        if stray:
            raise ValueError(f"{path / WEIGHTS} holds tensors of no network of this agent: "
                             f"{stray[:5]} (a damaged or edited checkpoint?)")
        if policy_only:
            modules = self._acting_modules()
        for mod_name, module in modules.items():
            prefix = f"{mod_name}."
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            load_module_state(module, state, f"{path / WEIGHTS} ({mod_name})")
        # Running statistics (an observation normaliser's count and sums of squares): a negative
        # count acted on raw observations without a word, a negative sum in NaN (agents23)
        negative = [f"{mod_name}.{name}" for mod_name, module in modules.items()
                    for name, buffer in module.named_buffers()
                    if (name == "count" or name.endswith("_m2")) and bool((buffer < 0).any())]
        if negative:
            raise ValueError(f"{path / WEIGHTS}: running statistics {negative[:3]} are negative "
                             "(a damaged or edited checkpoint?)")
        for opt_name, opt in self._checkpoint_optimizers().items():
            prefix = f"optim.{opt_name}."
            opt_state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in tensors.items():
                if key.startswith(prefix):
                    index, slot = key[len(prefix) :].split(".", 1)
                    opt_state.setdefault(int(index), {})[slot] = value
            if len({frozenset(slots) for slots in opt_state.values()}) > 1:  # a tensor lost
                raise ValueError(f"{path / WEIGHTS} holds the {opt_name} optimizer's state for "
                                 "some parameters only partly (a damaged checkpoint?)")
            if opt_name in meta["optimizer_param_groups"]:
                load_optimizer_state(opt, opt_state, meta["optimizer_param_groups"][opt_name],
                                     f"{path / AGENT_JSON} ({opt_name})",
                                     f"{path / WEIGHTS} ({opt_name})")
        try:
            self.rng.bit_generator.state = meta["rng_state"]
        except (TypeError, ValueError, KeyError, OverflowError) as err:
            raise ValueError(f"{path / AGENT_JSON}: rng_state is not a numpy generator state "
                             f"(a damaged or edited checkpoint?): {err}") from None
        # Its lists, nested ones too (state IQL keeps IQL's under "iql"), are a trainer's
        # bookkeeping (the task ids of replay buffers, the rows of trials), and a policy-only
        # checkpoint is never trained: 8 MB of IQL offline_tasks made a million empty replay
        # buffers (3 GB) before a leaderboard evaluation.
        extra = _without_lists(meta["extra"]) if policy_only else meta["extra"]
        try:
            self._load_extra_state(extra)
        except (TypeError, ValueError, KeyError, OverflowError, AttributeError) as err:
            raise ValueError(f"{path / AGENT_JSON}: its extra state does not load (a damaged or "
                             f"edited checkpoint?): {err}") from None
        # Every counter an agent keeps (RLPD's actor_steps, AWAC's offline_rows, ...; agents21)
        negative = [k for k in ("env_steps", "gradient_steps", "actor_steps", "offline_rows",
                                "online_trials", "online_trials_classifier_success")
                    if isinstance(getattr(self, k, 0), int) and getattr(self, k, 0) < 0]
        if negative:
            raise ValueError(f"{path / AGENT_JSON}: negative counters {negative} (a damaged or "
                             "edited checkpoint?)")
        if policy_only:  # acting reads no replay: a pixel run's buffers took GBs to evaluate
            self.buffers_not_restored = {}  # (agents23)
            return
        rows = meta.get("buffer_rows", {})
        self.buffers_not_restored = {
            name: int(rows[name]) for name in self._checkpoint_buffers()
            if isinstance(rows, dict) and isinstance(rows.get(name), int) and rows[name] > 0
            and not (path / f"replay_{name}.npz").is_file()}
        for buf_name, buffer in self._checkpoint_buffers().items():
            file = path / f"replay_{buf_name}.npz"
            if file.is_file():
                try:  # a cut-off copy was "BadZipFile: File is not a zip file", no file named
                    buffer.load(file)
                except (OSError, EOFError, KeyError, zipfile.BadZipFile) as err:
                    raise ValueError(f"{file} is not readable (a damaged checkpoint?): "
                                     f"{err}") from None

    def check_demos_restored(self, buffer: str = "demo") -> None:
        """ValueError if this agent was restored without the rows its ``buffer`` of
        demonstrations held at the save (saved without ``include_replay=True``): trained on, it
        would learn as another method (RLPD without its demos is SAC)."""
        rows = getattr(self, "buffers_not_restored", {}).get(buffer)
        if rows and len(self._checkpoint_buffers()[buffer]) < rows:  # not given them again
            raise ValueError(f"this {self.name} agent was saved with {rows} rows in its {buffer} "
                             "buffer but without them (save without include_replay=True): "
                             "training on would leave them out; train on from a checkpoint "
                             "saved with its replay (the runner's), or give it the demos "
                             "again (pretrain)")

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Any:
        """Load a checkpoint of this agent class (see ``agents.load_agent``)."""
        from agents.registry import load_agent

        agent = load_agent(path, **kwargs)
        if not isinstance(agent, cls):
            raise ValueError(f"{path} holds a {type(agent).__name__}, not a {cls.__name__}")
        return agent
