"""The connector catalog and the procedural generator: every spec is valid, builds, has its
pieces where they belong, and the P-controller inserts it."""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
import pytest

from envs.catalog import CATALOG, SPLITS, connector_names
from envs.connectors import MM, Blade, ConnectorSpec, plug_pieces, socket_pieces
from envs.geometry import RIM_PROUD
from envs.procedural import random_connector
from envs.scene import build_model
from envs.tasks import TASKS
from tests.envs.helpers import run_p_controller

PAPER004_TEST = (
    "USACPlug", "NEMA1430P", "MetalPegRect", "MetalPegRound", "UKACPlug",
    "CarPlug4p", "MetalPegSquare", "CarPlug3p", "EUACPlug",
)  # fmt: skip
PAPER001_TEST = ("DT12", "Megablock", "NEMA15", "Europlug")


def test_catalog_mirrors_the_papers():
    assert len(CATALOG) >= 24
    for name in (*PAPER004_TEST, *PAPER001_TEST):
        assert CATALOG[name].split == "test"
    assert sum(e.split == "train" and "004" in e.paper for e in CATALOG.values()) == 11
    assert set(connector_names("challenge")) == {"RAMCard", "NetworkCard", "ComplexShape"}
    for name in ("RJ45", "BNC", "USBC", "M12", "EModel10p"):
        assert name in CATALOG
    assert {e.split for e in CATALOG.values()} == set(SPLITS)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_entry_is_cited_and_registered(name):
    entry = CATALOG[name]
    assert len(entry.spec.source) > 30, "cite a standard or datasheet, or say 'estimate'"
    assert f"InsertBench/Connector-{name}-v0" in TASKS


def test_visual_domains_differ():
    looks = {
        (e.spec.plug_rgba, e.spec.socket_rgba, e.spec.board_rgba, e.spec.table_rgba)
        for e in CATALOG.values()
    }
    assert len(looks) == len(CATALOG)


def _pieces_inside(spec: ConnectorSpec) -> None:
    """Socket pieces stay within the housing footprint and below the mouth; plug pieces
    within the plug body's footprint and above the tip of its longest pin."""
    reach = (max(spec.width_mm, spec.height_mm) / 2 + spec.clearance_mm + 2 * spec.wall_mm) * MM
    depth = (spec.cavity_depth_mm + spec.wall_mm) * MM
    for p in socket_pieces(spec):
        assert np.all(np.abs(p.pos[:2]) <= reach + 1e-9), (spec.name, p)
        assert -depth - 1e-9 <= p.pos[2] <= RIM_PROUD, (spec.name, p)
    body = (max(spec.width_mm, spec.height_mm) / 2 + spec.body_margin_mm) * MM
    tip = -(spec.pin_length_mm if spec.pins else 0.0) * MM
    for p in plug_pieces(spec):
        assert np.all(np.abs(p.pos[:2]) <= body + 1e-9), (spec.name, p)
        assert p.pos[2] >= tip - 1e-9, (spec.name, p)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_catalog_spec_builds_with_pieces_in_bounds(name):
    spec = CATALOG[name].spec
    _pieces_inside(spec)
    model = build_model(spec)
    assert model.ngeom > 0
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    # At the start pose nothing touches: the plug hangs above its socket.
    assert data.ncon == 0


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_p_controller_inserts_every_catalog_connector(name):
    import gymnasium as gym

    env = gym.make(f"InsertBench/Connector-{name}-v0")
    info = run_p_controller(env, seed=0)
    assert info["is_success"], info
    assert info["task_id"] == f"InsertBench/Connector-{name}-v0"


def test_blade_slots_must_stay_apart():
    with pytest.raises(ValueError, match="apart"):
        ConnectorSpec(
            name="too close",
            source="test",
            profile="blades",
            width_mm=6.0,
            height_mm=4.0,
            mating_length_mm=10.0,
            clearance_mm=0.2,
            chamfer_mm=0.5,
            success_depth_mm=8.0,
            retention_force_n=1.0,
            blades=(Blade(-2.0, 0.0, 2.0, 4.0), Blade(2.0, 0.0, 2.0, 4.0)),
        )


def test_round_profile_rules():
    base = dataclasses.replace(CATALOG["MetalPegRound"].spec)
    with pytest.raises(ValueError, match="sides"):
        dataclasses.replace(base, sides=10)
    with pytest.raises(ValueError, match="height_mm == width_mm"):
        dataclasses.replace(base, height_mm=5.0)


def test_procedural_is_a_pure_function_of_the_seed():
    assert random_connector(7) == random_connector(7)
    specs = [random_connector(s) for s in range(30)]
    assert len({s.profile for s in specs}) == 4
    assert len({(s.width_mm, s.clearance_mm) for s in specs}) == 30
    for spec in specs:
        _pieces_inside(spec)


@pytest.mark.parametrize("seed", range(6))
def test_p_controller_inserts_procedural_connectors(seed):
    from envs.insertion_env import InsertionEnv
    from envs.procedural import procedural_task

    env = InsertionEnv(procedural_task(seed))
    assert run_p_controller(env, seed=0)["is_success"]


def test_every_retention_tab_touches_its_plug():
    """The tabs stand `spring_interference_mm` into the plug's path: a plug seated in the
    socket pushes them back, so the retention force is felt (a missed tab would be none)."""
    import gymnasium as gym

    from envs.insertion_env import InsertionEnv
    from envs.procedural import procedural_task

    makers = [lambda n=n: gym.make(f"InsertBench/Connector-{n}-v0") for n in CATALOG]
    makers += [lambda s=s: InsertionEnv(procedural_task(s)) for s in range(30)]
    for make in makers:
        env = make()
        info = run_p_controller(env, seed=0)
        u = env.unwrapped
        tabs = [j for j in range(u.model.njnt) if u.model.joint(j).name.endswith("_slide")]
        pushed = [u.data.qpos[u.model.jnt_qposadr[j]] for j in tabs]
        assert info["is_success"] and min(pushed) > 1e-5, (u.task.name, pushed)


PINNED = sorted({t.connector.name: tid for tid, t in TASKS.items()
                 if t.connector.pins and "Connector-" in tid and tid.endswith("-v1")}.values())


@pytest.mark.parametrize("env_id", PINNED)
def test_the_lowest_start_is_out_of_the_socket_at_any_offset(env_id):
    """The lowest start let pins reach into the socket: D-sub at 7 mm with a 10 mm offset
    started 1.7 mm inside a wall (854 N at the first step), the EU plug at 16 mm 3.4 mm inside
    its insulator (2,199 N)."""
    import gymnasium as gym

    connector = TASKS[env_id].connector
    assert connector.lowest_start_mm == connector.mating_length_mm + connector.pin_length_mm + 1
    env = gym.make(env_id, start_height_mm=connector.lowest_start_mm, noiseless=True)
    for offset in ((10.0, 0.0), (0.0, 10.0), (30.0, 0.0), (2.0, 2.0)):
        env.reset(seed=1, options={"tcp_offset_mm": offset})
        data = env.unwrapped.data
        assert data.ncon == 0, (offset, min(c.dist for c in data.contact[:data.ncon]))
    with pytest.raises(ValueError, match=rf"its pins reach {connector.pin_length_mm:g} mm below"):
        gym.make(env_id, start_height_mm=connector.lowest_start_mm - 0.5)
    env.close()
