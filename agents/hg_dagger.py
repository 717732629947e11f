"""HG-DAgger: behaviour cloning, then cloning the human's corrections (paper 003's baseline).

Paper: M. Kelly, C. Sidrane, K. Driggs-Campbell, M. J. Kochenderfer, "HG-DAgger: Interactive
Imitation Learning with Human Experts", ICRA 2019. HIL-SERL (paper 003, section V) compares
against it with the same number of episodes and interventions as its RL runs.

``pretrain(dataset)`` is BC on the demonstrations (``agents/bc.py``). Online, the policy acts; the
operator (a device, or the ``agents.operator.SimulatedOperator`` built from the task's hand
controller) takes over when it strays; only the intervention segments (``intervened``
transitions) join the training set, and the policy keeps regressing onto demos + corrections
(``online_updates_per_step`` steps per env step). Policy transitions are never trained on: there
is no reward in HG-DAgger.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from agents.base import BasePolicy
from agents.bc import BCAgent, BCConfig
from agents.config import check
from agents.operator import OperatorConfig, SimulatedOperator
from agents.registry import register


@dataclass
class HGDAggerConfig(BCConfig, OperatorConfig):
    """BC's hyperparameters (with online training on) plus the simulated operator's."""

    online_updates_per_step: int = 1  # regression steps per env step on demos + corrections
    # (ours: paper 003 gives no HG-DAgger hyperparameters; the BC fields are agents/bc.py's)

    def validate(self) -> None:
        """BC and operator checks; at least one update per env step (with none it never
        trains on the corrections: it is BC with an operator's episodes thrown away)."""
        BCConfig.validate(self)
        OperatorConfig.validate(self)
        check(self.online_updates_per_step >= 1, type(self).__name__, "online_updates_per_step",
              ">= 1 (0 never trains on the corrections: that is the bc agent)",
              self.online_updates_per_step)


@register("hg_dagger", HGDAggerConfig, needs_base_policy=True, needs_demos=True)
class HGDAggerAgent(BCAgent):
    """BC + online cloning of intervention segments."""

    name = "hg_dagger"
    config: HGDAggerConfig

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: HGDAggerConfig,
        *,
        seed: int = 0,
        base_policy: BasePolicy,
    ):
        super().__init__(observation_space, action_space, config, seed=seed)
        self.operator = (SimulatedOperator(base_policy, action_space, config)
                         if config.operator == "simulated" else None)
