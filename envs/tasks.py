"""Task specifications: what a task ID means, shared by the simulated and the real robot.

A task is a connector plus the episode protocol. `real/` builds the same IDs on hardware from
these specs, so nothing here may depend on MuJoCo state.
"""

from __future__ import annotations

from dataclasses import dataclass

from envs.catalog import CATALOG
from envs.connectors import DSUB_DE9, MODEL_E, USB_A, ConnectorSpec


@dataclass(frozen=True)
class TaskSpec:
    """name: the part of the ID after "InsertBench/"; paper: where the task comes from."""

    name: str
    connector: ConnectorSpec
    paper: str
    max_episode_steps: int = 50
    version: int = 0
    #: Further sockets on the board around the task's own (NIST task board layout): (spec,
    #: (x, y) mouth centre [m] relative to the task's socket). Obstacles and visual context.
    board_sockets: tuple[tuple[ConnectorSpec, tuple[float, float]], ...] = ()

    @property
    def env_id(self) -> str:
        return f"InsertBench/{self.name}-v{self.version}"


TASKS: dict[str, TaskSpec] = {
    t.env_id: t
    for t in (
        TaskSpec("USB", USB_A, paper="000 §3.1"),
        TaskSpec("DSub", DSUB_DE9, paper="000 §3.1"),
        TaskSpec("ModelE", MODEL_E, paper="000 §3.1"),
    )
}

#: One task per catalog connector: InsertBench/Connector-<Name>-v0 (see envs.catalog).
CONNECTOR_TASKS: dict[str, TaskSpec] = {
    t.env_id: t
    for t in (
        TaskSpec(f"Connector-{entry.name}", entry.spec, paper=entry.paper)
        for entry in CATALOG.values()
    )
}
TASKS.update(CONNECTOR_TASKS)


#: The three tasks of paper 000 (section 3.1), in its order of difficulty.
PAPER000_TASKS = ("InsertBench/USB-v0", "InsertBench/DSub-v0", "InsertBench/ModelE-v0")

def task_spec(env_id: str) -> TaskSpec:
    """The spec of a registered task ID, with a clear error for unknown IDs."""
    try:
        return TASKS[env_id]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise KeyError(f"unknown task {env_id!r}; known tasks: {known}") from None
