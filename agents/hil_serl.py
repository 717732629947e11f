"""HIL-SERL: RLPD with human interventions (paper 003, Luo et al. 2024, section 3.4).

The learner is RLPD (``agents/rlpd.py``) unchanged, with RLPD's defaults, so that a comparison
with ``rlpd`` isolates the effect of the interventions. What differs is where data goes:

- an **intervened** transition (the operator's action was executed: ``Transition.intervened``)
  is added to *both* the demo buffer and the online buffer;
- a **policy** transition only to the online buffer.

Interventions come from the runner's hook: a real device (``envs.intervention``) or, for
simulation experiments, the ``agents.operator.SimulatedOperator`` this agent builds from the
task's hand controller (``operator="simulated"``, the default). The runner asks
``agent.operator`` for an override every training step (resetting it at every training episode
start), executes it, and logs the intervention
segments and steps per episode; evaluation never consults the operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from agents.base import BasePolicy, Transition
from agents.operator import OperatorConfig, SimulatedOperator
from agents.registry import register
from agents.rlpd import RLPDAgent, RLPDConfig


@dataclass
class HILSERLConfig(RLPDConfig, OperatorConfig):
    """RLPD's hyperparameters plus the simulated operator's (``agents.operator``)."""

    def validate(self) -> None:
        """RLPD and operator checks."""
        RLPDConfig.validate(self)
        OperatorConfig.validate(self)


@register("hil_serl", HILSERLConfig, needs_base_policy=True, needs_demos=True)
class HILSERLAgent(RLPDAgent):
    """RLPD whose intervened transitions also become demonstrations."""

    name = "hil_serl"
    demos_from_interventions = True  # a human's corrections join its demo buffer
    config: HILSERLConfig

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: HILSERLConfig,
        *,
        seed: int = 0,
        base_policy: BasePolicy,
    ):
        super().__init__(observation_space, action_space, config, seed=seed)
        self.operator = (SimulatedOperator(base_policy, action_space, config)
                         if config.operator == "simulated" else None)
        self.interventions = 0  # intervened transitions observed

    def observe(self, transition: Transition) -> None:
        """Online buffer always; intervened transitions into the demo buffer as well."""
        unit_action = self.scaler.to_unit(transition.action)
        self.store(transition, unit_action)
        if transition.intervened and not transition.blown_up:  # a step stored nowhere
            self.add_demo(transition, unit_action)
            self.interventions += 1

    def _extra_state(self) -> dict[str, Any]:
        return super()._extra_state() | {"interventions": self.interventions}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.interventions = int(state.get("interventions", 0))
