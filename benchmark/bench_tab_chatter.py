"""Retention-tab chatter during a slow straight press (issue 17's open point).

A noiseless, aligned plug is pressed straight down at `--speed` x the action scale per 0.1 s env
step (0.25 mm per step at the default 0.05), through the tab ramp and along the sliding plateau,
then pulled out at the same speed. Every physics step records the two tabs' slide-joint
position q [mm] and velocity [mm/s], the number of contacts each tab has, and the normal force
the tabs press on the plug [N]; every env step records the wrist F/T's zeroed, filtered Fz [N]
(the observation). The press window holds the env steps with the plug's face at least 0.5 mm
past the tabs' equator (the tabs slide on its flat side) and 0.3 mm short of the mating depth or
more (as `envs.mating_forces.measure_peaks`: the body bottoming out is not counted); the pull
window runs from 0.5 mm after the reversal to 0.5 mm before the tabs' equator. The plateau is
the window's steps in which the plug moved by the commanded advance +-50%: past the ramp's top
the arm's stored push snaps the plug ahead, and static friction may then hold it until the push
builds up again; both are real, neither is sliding. "n/m" counts plateau / window steps.

Printed per connector and variant (one Markdown row): plateau Fz mean / min / max [N], min/mean,
the tabs' largest |qdot| on the plateau [mm/s], the share of plateau env steps in which a tab
lost all contact for at least one physics step, the press and pull peaks (the windows of
`measure_peaks`) against the documented ranges, and env steps/s of a free press (no recording).

What it showed (issue 17): on the sliding plateau MuJoCo's convex contact model pushes the
sliding tab off the plug (the push grows with the friction rows' reference damping, 2 / time
constant, x the slip speed; with zero friction, or a plug at rest, the tab rests). The contact
vanishes, the tab springs back into the plug within one physics step, and the cycle repeats at
about the tab's own frequency; the 50 Hz wrist filter and the 10 Hz sampling turn it into dips.

    python -m benchmark.bench_tab_chatter --variant task --variant timestep=0.001
    python -m benchmark.bench_tab_chatter --tasks USB --variant armature=4
    python -m benchmark.bench_tab_chatter --version 2 --speed 0.2

`--version 2` measures the -v2 tasks (contact springs, `envs.scene.ContactSprings`: no joint,
so no tab |v| or q; their deflection is the contact's penetration). Every row also counts the
env steps of the whole engagement (`stroke_contact`) in which a tab lost contact: the plateau
window of the short-stroke connectors (D-sub, XLR, USB-C, card edges) is empty.

A variant is "task" (the task as it is; "v1" is its older name) or `name=value` pairs joined
by ",". Set in the env:
timestep (s, the env kwarg; the tab's armature and the contact time constant follow it, as
`envs.scene` derives them). Changed in the compiled model (so MuJoCo's
compile-time inertia estimates keep the v1 tab's): armature, damping (x the tab's; armature
alone keeps the tab critically damped), frictionloss (N, each tab joint), noslip (iterations),
impratio, pyramidal=1 (every contact's cone), tab_solref (time constant [s] of the tab geoms and
joint limits), tab_dampratio, tab_condim, tab_friction (x the tab's contact friction), tab_k and
tab_b (MuJoCo's negative solref: reference stiffness [1/s^2] and damping [1/s]), margin and gap
(mm, the tab geoms'). The tab_* knobs give the tab geoms priority, so their values, not a mix
with the plug's, rule the contact. For v2 only timestep, noslip, impratio, pyramidal,
spring_damping (the contact springs' reference damping [1/s], `ContactSprings.damping_per_s`)
and spring_impedance (`ContactSprings.impedance`, the static stiffness kept).

Measured and not kept (2026-12-02): the tabs' contacts with the plug as explicit contact pairs
with their own friction time constant (`solreffriction` 0.1 s instead of the rigid 4 ms). It
steadies a slow pull on 8 of 9 connectors (USB press and pull: min/mean 1.00, no contact loss)
but turns the press of Model-E, HDMI, RJ45, NEMA15 and DT12 into stick-slip and still chatters
at 1 mm per step: it tunes the push-off away at one slip speed and changes no physics, so it is
not a task-version fix. A 0.5 ms step gives min/mean 0.92-0.96 at 3-6x the cost, with the tabs
still losing contact.

Version 2 (contact springs, 2026-12-02): on all 34 -v2 tasks at 0.25 and at 1 mm per step, no
spring loses contact in any physics step of the engagement but one at the RAM card's
touch-down (its stiffest springs bounce the card edge once), plateau min/mean >= 0.99 at 0.25
mm and >= 0.97 at 1 mm per step, press and pull peaks inside the documented ranges; the pull
plateau rises 2% (at most 4%) from 0.25 to 1 mm per step: the push-off now adds normal force
on both sides of a held plug instead of knocking a light tab away. Env steps/s 0.93-1.26x
v1's in paired P-controller episodes (at most 7% slower; measured then outside this script,
whose last column times a free press).
"""

