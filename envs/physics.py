"""One control period of MuJoCo physics in C with the GIL released, and the wrist F/T sensor
model run afterwards on the readings of every physics step.

`ControlPeriod.run` advances an `MjData` by `nstep` physics steps through `mujoco.rollout` on
the calling thread: the same `mj_step`s on the same data as a Python loop of `mj_step(m, d)`
(tested bitwise), but one call that holds no GIL for the whole period, so N worlds stepped on N
threads (`envs.vector`) integrate in parallel. The per-step sensor readings come back as an
array; `low_pass_wrench` and `peak_norm_sq` then reproduce, to the bit, what a per-step Python
loop computed between the `mj_step` calls (scalar float arithmetic, in the same order, is what
NumPy does element by element; a 3-vector's squared norm is summed left to right).
"""

from __future__ import annotations

import mujoco
import numpy as np
from mujoco import rollout

_STATE = mujoco.mjtState.mjSTATE_FULLPHYSICS
#: Everything a user sets and `mj_step` only reads (ctrl, applied forces, equality switches,
#: mocap poses, userdata): held at its current value for the whole period.
_INPUTS = mujoco.mjtState.mjSTATE_USER


class ControlPeriod:
    """`nstep` physics steps of one (model, data) pair per `run()`, with reused buffers."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, nstep: int) -> None:
        if nstep < 1:
            raise ValueError(f"nstep must be >= 1, got {nstep}")
        self.model, self.data, self.nstep = model, data, nstep
        # nthread=0: no pool; the rollout runs on the calling thread with the GIL released.
        self._rollout = rollout.Rollout(nthread=0)
        self._state0 = np.empty((1, mujoco.mj_stateSize(model, _STATE)))
        self._warmstart0 = np.empty((1, model.nv))
        self._inputs = np.empty((1, nstep, mujoco.mj_stateSize(model, _INPUTS)))
        self._states = np.empty((1, nstep, self._state0.shape[1]))
        self._sensordata = np.empty((1, nstep, model.nsensordata))

    def __getstate__(self) -> dict:
        # The rollout handle is a C object: copies (copy.deepcopy of an env) make their own.
        return {k: v for k, v in self.__dict__.items() if k != "_rollout"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._rollout = rollout.Rollout(nthread=0)

    def run(self) -> np.ndarray:
        """Advance `data` by `nstep` physics steps; its `sensordata` after each one, a
        (nstep, nsensordata) view of a buffer that the next call overwrites.

        The rollout zeroes `data.warning`'s counters first, so afterwards they count this
        period's warnings only. It stops stepping at the first warning; the remaining steps are
        then taken here, one `mj_step` at a time, as a plain loop would have taken them.
        """
        m, d = self.model, self.data
        mujoco.mj_getState(m, d, self._state0[0], _STATE)
        mujoco.mj_getState(m, d, self._inputs[0, 0], _INPUTS)
        self._inputs[0, 1:] = self._inputs[0, 0]
        self._warmstart0[0] = d.qacc_warmstart
        self._rollout.rollout(
            [m], [d], self._state0, self._inputs, control_spec=_INPUTS, skip_checks=True,
            nstep=self.nstep, initial_warmstart=self._warmstart0, state=self._states,
            sensordata=self._sensordata,
        )
        sensordata = self._sensordata[0]
        if d.warning.number.any():
            # Past the stop the rollout repeats the last state; time tells the steps taken.
            time = self._states[0, :, 0]
            taken = self.nstep
            while taken > 1 and time[taken - 1] == time[taken - 2]:
                taken -= 1
            for k in range(taken, self.nstep):
                mujoco.mj_step(m, d)
                sensordata[k] = d.sensordata
        return sensordata


def low_pass_wrench(
    filtered: np.ndarray, sensor_wrench: np.ndarray, alpha: float, force_bias: np.ndarray
) -> float:
    """Run a first-order low-pass over a period's wrench readings; its peak force squared.

    `filtered` (6,) [N, N m] is updated in place by ``filtered += alpha * (-w - filtered)`` for
    each row w of `sensor_wrench` (nstep, 6): MuJoCo's force-torque sensor reading, the child's
    wrench on the parent, whose negative is the environment's wrench on the tool. Returns the
    largest squared norm [N^2] over the steps of the filtered force minus `force_bias` (3,).
    """
    a = float(alpha)
    f0, f1, f2, f3, f4, f5 = filtered.tolist()
    b0, b1, b2 = force_bias.tolist()
    peak = 0.0
    for w0, w1, w2, w3, w4, w5 in (-sensor_wrench).tolist():
        f0 += a * (w0 - f0)
        f1 += a * (w1 - f1)
        f2 += a * (w2 - f2)
        f3 += a * (w3 - f3)
        f4 += a * (w4 - f4)
        f5 += a * (w5 - f5)
        g0, g1, g2 = f0 - b0, f1 - b1, f2 - b2
        square = g0 * g0 + g1 * g1 + g2 * g2
        if square > peak:  # as max(peak, square): a NaN never becomes the peak
            peak = square
    filtered[:] = (f0, f1, f2, f3, f4, f5)
    return peak


def peak_norm_sq(vectors: np.ndarray) -> float:
    """The largest x^2 + y^2 + z^2 (summed left to right) over rows of `vectors` (n, 3), and
    0 if there are none or every one is NaN."""
    x, y, z = vectors[:, 0], vectors[:, 1], vectors[:, 2]
    return float(np.fmax.reduce(x * x + y * y + z * z, initial=0.0))
