"""Contact fidelity of every catalog connector, as `test_fidelity` checks the foundation's: a
plug offset beyond clearance + chamfer jams, one inside that window slides in (quasi-static
approach, 0.1 mm resolution; round pin tips widen the window: see
`envs.connectors.guide_window_mm`)."""

from __future__ import annotations

import gymnasium as gym
import pytest

from benchmark.sim2sim import face_depth_mm, jammed
from envs.catalog import CATALOG
from envs.connectors import guide_window_mm
from envs.nist_board import NIST_PARTS
from tests.envs.helpers import push_down

RESOLUTION_MM = 0.1
#: Task ID -> connector spec: every catalog connector and every NIST board part.
SPECS = {f"InsertBench/Connector-{n}-v0": e.spec for n, e in CATALOG.items()} | {
    f"InsertBench/NISTBoard-{p}-v0": spec for p, (spec, _) in NIST_PARTS.items()
}


@pytest.mark.parametrize("env_id", sorted(SPECS))
@pytest.mark.parametrize("axis", [0, 1])
def test_offset_beyond_clearance_and_chamfer_jams(env_id, axis):
    env = gym.make(env_id, start_height_mm=SPECS[env_id].lowest_start_mm + 9.0)
    offset = [0.0, 0.0]
    offset[axis] = guide_window_mm(SPECS[env_id])[1] + RESOLUTION_MM
    _, info = push_down(env, offset)
    # Held at the mouth: a plug that sank into the housing beside the opening passed as "more
    # than 1 mm off the goal".
    assert jammed(env, info), (info, face_depth_mm(env))


@pytest.mark.parametrize("env_id", sorted(SPECS))
@pytest.mark.parametrize("axis", [0, 1])
def test_offset_within_chamfer_slides_in(env_id, axis):
    env = gym.make(env_id, start_height_mm=SPECS[env_id].lowest_start_mm + 9.0)
    offset = [0.0, 0.0]
    offset[axis] = guide_window_mm(SPECS[env_id])[0] - RESOLUTION_MM
    _, info = push_down(env, offset)
    assert info["is_success"], info