from __future__ import annotations

import argparse
import sys
import time

import mujoco
import numpy as np

from benchmark.script_args import doc_summary
from envs.insertion_env import InsertionEnv
from envs.tasks import DYNAMICS, TASKS

DEFAULT_TASKS = ("USB", "DSub", "ModelE", "Connector-HDMI", "Connector-RJ45", "Connector-USBC")
KNOBS = (
    "timestep", "armature", "damping", "frictionloss", "noslip", "impratio", "tab_solref",
    "tab_dampratio", "tab_condim", "tab_friction", "margin", "gap", "tab_k", "tab_b",
    "pyramidal", "spring_damping", "spring_impedance",
)
#: Knobs that take only some values: MuJoCo's contact dimensions, whole iteration counts and
#: on/off switches (tab_condim=2 was MuJoCo's error after the header; noslip 2.5 ran as 2).
KNOB_VALUES = {"tab_condim": (1, 3, 4, 6), "pyramidal": (0, 1)}
WHOLE_KNOBS = ("noslip",)
#: The knobs that apply to version 2's contact springs.
V2_KNOBS = ("timestep", "noslip", "impratio", "pyramidal", "spring_damping", "spring_impedance")


def parse_variant(text: str) -> dict[str, float]:
    """`a=1,b=2` -> {"a": 1.0, "b": 2.0}; "task" (or "v1", its older name) -> {}. Exits with
    one line on a bad knob."""
    if text in ("task", "v1"):
        return {}
    knobs = {}
    for pair in text.split(","):
        name, _, value = pair.partition("=")
        if name not in KNOBS:
            sys.exit(f"bench_tab_chatter: unknown knob {name!r}; choose from {', '.join(KNOBS)}")
        try:
            knobs[name] = float(value)
        except ValueError:
            sys.exit(f"bench_tab_chatter: {name} needs a number, got {value!r}")
        if not np.isfinite(knobs[name]) or knobs[name] < 0:
            sys.exit(f"bench_tab_chatter: {name} must be finite and >= 0, got {value!r}")
        if name in KNOB_VALUES and knobs[name] not in KNOB_VALUES[name]:
            sys.exit(f"bench_tab_chatter: {name} must be one of {KNOB_VALUES[name]}, got {value!r}")
        if name in WHOLE_KNOBS and not knobs[name].is_integer():
            sys.exit(f"bench_tab_chatter: {name} must be a whole number, got {value!r}")
    if "timestep" in knobs:  # the env's own check came after rows were printed (bench20)
        from envs.task_options import TIMESTEP_RANGE_S

        low, high = TIMESTEP_RANGE_S
        if not low <= knobs["timestep"] <= high:
            sys.exit(f"bench_tab_chatter: timestep must be in [{low:g}, {high:g}] s, got "
                     f"{knobs['timestep']:g}")
    return knobs


