"""Build agents by name: ``make_agent("sac", obs_space, act_space, {"lr": 1e-3})``.

Each algorithm module registers its class with ``@register(name, ConfigClass)``. Configs are
typed dataclasses (see ``agents.config``); ``load_agent`` rebuilds an agent from a checkpoint
directory written by ``Agent.save`` without unpickling anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import Agent
from agents.checkpoint import (
    AGENT_JSON,
    POLICY_CONTENTS,
    WEIGHTS,
    read_meta,
    read_tensors,
    space_from_json,
    space_to_json,
)
from agents.config import build_config, check_config_device

#: The most parameters an agent's config may make it build: a billion (4 GB of float32 weights,
#: 12 GB with Adam's two moments), hundreds of times any built-in agent (at most ~2.4M, pixel
#: IQL/ODA). `-c hidden=100000000` used to grow until the kernel killed the process (and maybe
#: others) for memory.
MAX_PARAMETERS = 10**9
#: The most modules: built-in agents register at most 124 (pixel VICE).
MAX_MODULES = 100_000


#: Seeds are what Gymnasium's reset and NumPy's generators take: integers in [0, 2**63).
SEED_LIMIT = 2**63


def check_seed(seed: Any) -> int:
    """An agent's or a training run's ``seed`` as a Python int; ValueError unless it is an
    integer (numpy's too: run.json's writer refused np.int64) in [0, SEED_LIMIT)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) \
            or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


@dataclass(frozen=True)
class AgentSpec:
    """A registry entry.

    Attributes:
        name: registry name.
        cls: the agent class; constructed as ``cls(observation_space, action_space, config,
            seed=..., **kwargs)``.
        config_cls: its config dataclass.
        needs_base_policy: the agent needs ``base_policy=`` (a callable obs -> action), e.g.
            residual RL and the P-controller baseline; the runner supplies the task's controller.
        needs_demos: the method learns from demonstrations given to ``pretrain`` (``td3_lfd``,
            ``bc``); without them it degenerates (to TD3, to an untrained policy), so the runner
            collects some when none are given.
        needs_context: the method is given demonstrations of the target task at ``adapt``
            before online finetuning, as paper 004 does (``oda`` infers the task from them,
            ``awac`` adds them to its buffer); the runner records some and passes them.
        needs_labels: the method trains on calibrated offline data (``socket_offset_m``, from
            ``insertbench dataset recipe paper001``: ``localize``, ``state_iql``), which the
            runner cannot record: it refuses to train without it.
    """

    name: str
    cls: type
    config_cls: type
    needs_base_policy: bool = False
    needs_demos: bool = False
    needs_context: bool = False
    needs_labels: bool = False


_REGISTRY: dict[str, AgentSpec] = {}


def register(
    name: str,
    config_cls: type,
    *,
    needs_base_policy: bool = False,
    needs_demos: bool = False,
    needs_context: bool = False,
    needs_labels: bool = False,
) -> Callable[[type], type]:
    """Class decorator adding an agent class to the registry under ``name``."""

    def decorator(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"agent {name!r} is already registered")
        _REGISTRY[name] = AgentSpec(name, cls, config_cls, needs_base_policy, needs_demos,
                                    needs_context, needs_labels)
        cls.name = name
        return cls

    return decorator


def agent_names() -> list[str]:
    """Names of all registered agents, sorted."""
    return sorted(_REGISTRY)


