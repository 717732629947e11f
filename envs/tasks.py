"""Task specifications: what a task ID means, shared by the simulated and the real robot.

A task is a connector plus the episode protocol. `real/` builds the same IDs on hardware from
these specs, so nothing here may depend on MuJoCo state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

from envs.catalog import CATALOG
from envs.connectors import DSUB_DE9, MM, MODEL_E, USB_A, ConnectorSpec
from envs.geometry import RIM_PROUD
from envs.mating_forces import CATALOG_FORCES, PAPER000, calibrated, contact_ramp_ratio
from envs.scene import ContactParams, ContactSprings, ImpedanceGains
from envs.version_key import ADDED_FIELD

DENSE_FORMS = ("printed", "closeness")
PEAK_FORCE_MODELS = ("contact_100hz", "ft_sensor")


@dataclass(frozen=True)
class SensorModel:
    """Real-world variation of a robot cell, drawn from the env's seeded generator.

    ft_bandwidth_hz: cutoff of the first-order low-pass the wrist F/T reading passes through,
    evaluated at every physics step (None: the raw physics-step reading). ft_force_noise_n,
    ft_torque_noise_nm: standard deviation of white noise per axis on each observed reading.
    ft_force_drift_n_per_s, ft_torque_drift_nm_per_s: standard deviation of the per-episode
    rate at which the zeroed reading's bias drifts (a linear drift from 0 at reset, the sensor
    being zeroed at the start of every episode as on the real robot). reset_repeatability_mm:
    the start pose is off by up to this much per axis (uniform), the arm's pose repeatability.
    camera_noise: standard deviation of Gaussian pixel noise [0-255 units].
    """

    ft_bandwidth_hz: float | None = None
    ft_force_noise_n: float = 0.0
    ft_torque_noise_nm: float = 0.0
    ft_force_drift_n_per_s: float = 0.0
    ft_torque_drift_nm_per_s: float = 0.0
    reset_repeatability_mm: float = 0.0
    camera_noise: float = 0.0

    @property
    def noiseless(self) -> bool:
        """True when nothing here draws random numbers (the filter is deterministic)."""
        return not any(
            (
                self.ft_force_noise_n,
                self.ft_torque_noise_nm,
                self.ft_force_drift_n_per_s,
                self.ft_torque_drift_nm_per_s,
                self.reset_repeatability_mm,
                self.camera_noise,
            )
        )


#: A real cell, with magnitudes from datasheets. UR5e: pose repeatability +-0.03 mm (ISO 9283,
#: Universal Robots UR5e datasheet). Wrist F/T: noise 0.1 N / 0.005 N m per axis and a 100 Hz
#: output rate, the order of Robotiq's FT 300-S datasheet; the 50 Hz first-order low-pass (the
#: Nyquist limit of a 100 Hz output) and the drift of 0.05 N/s (0.002 N m/s), about 0.25 N
#: over a 5 s episode, are our model of such a sensor. Camera: sigma 2/255 pixel noise, the
#: order of an RGB sensor in office light (estimate).
REAL_CELL = SensorModel(
    ft_bandwidth_hz=50.0,
    ft_force_noise_n=0.1,
    ft_torque_noise_nm=0.005,
    ft_force_drift_n_per_s=0.05,
    ft_torque_drift_nm_per_s=0.002,
    reset_repeatability_mm=0.03,
    camera_noise=2.0,
)


@dataclass(frozen=True)
class TaskDynamics:
    """Everything that sets how a task ID behaves for given kwargs: bumped with the version.

    timestep: physics step [s] (the `timestep` kwarg's default). gains, contact: the impedance
    controller and the contact solver (`envs.scene`). sensor: real-world variation, switched off
    by the `noiseless=True` kwarg (the F/T filter stays). dense_form: what `reward="dense"`
    means ("printed": paper 000 eq. 2 as printed; "closeness": its closeness-rewarding form,
    see `envs.rewards`). peak_force: what `info["max_force_n"]` measures ("contact_100hz": net
    contact force on the plug sampled at 100 Hz; "ft_sensor": the zeroed, filtered wrist F/T
    force at every physics step, what a wrist sensor reports). springs: the retention springs'
    model (None: slide-joint tabs, versions 0 and 1; `ContactSprings`: version 2 on).
    goal_at_seat: the goal face lies where a seated plug's face reaches, the socket's rim
    standing `envs.geometry.RIM_PROUD` above its mouth when chamfered (version 3 on; before,
    `mating_length_mm` below the mouth, out of reach). orientation_limit_rad: in
    `action_mode="pose"` the reference orientation stays within this angle of the start
    orientation, as `real/` clamps every command into its orientation cone (version 3 on:
    `real.config.SafetyConfig.max_tilt_rad`'s default; None: unbounded).
    """

    timestep: float = 0.002
    gains: ImpedanceGains = ImpedanceGains()
    contact: ContactParams = ContactParams()
    sensor: SensorModel = SensorModel()
    dense_form: str = "printed"
    peak_force: str = "contact_100hz"
    springs: ContactSprings | None = field(default=None, metadata=ADDED_FIELD)
    goal_at_seat: bool = field(default=False, metadata=ADDED_FIELD)
    orientation_limit_rad: float | None = field(default=None, metadata=ADDED_FIELD)

    def __post_init__(self) -> None:
        if self.dense_form not in DENSE_FORMS:
            raise ValueError(f"dense_form must be one of {DENSE_FORMS}, got {self.dense_form!r}")
        if self.peak_force not in PEAK_FORCE_MODELS:
            raise ValueError(
                f"peak_force must be one of {PEAK_FORCE_MODELS}, got {self.peak_force!r}"
            )


#: Version 0: the first release (noiseless, raw forces, 30 N controller limit).
DYNAMICS_V0 = TaskDynamics()
#: Version 1: datasheet mating forces (`ConnectorSpec.mating`), a 100 N controller force limit
#: (5000 N/m x 20 mm) above the largest documented insertion force (60 N), real-world variation,
#: F/T-filtered peak force and the closeness-rewarding dense reward.
DYNAMICS_V1 = TaskDynamics(
    gains=ImpedanceGains(translation_limit_m=0.02),
    sensor=REAL_CELL,
    dense_form="closeness",
    peak_force="ft_sensor",
)
#: Version 2: version 1 with contact springs for retention (`envs.scene.ContactSprings`): the
#: same documented mating forces, a steady sliding plateau instead of v1's chattering tabs. Its
#: impratio of 30 (10 before) makes every contact's friction rows stiffer against the normal
#: row, so the compliant springs' friction reaches mu N even at a 1 mm/s slip.
DYNAMICS_V2 = dataclasses.replace(
    DYNAMICS_V1, contact=ContactParams(impratio=30.0), springs=ContactSprings()
)
#: Version 3: version 2 with the fidelity gaps of versions 0-2 closed (README, "Known fidelity
#: gaps"): trapezoid sockets offset exactly (`ConnectorSpec.exact_offset`), the push force
#: limited in magnitude rather than per axis, a rigid task board, the goal at the reachable
#: seat and the orientation held within real/'s 0.25 rad cone in pose mode.
DYNAMICS_V3 = dataclasses.replace(
    DYNAMICS_V2,
    gains=dataclasses.replace(DYNAMICS_V2.gains, limit_per_axis=False),
    contact=dataclasses.replace(DYNAMICS_V2.contact, rigid_board=True),
    goal_at_seat=True,
    orientation_limit_rad=0.25,
)
DYNAMICS = {0: DYNAMICS_V0, 1: DYNAMICS_V1, 2: DYNAMICS_V2, 3: DYNAMICS_V3}


@dataclass(frozen=True)
class TaskSpec:
    """name: the part of the ID after "InsertBench/"; paper: where the task comes from;
    dynamics: the version's physics and defaults (`DYNAMICS[version]`)."""

    name: str
    connector: ConnectorSpec
    paper: str
    max_episode_steps: int = 50
    version: int = 0
    dynamics: TaskDynamics = field(default=DYNAMICS_V0)
    #: Further sockets on the board around the task's own (NIST task board layout): (spec,
    #: (x, y) mouth centre [m] relative to the task's socket). Obstacles and visual context.
    board_sockets: tuple[tuple[ConnectorSpec, tuple[float, float]], ...] = ()

    @property
    def env_id(self) -> str:
        return f"InsertBench/{self.name}-v{self.version}"

    @property
    def seat_depth_mm(self) -> float:
        """How far below the socket mouth the goal puts the plug's face [mm]: the mating length,
        less the rim (`envs.geometry.RIM_PROUD`) that a chamfered socket's plug lands on where
        the goal is at the seat (`TaskDynamics.goal_at_seat`, version 3 on)."""
        c = self.connector
        rim_mm = RIM_PROUD / MM if self.dynamics.goal_at_seat and c.chamfer_mm > 0 else 0.0
        return c.mating_length_mm - rim_mm


def _versions(name: str, connector: ConnectorSpec, forces, paper: str) -> list[TaskSpec]:
    """Versions 0, 1 and 2 (kept reproducible) and 3 (2 with its fidelity gaps closed) of a
    task."""
    # Versions 2 and 3 share the contact springs; 3 offsets trapezoid sockets exactly.
    springs = {2: connector, 3: dataclasses.replace(connector, exact_offset=True)}
    return [
        TaskSpec(name, connector, paper=paper),
        TaskSpec(
            name, calibrated(connector, forces), paper=paper, version=1, dynamics=DYNAMICS_V1
        ),
        *(
            TaskSpec(name, calibrated(spec, forces, contact_ramp_ratio), paper=paper,
                     version=version, dynamics=DYNAMICS[version])
            for version, spec in springs.items()
        ),
    ]


TASKS: dict[str, TaskSpec] = {
    t.env_id: t
    for name, connector in (("USB", USB_A), ("DSub", DSUB_DE9), ("ModelE", MODEL_E))
    for t in _versions(name, connector, PAPER000[connector.name], "000 §3.1")
}

#: One task per catalog connector: InsertBench/Connector-<Name>-v0 to -v3 (envs.catalog).
CONNECTOR_TASKS: dict[str, TaskSpec] = {
    t.env_id: t
    for entry in CATALOG.values()
    for t in _versions(
        f"Connector-{entry.name}", entry.spec, CATALOG_FORCES[entry.name], entry.paper
    )
}
TASKS.update(CONNECTOR_TASKS)


#: The three tasks of paper 000 (section 3.1), in its order of difficulty: version 0 (the
#: first release, kept reproducible), version 1, version 2 (contact springs) and version 3
#: (version 2 with its fidelity gaps closed).
PAPER000_TASKS = ("InsertBench/USB-v0", "InsertBench/DSub-v0", "InsertBench/ModelE-v0")
PAPER000_TASKS_V1 = ("InsertBench/USB-v1", "InsertBench/DSub-v1", "InsertBench/ModelE-v1")
PAPER000_TASKS_V2 = ("InsertBench/USB-v2", "InsertBench/DSub-v2", "InsertBench/ModelE-v2")
PAPER000_TASKS_V3 = ("InsertBench/USB-v3", "InsertBench/DSub-v3", "InsertBench/ModelE-v3")

def task_spec(env_id: str) -> TaskSpec:
    """The spec of a registered task ID, with a clear error for unknown IDs."""
    try:
        return TASKS[env_id]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise KeyError(f"unknown task {env_id!r}; known tasks: {known}") from None


@contextlib.contextmanager
def pinned_versions() -> Iterator[None]:
    """Make envs of a task version chosen on purpose (a preset's, a track's, a vector's worlds)
    without Gymnasium's "out of date, consider upgrading" warning: that advice is for a user
    who typed an old ID, and where the version is pinned it was noise (from matrix workers a
    raw, colour-coded line per env made)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*out of date", DeprecationWarning)
        yield