def check_knobs(contact_springs: bool, knobs: dict[str, float]) -> None:
    """Exit with one line when a knob does not apply to the task's springs (v2's contact
    springs, or v1's tabs): it would be ignored, and its row look like a measurement of it."""
    if contact_springs:
        wrong = sorted(set(knobs) - set(V2_KNOBS))
        if wrong:
            sys.exit(f"bench_tab_chatter: {wrong} need v1's tabs; v2 takes {', '.join(V2_KNOBS)}")
        d = knobs.get("spring_impedance", 0.5)
        if not 0.0 < d < 1.0:
            sys.exit(f"bench_tab_chatter: spring_impedance must be in (0, 1), got {d}")
        return
    wrong = sorted(k for k in knobs if k.startswith("spring_"))
    if wrong:
        sys.exit(f"bench_tab_chatter: {wrong} are v2 knobs (contact springs); use --version 2")


def tab_ids(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """The socket's tab slide joints (none for v2's contact springs) and the spring geoms, in
    the same order."""
    joints = np.array([j for j in range(model.njnt) if model.joint(j).name.endswith("_slide")
                       and model.joint(j).name.startswith("socket_")], dtype=int)
    geoms = np.array([g for g in range(model.ngeom)
                      if model.geom(g).name.startswith("socket_spring")], dtype=int)
    return joints, geoms


def make_env(task, knobs: dict[str, float]) -> InsertionEnv:
    """The task's noiseless env for a press, with the variant's changes applied to its model."""
    kwargs = {"timestep": knobs["timestep"]} if "timestep" in knobs else {}
    env = InsertionEnv(task, noiseless=True, reward="dense",
                       start_height_mm=task.connector.lowest_start_mm + 5.0, **kwargs)
    m = env.model
    joints, geoms = tab_ids(m)
    if "noslip" in knobs:
        m.opt.noslip_iterations = int(knobs["noslip"])
    if knobs.get("pyramidal"):
        m.opt.cone = mujoco.mjtCone.mjCONE_PYRAMIDAL
    if "impratio" in knobs:
        m.opt.impratio = knobs["impratio"]
    check_knobs(task.dynamics.springs is not None, knobs)
    if task.dynamics.springs is not None:
        if "spring_damping" in knobs:
            m.geom_solref[geoms, 1] = -knobs["spring_damping"]
        if "spring_impedance" in knobs:  # the same static stiffness, k / ((1 - d) diagApprox)
            d_old, d_new = m.geom_solimp[geoms[0], 0], knobs["spring_impedance"]
            m.geom_solref[geoms, 0] *= (1.0 - d_new) / (1.0 - d_old)
            m.geom_solimp[geoms, :2] = d_new
        return env
    dofs = m.jnt_dofadr[joints]
    if "armature" in knobs:
        m.dof_armature[dofs] *= knobs["armature"]
    if "damping" in knobs:
        m.dof_damping[dofs] *= knobs["damping"]
    if "armature" in knobs and "damping" not in knobs:  # keep the tab critically damped
        m.dof_damping[dofs] = 2 * np.sqrt(m.jnt_stiffness[joints] * m.dof_armature[dofs])
    if "frictionloss" in knobs:
        m.dof_frictionloss[dofs] = knobs["frictionloss"]
    if any(k.startswith("tab_") for k in knobs):
        # A tab-plug contact takes the higher-priority geom's friction, solref, solimp and
        # condim (by default MuJoCo mixes or maxes the two geoms' values).
        m.geom_priority[geoms] = 1
    if "tab_solref" in knobs:
        m.geom_solref[geoms, 0] = knobs["tab_solref"]
        m.jnt_solref[joints, 0] = knobs["tab_solref"]
    if "tab_dampratio" in knobs:
        m.geom_solref[geoms, 1] = knobs["tab_dampratio"]
    if "tab_condim" in knobs:
        m.geom_condim[geoms] = int(knobs["tab_condim"])
    if "tab_friction" in knobs:  # reset() rewrites contact friction from the nominal values
        nominal = env._nominal_friction
        is_tab = np.isin(env._contact_geoms, geoms)
        nominal[is_tab] *= knobs["tab_friction"]
    if "margin" in knobs:
        m.geom_margin[geoms] = knobs["margin"] * 1e-3
    if "gap" in knobs:
        m.geom_gap[geoms] = knobs["gap"] * 1e-3
    if "tab_k" in knobs or "tab_b" in knobs:  # direct reference stiffness [1/s^2], damping [1/s]
        timeconst = m.geom_solref[geoms[0], 0]
        m.geom_solref[geoms, 0] = -knobs.get("tab_k", 1 / timeconst**2)
        m.geom_solref[geoms, 1] = -knobs.get("tab_b", 2 / timeconst)
    return env


class RecordingPeriod:
    """Stands in for `envs.physics.ControlPeriod`: the same `mj_step`s, one at a time, logging
    the tabs after each (q, qdot [m, m/s], contacts per tab, normal force on the tabs [N])."""

    def __init__(self, env: InsertionEnv) -> None:
        self.model, self.data, self.nstep = env.model, env.data, env.frame_skip
        joints, geoms = tab_ids(env.model)
        self.qadr, self.dadr = env.model.jnt_qposadr[joints], env.model.jnt_dofadr[joints]
        self.tab_of_geom = {g: i for i, g in enumerate(geoms)}
        self.log: list[np.ndarray] = []  # per env step: (nstep, 2 + 2 + 2 + 1)
        self._force = np.zeros(6)

    def run(self) -> np.ndarray:
        m, d = self.model, self.data
        rows, sensordata = [], np.empty((self.nstep, m.nsensordata))
        for k in range(self.nstep):
            mujoco.mj_step(m, d)
            sensordata[k] = d.sensordata
            count, normal = np.zeros(2), 0.0
            for i in range(d.ncon):
                c = d.contact[i]
                tab = self.tab_of_geom.get(c.geom1, self.tab_of_geom.get(c.geom2))
                if tab is None or c.efc_address < 0:
                    continue
                count[tab] += 1
                mujoco.mj_contactForce(m, d, i, self._force)
                normal += self._force[0]
            # Contact springs have no joint: their deflection is the contact's penetration.
            q = d.qpos[self.qadr] if self.qadr.size else np.zeros(2)
            qdot = d.qvel[self.dadr] if self.dadr.size else np.zeros(2)
            rows.append([*q, *qdot, *count, normal])
        self.log.append(np.array(rows))
        return sensordata


def _stop_on_physics_error(task, info: dict) -> None:
    """Exit with one line where a variant blew the simulation up (the next step was
    "call reset() before step()", a traceback after the table's first rows)."""
    if info.get("physics_error"):
        sys.exit(f"bench_tab_chatter: {task.env_id} blew up under this variant "
                 f"({info['physics_error']})")


def press_and_pull(task, knobs: dict[str, float], speed: float):
    """Run the recorded press and pull. Per env step of each: (depth [mm], force along the push
    [N]: -Fz pressing, +Fz pulling) and the tab log of `RecordingPeriod`."""
    env = make_env(task, knobs)
    env.reset(seed=0)
    recorder = RecordingPeriod(env)
    env._period = recorder
    connector = task.connector
    down = np.array([0.0, 0.0, speed], np.float32)
    max_steps = int(4 * (connector.lowest_start_mm + 5.0) / (speed * env.action_scale_m / 1e-3))
    press, pull = [], []
    for _ in range(max_steps):
        obs, _, _, _, info = env.step(down)
        _stop_on_physics_error(task, info)
        press.append((info["insertion_depth_mm"], -float(obs["wrench"][2])))
        if info["insertion_depth_mm"] >= min(connector.success_depth_mm + 0.3,
                                              connector.mating_length_mm - 0.2):
            break
    n_press = len(press)
    for _ in range(max_steps):
        obs, _, _, _, info = env.step(-down)
        _stop_on_physics_error(task, info)
        if info["insertion_depth_mm"] <= 0.0:
            break
        pull.append((info["insertion_depth_mm"], float(obs["wrench"][2])))
    env.close()
    log = recorder.log
    pull_arr = np.array(pull).reshape(-1, 2)
    return np.array(press), log[:n_press], pull_arr, log[n_press : n_press + len(pull)]


def env_rate(task, knobs: dict[str, float], speed: float, steps: int = 60) -> float:
    """Env steps/s of the same press without recording (the env's own C rollout)."""
    env = make_env(task, knobs)
    env.reset(seed=0)
    down = np.array([0.0, 0.0, speed], np.float32)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(down)
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def plateau_stats(force: np.ndarray, log: list[np.ndarray], steps: np.ndarray) -> dict:
    """Force mean / min / max [N], the tabs' largest |qdot| [mm/s], their q range [mm] and the
    share of env steps in which a tab had no contact for a physics step, over `steps`."""
    if steps.size < 3:
        return {"n": steps.size}
    f = force[steps]
    rows = np.concatenate([log[i] for i in steps])
    return {
        "n": steps.size, "mean": f.mean(), "min": f.min(), "max": f.max(),
        "vmax": np.abs(rows[:, 2:4]).max() * 1e3,
        "q": (rows[:, :2].min() * 1e3, rows[:, :2].max() * 1e3),
        "lost": np.mean([(log[i][:, 4:6] == 0).any() for i in steps]),
    }


def chatter_stats(task, knobs: dict[str, float], speed: float = 0.05) -> dict:
    """Press and pull plateau statistics (`plateau_stats`) and the press and pull peaks [N] in
    `measure_peaks`' windows, of one recorded press and pull."""
    press, press_log, pull, pull_log = press_and_pull(task, knobs, speed)
    c = task.connector
    # The tabs' equator, where the plug's edge leaves the ramp for its flat side (as
    # `connectors._springs` places them), plus 0.5 mm for the plug's edge rounding and settling.
    equator_mm = min(c.chamfer_mm + 2.0, c.mating_length_mm / 2) + c.spring_radius_mm
    depth = press[:, 0]
    step_mm = speed * 5.0  # the commanded advance per env step (5 mm action scale)
    window = (depth > equator_mm + 0.5) & (depth < c.success_depth_mm - 0.3)
    # Sliding at the press speed: past the ramp the arm's stored push snaps the plug ahead and
    # it may stick again until the push builds up (both real, neither the sliding plateau).
    advance = np.diff(depth, prepend=depth[0])
    sliding = np.abs(advance - step_mm) < 0.5 * step_mm
    press_steps = np.flatnonzero(window & sliding)
    # The pull: from 0.5 mm after the reversal until 0.5 mm before the tabs reach the ramp.
    retreat = -np.diff(pull[:, 0], prepend=depth[-1])
    pull_window = (pull[:, 0] > equator_mm + 0.5) & (pull[:, 0] < depth[-1] - 0.5)
    pull_steps = np.flatnonzero(pull_window & (np.abs(retreat - step_mm) < 0.5 * step_mm))
    in_window = (depth > 0.0) & (depth < c.success_depth_mm - 0.3)
    return {
        "press": plateau_stats(press[:, 1], press_log, press_steps) | {"window": window.sum()},
        "pull": plateau_stats(pull[:, 1], pull_log, pull_steps) | {"window": pull_window.sum()},
        "peak_in": press[in_window, 1].max(), "peak_out": pull[:, 1].max(initial=0.0),
        "stroke": stroke_contact(press_log + pull_log),
    }


def stroke_contact(log: list[np.ndarray]) -> tuple[int, int]:
    """(env steps in which a tab lost all contact for a physics step, env steps) over the whole
    engagement, ramps included, for connectors whose plateau is too short to judge: from the
    env step after the first in which both tabs touch the plug to the one before the last (those
    two touch down and let go within the step)."""
    touched = np.flatnonzero([bool((rows[:, 4:6] > 0).any(axis=0).all()) for rows in log])
    if touched.size < 3:
        return 0, 0
    held = [bool((rows[:, 4:6] > 0).all()) for rows in log[touched[0] + 1 : touched[-1]]]
    return len(held) - sum(held), len(held)


def _cells(p: dict, joints: bool) -> str:
    if p["n"] < 3:
        return f"- ({p['n']}/{p['window']} steps) | - | - | -"
    tab = f"{p['vmax']:.1f} | {p['q'][0]:.3f}–{p['q'][1]:.3f}" if joints else "- | -"
    return (f"{p['mean']:.1f} / {p['min']:.1f} / {p['max']:.1f} ({p['min'] / p['mean']:.2f}) "
            f"| {tab} | {100 * p['lost']:.0f}% of {p['n']}/{p['window']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--tasks", nargs="*", default=list(DEFAULT_TASKS),
                        help="task names without InsertBench/ and -vN")
    parser.add_argument("--version", type=int, choices=sorted(DYNAMICS)[1:], default=1,
                        help="task version: 1 (slide-joint tabs), 2 or 3 (contact springs)")
    parser.add_argument("--variant", action="append", default=None,
                        help="task (as built), or knob=value pairs joined by ',' (repeatable)")
    parser.add_argument("--speed", type=float, default=0.05,
                        help="press speed, x the 5 mm action scale per 0.1 s step")
    parser.add_argument("--no-rate", action="store_true", help="skip the env steps/s timing")
    args = parser.parse_args()
    if not 0.0 < args.speed <= 1.0:
        sys.exit(f"bench_tab_chatter: --speed must be in (0, 1], got {args.speed}")
    if not args.tasks:  # the header alone, exit 0
        parser.error("--tasks: name at least one task")
    # Every task and variant checked before the first row: a typo costs no minutes of presses.
    variants = {text: parse_variant(text) for text in args.variant or ["task"]}
    for knobs in variants.values():
        check_knobs(args.version >= 2, knobs)
    suffix = f"-v{args.version}"
    unknown = [n for n in args.tasks if f"InsertBench/{n}{suffix}" not in TASKS]
    if unknown:
        sys.exit(f"bench_tab_chatter: unknown task(s) {unknown} in version {args.version}")
    print("| Task | Variant | Press plateau Fz mean / min / max [N] (min/mean) | tab |v| max "
          "[mm/s] | tab q [mm] | steps losing contact | Pull plateau Fz mean / min / max (min/mean)"
          " | tab |v| max | tab q | steps losing contact | Whole stroke: steps losing contact "
          "| Press peak [N] (range) | Pull peak [N] (range) | env steps/s |")
    print("|---" * 14 + "|")
    for name in args.tasks:
        task = TASKS[f"InsertBench/{name}{suffix}"]
        ins, out = task.connector.mating.insertion_n, task.connector.mating.withdrawal_n
        joints = task.dynamics.springs is None
        for text, knobs in variants.items():
            s = chatter_stats(task, knobs, args.speed)
            rate = "-" if args.no_rate else f"{env_rate(task, knobs, args.speed):.0f}"
            ok_in = "ok" if ins[0] < s["peak_in"] < ins[1] else "OUT"
            ok_out = "ok" if out[0] < s["peak_out"] < out[1] else "OUT"
            print(
                f"| {name}{suffix} | {text} | {_cells(s['press'], joints)} "
                f"| {_cells(s['pull'], joints)} | {s['stroke'][0]} of {s['stroke'][1]} "
                f"| {s['peak_in']:.1f} ({ins[0]:g}–{ins[1]:g}, {ok_in}) "
                f"| {s['peak_out']:.1f} ({out[0]:g}–{out[1]:g}, {ok_out}) | {rate} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
