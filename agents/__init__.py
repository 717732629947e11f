"""InsertBench agents: every method behind one interface (see ``agents.base``).

``make_agent(name, observation_space, action_space, config)`` builds one by name,
``load_agent(path)`` restores a checkpoint, ``agent_names()`` lists what is registered.
"""

from agents import (  # noqa: F401  (registers agents)
    awac,
    bc,
    hg_dagger,
    hil_serl,
    iql,
    localize,
    oda,
    residual,
    rlpd,
    sac,
    scripted,
    state_iql,
    td3,
    td3_lfd,
    vice,
)
from agents.base import Agent, BasePolicy, Dataset, Transition, transitions_to_dataset
from agents.registry import agent_names, agent_spec, export_policy, load_agent, make_agent

__all__ = [
    "Agent",
    "BasePolicy",
    "Dataset",
    "Transition",
    "agent_names",
    "agent_spec",
    "export_policy",
    "load_agent",
    "make_agent",
    "transitions_to_dataset",
]
