"""A simulated human operator for HIL-SERL-style training in simulation (paper 003, section 3.4).

HIL-SERL's operator watches the policy and takes over with a SpaceMouse when it strays, for a
segment of up to N steps, then hands control back; early in training the interventions are long
and frequent, later short and rare. ``SimulatedOperator`` reproduces that with a scripted expert
(the task's hand-designed controller, paper 000's P-controller):

- **trigger**: the operator notices the policy straying when its action differs from the
  expert's by more than ``trigger_deviation`` (mean absolute difference per action dimension, in
  the normalised [-1, 1] action units) ...
- **reaction delay**: ... for ``reaction_steps`` consecutive steps (0.1 s each at 10 Hz);
- **takeover**: it then executes the expert's action plus Gaussian ``action_noise`` (std in
  normalised units, clipped to the action space) for ``takeover_steps`` steps, then hands back;
- **budget**: at most ``budget_start`` intervened steps per episode at the start of training,
  shrinking linearly to ``budget_end`` by ``budget_decay_steps`` env steps.

It is the runner's intervention hook: ``operator(obs, policy_action)`` returns the action to
execute instead, or None; ``reset(seed, env_step)`` starts an episode. Its per-episode state and
noise stream are JSON-able (``state_dict`` / ``load_state_dict``; the runner checkpoints them),
so a run interrupted mid-episode resumes exactly. The expert sees what the hand controller sees
(in InsertBench: the goal with ``goal_noise_mm`` of error), so it is a good but imperfect human.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from agents.base import BasePolicy, Observation
from agents.config import check
from agents.networks import ActionScaler


@dataclass
class OperatorConfig:
    """The simulated operator's fields, shared by the agents that learn from interventions.

    No reference values exist: HIL-SERL's operator is a person (paper 003, section 3.4: takes
    over "for up to N steps", intervenes long and often early, briefly and rarely later, fig. 4).
    The defaults are ours, chosen so the operator's budget is spent by mid-training (fig. 4:
    intervention rate falling to 0) and measured with ``benchmark.check_serl``.
    """

    operator: Literal["simulated", "none"] = "simulated"  # "none": interventions only from an
    # external hook (a SpaceMouse / keyboard through envs.intervention, or train(intervene=...))
    operator_trigger_deviation: float = 0.5  # mean |a_policy - a_expert| per dim that strays
    operator_reaction_steps: int = 3  # consecutive straying steps before taking over (0.3 s)
    operator_takeover_steps: int = 10  # steps per intervention segment (paper 003: "up to N")
    operator_action_noise: float = 0.1  # std of Gaussian noise on the expert action (unit scale)
    operator_budget_start: int = 30  # max intervened steps per episode at env step 0
    operator_budget_end: int = 0  # ... after operator_budget_decay_steps env steps
    operator_budget_decay_steps: int = 5_000  # env steps over which the budget shrinks linearly

    def validate(self) -> None:
        """Range checks; raises ValueError naming the field."""
        name = type(self).__name__
        # A mean absolute difference of actions in [-1, 1] is below 2: at 2 the operator never
        # took over (HIL-SERL became RLPD and HG-DAgger BC, without a word).
        check(0 <= self.operator_trigger_deviation < 2, name, "operator_trigger_deviation",
              "in [0, 2) (a mean absolute difference of actions in [-1, 1])",
              self.operator_trigger_deviation)
        check(self.operator_action_noise >= 0, name, "operator_action_noise", ">= 0",
              self.operator_action_noise)
        for f in ("operator_reaction_steps", "operator_budget_start", "operator_budget_end"):
            check(getattr(self, f) >= 0, name, f, ">= 0", getattr(self, f))
        for f in ("operator_takeover_steps", "operator_budget_decay_steps"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        # HIL-SERL's operators back off as the policy improves; a budget that grew was taken.
        check(self.operator_budget_end <= self.operator_budget_start, name,
              "operator_budget_end", f"<= operator_budget_start ({self.operator_budget_start})",
              self.operator_budget_end)


class SimulatedOperator:
    """A scripted expert that takes over when the policy strays; see the module docstring."""

    def __init__(self, expert: BasePolicy, action_space: gym.spaces.Box, config: OperatorConfig):
        self.expert = expert
        self.scaler = ActionScaler(action_space)
        self.config = config
        self.reset(seed=0)

    def budget(self, env_step: int) -> int:
        """Intervened steps allowed in an episode that starts at ``env_step``."""
        c = self.config
        frac = min(1.0, env_step / c.operator_budget_decay_steps)
        return round(c.operator_budget_start + frac * (c.operator_budget_end
                                                       - c.operator_budget_start))

    def reset(self, seed: int | None, env_step: int = 0) -> None:
        """Start an episode at training step ``env_step``: fresh budget, noise stream and state."""
        self.rng = np.random.default_rng(seed)
        self.episode_budget = self.budget(env_step)
        self.used = 0  # intervened steps this episode
        self.straying = 0  # consecutive steps the policy strayed
        self.control_left = 0  # steps left in the current takeover segment

    def __call__(self, obs: Observation, policy_action: np.ndarray) -> np.ndarray | None:
        """The action the operator executes instead of ``policy_action``, or None."""
        c = self.config
        if self.used >= self.episode_budget:
            return None
        expert = self.scaler.to_unit(self.expert(obs))
        if self.control_left == 0:
            deviation = float(np.mean(np.abs(self.scaler.to_unit(policy_action) - expert)))
            self.straying = self.straying + 1 if deviation > c.operator_trigger_deviation else 0
            if self.straying <= c.operator_reaction_steps:
                return None
            self.control_left, self.straying = c.operator_takeover_steps, 0
        self.control_left -= 1
        self.used += 1
        noisy = expert + c.operator_action_noise * self.rng.standard_normal(expert.shape)
        return self.scaler.to_env(np.clip(noisy, -1, 1))

    def state_dict(self) -> dict[str, Any]:
        """JSON-able per-episode state (for checkpoints taken mid-episode)."""
        return {"rng": self.rng.bit_generator.state, "episode_budget": self.episode_budget,
                "used": self.used, "straying": self.straying, "control_left": self.control_left}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``."""
        self.rng.bit_generator.state = state["rng"]
        self.episode_budget = int(state["episode_budget"])
        self.used, self.straying = int(state["used"]), int(state["straying"])
        self.control_left = int(state["control_left"])
