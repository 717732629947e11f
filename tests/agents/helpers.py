"""Small drivers shared by the agent tests."""

from __future__ import annotations

import gymnasium as gym

from agents import Transition, transitions_to_dataset
from agents.registry import agent_spec
from benchmark.train import make_base_policy


def agent_kwargs(name: str, env: gym.Env) -> dict:
    """The runtime objects agent `name` needs on `env`: its P-controller as `base_policy`."""
    return {"base_policy": make_base_policy(env)} if agent_spec(name).needs_base_policy else {}


def demo_dataset(env: gym.Env, episodes: int = 2) -> dict:
    """`episodes` demonstrations of the env's P-controller (seeds 500, 501, ...) as a dataset."""
    policy = make_base_policy(env)
    transitions = []
    for i in range(episodes):
        obs, _ = env.reset(seed=500 + i)
        done = False
        while not done:
            action = policy(obs)
            nxt, reward, term, trunc, info = env.step(action)
            transitions.append(Transition(obs, action, reward, nxt, term, trunc, info))
            obs, done = nxt, term or trunc
    return transitions_to_dataset(transitions)


def online_steps(env: gym.Env, agent, steps: int, seed: int = 0) -> list[dict]:
    """``steps`` exploring env steps from ``env.reset(seed=seed)``, each observed and followed by
    ``agent.update()`` (later episodes reset unseeded); returns every update's metrics."""
    metrics = []
    obs, _ = env.reset(seed=seed)
    agent.reset(seed=seed)
    for _ in range(steps):
        action = agent.act(obs, deterministic=False)
        assert env.action_space.contains(action)
        nxt, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, nxt, term, trunc, info))
        metrics.append(agent.update())
        obs = nxt
        if term or trunc:
            obs, _ = env.reset()
    return metrics
