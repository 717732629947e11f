"""InsertBench agents: every method behind one interface (see ``agents.base``).

``make_agent(name, observation_space, action_space, config)`` builds one by name,
``load_agent(path)`` restores a checkpoint, ``agent_names()`` lists what is registered.
"""

from agents import bc, residual, sac, scripted, td3, td3_lfd  # noqa: F401  (registers agents)
from agents.base import Agent, BasePolicy, Dataset, Transition, transitions_to_dataset
from agents.registry import agent_names, agent_spec, load_agent, make_agent

__all__ = [
    "Agent",
    "BasePolicy",
    "Dataset",
    "Transition",
    "agent_names",
    "agent_spec",
    "load_agent",
    "make_agent",
    "transitions_to_dataset",
]