def agent_spec(name: str) -> AgentSpec:
    """The registry entry for ``name``; ValueError listing the known names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown agent {name!r}; registered agents: {agent_names()}")
    return _REGISTRY[name]


def make_agent(
    name: str,
    observation_space: gym.spaces.Space,
    action_space: gym.spaces.Space,
    config: Any = None,
    *,
    seed: int = 0,
    **kwargs: Any,
) -> Agent:
    """Build agent ``name`` for the given spaces.

    Args:
        name: registry name (see ``agent_names()``).
        observation_space: the env's observation space (a ``gymnasium.spaces.Dict``).
        action_space: the env's action space (a bounded ``Box``).
        config: the agent's config dataclass, a dict of overrides (values may be CLI strings),
            or None for the defaults.
        seed: seeds the agent's own random streams (numpy; the runner seeds torch).
        **kwargs: agent-specific runtime objects, e.g. ``base_policy=`` for residual agents.
    """
    spec = agent_spec(name)
    check_seed(seed)  # numpy and torch refused others with their own errors, or overflowed
    if not isinstance(observation_space, gym.spaces.Dict):
        raise ValueError(
            f"observation_space must be a gymnasium.spaces.Dict, got {observation_space}"
        )
    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f"action_space must be a 1-D gymnasium.spaces.Box, got {action_space}")
    if spec.needs_base_policy and kwargs.get("base_policy") is None:
        raise ValueError(
            f"agent {name!r} needs base_policy= (a callable obs -> action), e.g. "
            "envs.p_controller(env)"
        )
    cfg = build_config(spec.config_cls, config)
    check_config_device(cfg)
    with size_budget(MAX_PARAMETERS, MAX_MODULES, f"agent {name!r}"):
        return spec.cls(observation_space, action_space, cfg, seed=int(seed), **kwargs)


def check_action_scale(agent: Any, env: gym.Env) -> None:
    """ValueError where ``agent`` turns metres into actions with an ``action_scale_m`` of its
    config [m per unit action] and ``env`` moves another distance per unit action: localize at
    0.005 on an env at 0.02 overshot each correction 4x and ended 8 mm off the socket, with no
    word (agents22)."""
    ours = getattr(getattr(agent, "config", None), "action_scale_m", None)
    base = env.unwrapped  # a connector family's or NIST board's acting member: its scale (diff29)
    theirs = getattr(base, "action_scale_m", getattr(getattr(base, "active", None),
                                                     "action_scale_m", None))
    if ours is None or theirs is None or np.isclose(ours, theirs, rtol=1e-9, atol=0.0):
        return
    raise ValueError(f"{agent.name} converts metres to actions at action_scale_m={ours:g} m (its "
                     f"config), but the env moves {theirs:g} m per unit action: run the env at "
                     f"action_scale_m={ours:g}, or train with -c action_scale_m={theirs:g}")


@contextmanager
def size_budget(max_parameters: int, max_modules: int, what: str,
                error: type[Exception] = ValueError) -> Iterator[None]:
    """Raise ``error`` as soon as the modules built inside register more than
    `max_parameters` parameters or `max_modules` submodules in all. A parameter registers after
    its tensor is allocated (untouched, so virtual) and before it is initialised, so an
    oversized agent is refused before its memory is written."""
    from torch.nn.modules import module as torch_module

    parameters = modules = 0

    def refuse(what_grew: str, limit: int, module: Any, name: str) -> None:
        raise error(f"{what}: its config builds more than {limit:,} {what_grew} "
                    f"(at {type(module).__name__}.{name}); refused")

    def count_parameter(module: Any, name: str, param: Any) -> None:
        nonlocal parameters
        parameters += 0 if param is None else param.numel()
        if parameters > max_parameters:
            refuse("parameters", max_parameters, module, name)

    def count_module(module: Any, name: str, submodule: Any) -> None:
        nonlocal modules
        modules += 1
        if modules > max_modules:
            refuse("modules", max_modules, module, name)

    handles = [torch_module.register_module_parameter_registration_hook(count_parameter),
               torch_module.register_module_module_registration_hook(count_module)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_checkpoint_dir(run_dir: Path) -> Path | None:
    """The latest complete runner checkpoint of a ``benchmark.train`` run directory, the one
    `train` resumes from: ``checkpoint``, or ``checkpoint.old`` (a crash between the renames
    leaves it), whichever first holds its runner.json."""
    for name in ("checkpoint", "checkpoint.old"):
        if (run_dir / name / "runner.json").is_file():
            return run_dir / name
    return None


def resolve_agent_dir(path: str | Path) -> Path:
    """The agent checkpoint directory for an agent dir, a runner checkpoint or a run directory.

    Accepts ``<dir>/agent.json``, ``<dir>/agent/agent.json`` (a runner checkpoint) and
    ``<dir>/checkpoint/agent/agent.json`` (a ``benchmark.train`` run directory), or
    ``<dir>/checkpoint.old/agent`` (a train-async run killed between its renames). Of a run's
    ``checkpoint`` and ``checkpoint.old`` (left by a crash between the checkpoint's renames)
    it takes the one `train` resumes from: the first with its runner.json.
    """
    path = Path(path)
    run = run_checkpoint_dir(path)
    # checkpoint.old last: a train-async run killed between its checkpoint's renames.
    for candidate in (path, path / "agent", *([run / "agent"] if run else []),
                      path / "checkpoint" / "agent", path / "checkpoint.old" / "agent"):
        if (candidate / AGENT_JSON).is_file():
            return candidate
    raise FileNotFoundError(
        f"no agent checkpoint under {path}: expected {AGENT_JSON} in it, in agent/ or in "
        "checkpoint/agent/"
    )


def config_on_device(config: Any, device: str | None) -> dict[str, Any]:
    """A copy of a saved config (``agent.json``'s) with its torch device replaced by
    ``device`` (None: as saved); a config without one (scripted agents) as it is."""
    config = dict(config)
    if device is not None and "device" in config:
        config["device"] = device
    return config


def load_agent(path: str | Path, *, allow_policy_only: bool = False, device: str | None = None,
               acting_only: bool = False, **kwargs: Any) -> Agent:
    """Rebuild an agent saved with ``agent.save(path)``; ``kwargs`` as in ``make_agent``.

    ``path`` may also be a runner checkpoint or run directory (see ``resolve_agent_dir``).
    A policy-only checkpoint (``export_policy``) loads only with ``allow_policy_only=True``:
    for evaluation, since its critics and optimizers are fresh, not trained.
    ``device`` replaces the saved config's torch device: evaluation passes "cpu", so that an
    agent trained on a GPU is evaluated (and verified for a leaderboard) on any machine.
    ``acting_only`` restores only what acting needs, as from a policy-only checkpoint, whatever
    the checkpoint holds (a leaderboard's submissions): the rest is a trainer's.
    """
    path = resolve_agent_dir(path)
    meta_file = path / AGENT_JSON
    meta = read_meta(path)
    if meta.get("contents") == POLICY_CONTENTS and not allow_policy_only:
        raise ValueError(f"{meta_file} holds only the policy (no critics, optimizer state or "
                         "replay): it can be evaluated, not trained further")
    try:  # each was a bare KeyError or TypeError naming no file
        # JSON lists become tuples again through the type hints
        config = config_on_device(meta["config"], device)
        spaces = (space_from_json(meta["observation_space"]),
                  space_from_json(meta["action_space"]))
        seed = check_seed(meta.get("seed", 0))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{meta_file} does not describe an agent (a damaged or edited "
                         f"checkpoint?): {type(err).__name__}: {err}") from None
    agent = make_agent(meta["agent"], *spaces, config, seed=seed, **kwargs)
    agent.load_state(path, meta | ({"contents": POLICY_CONTENTS} if acting_only else {}))
    return agent



def policy_tensors(agent: str, tensors: dict[str, Any]) -> dict[str, Any]:
    """The tensors a policy-only checkpoint of ``agent`` keeps (`export_policy`): its class's
    ``policy_modules`` (all modules when it names none), no optimizer state. ValueError for an
    unknown agent."""
    keep = agent_spec(agent).cls.policy_modules
    return {k: v for k, v in tensors.items()
            if not k.startswith("optim.") and (not keep or k.split(".", 1)[0] in keep)}


def export_policy(source: str | Path, out: str | Path) -> Path:
    """Write a policy-only copy of the checkpoint at ``source`` into directory ``out``.

    Keeps the tensors of the agent class's ``policy_modules`` (all modules when it names none),
    drops optimizer state, replay and the other networks, and stores the spaces compactly. The
    copy acts exactly like the original (deterministic actions are the same networks) and loads
    with ``load_agent(out, allow_policy_only=True)``. Returns ``out``.
    """
    from safetensors.torch import save_file

    source = resolve_agent_dir(source)
    if Path(out).resolve() == source.resolve():  # it overwrote the critics and optimizer state
        raise ValueError(f"export_policy would write over its source {source}; give another out")
    out = Path(out)
    # Only into a new or empty folder, or over an earlier export: into another run's checkpoint
    # it replaced that run's agent with this policy (its replay left beside it), and `eval`
    # scored it under the other run's name.
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not (set(held) <= {WEIGHTS, AGENT_JSON} and (out / AGENT_JSON).is_file()
                     and read_meta(out).get("contents") == POLICY_CONTENTS):
        raise ValueError(f"{out} holds other files ({', '.join(held[:3])}"
                         f"{', ...' if len(held) > 3 else ''}), not an exported policy; give a "
                         "new or empty folder")
    meta = read_meta(source)
    # Damage named with its file, as a ValueError: a cut-off weights file ended `submit
    # --from-matrix` in a bare SafetensorError, its other cells never entered (agents23)
    kept = policy_tensors(meta["agent"], read_tensors(source / WEIGHTS, "checkpoint"))
    try:
        spaces = {key: space_to_json(space_from_json(meta[key]))
                  for key in ("observation_space", "action_space")}
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise ValueError(f"{source / AGENT_JSON}: its spaces do not load (a damaged or edited "
                         f"checkpoint?): {err}") from None
    meta |= {"contents": POLICY_CONTENTS, "optimizer_param_groups": {}, **spaces}
    out.mkdir(parents=True, exist_ok=True)
    save_file(kept, str(out / WEIGHTS))
    (out / AGENT_JSON).write_text(json.dumps(meta, indent=1))
    return out
