"""The rehearsal robot's figures: the 500 Hz servo loop through RTDE, and episodes over RTDE
against the same episodes on the in-process twin.

    python -m benchmark.bench_rtde_twin [--seconds 4] [--episodes 3]

Starts `insertbench real serve-twin` on 127.0.0.1 (the controller ports must be free).

1. Servo loop: a ur_rtde client (RTDEControlInterface + RTDEReceiveInterface, 500 Hz) sends
   one servoL per period with waitPeriod, each target tagged by a 1 um step in x; the
   controller echoes the last target it executed in `target_TCP_pose`. Round trip = time from
   sending a servoL to the client's receive interface first showing that target (controller
   cycle + data package + the client's threads; the client polls it every 0.1 ms until 1.8 ms
   into the period, then later periods). Printed: loop period mean and std (jitter), round
   trip p50/p95/p99/max, servoL commands the control script never executed because the next
   one replaced them within one controller cycle, and the server's overrun cycles.
2. Outcome: paper 000's P-controller on USB, seeds 0..N-1, through `real.make` over RTDE and
   through `real.make_twin` in process; success, steps, and the largest distance between the
   two TCP trajectories (episode-start frame, per policy step) [mm], and the wall time of a
   policy step over RTDE (0.1 s when the client keeps its 500 Hz loop).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import real
from benchmark.script_args import doc_summary, non_negative_int, positive_float
from benchmark.twin_process import SERVER_MAX_S, TwinProcess, ports_taken
from real.env import p_controller

USB = "InsertBench/USB-v0"
TAG_M = 1e-6
#: The servo loop watches for the echo of its command until this far into a period [s].
POLL_UNTIL_S = 0.0018


def servo_loop(seconds: float) -> dict[str, float]:
    import rtde_control
    import rtde_receive

    control = rtde_control.RTDEControlInterface("127.0.0.1", 500.0)
    receive = rtde_receive.RTDEReceiveInterface("127.0.0.1", 500.0)
    try:
        base = receive.getActualTCPPose()
        n = int(seconds * 500)
        sent = np.full(n, np.nan)
        seen = np.full(n, np.nan)
        starts = np.zeros(n)
        for k in range(n):
            t0 = control.initPeriod()
            starts[k] = time.perf_counter()
            target = list(base)
            # Tag k + 1: tag 0 is the pose the controller already reports, "seen" at once
            # (a round trip of 0.04 ms in the figures; bench20).
            target[0] += (k + 1) * TAG_M
            control.servoL(target, 0.0, 0.0, 0.002, 0.1, 300.0)
            sent[k] = time.perf_counter()
            # Watch the echoed target until shortly before the period ends.
            while time.perf_counter() - starts[k] < POLL_UNTIL_S:
                tag = int(round((receive.getTargetTCPPose()[0] - base[0]) / TAG_M)) - 1
                if 0 <= tag <= k and np.isnan(seen[tag]):
                    seen[tag] = time.perf_counter()
                time.sleep(1e-4)
            control.waitPeriod(t0)
        control.servoStop()
        control.stopScript()
    finally:
        control.disconnect()
        receive.disconnect()
    if np.isnan(seen).all():  # an IndexError below (bench20)
        raise SystemExit(f"bench_rtde_twin: no servoL target came back in {n} cycles")
    period = np.diff(starts) * 1e3
    rtt = (seen - sent)[~np.isnan(seen)] * 1e3
    last_seen = int(np.flatnonzero(~np.isnan(seen))[-1])
    return {
        "cycles": n,
        "period_mean_ms": float(period.mean()),
        "period_std_ms": float(period.std()),
        "period_max_ms": float(period.max()),
        "rtt_p50_ms": float(np.percentile(rtt, 50)),
        "rtt_p95_ms": float(np.percentile(rtt, 95)),
        "rtt_p99_ms": float(np.percentile(rtt, 99)),
        "rtt_max_ms": float(rtt.max()),
        "servoL_superseded": int(np.isnan(seen[:last_seen]).sum()),
    }


def run_episode(env, seed: int) -> tuple[bool, int, np.ndarray, float]:
    """Success, steps, TCP positions (episode-start frame) [m], wall time per step [s]."""
    policy = p_controller(env)
    obs, info = env.reset(seed=seed)
    poses = [obs["tcp_pose"][:3].copy()]
    start = time.perf_counter()
    for _ in range(env.spec.max_episode_steps if env.spec else 100):
        obs, _, terminated, truncated, info = env.step(policy(obs))
        poses.append(obs["tcp_pose"][:3].copy())
        if terminated or truncated:
            break
    steps = len(poses) - 1
    return bool(info["is_success"]), steps, np.asarray(poses), (time.perf_counter() - start) / steps


def outcomes(server: TwinProcess, episodes: int) -> list[dict]:
    socket_pose = server.state()["socket_pose"]
    rows = []
    for seed in range(episodes):
        over_rtde = real.make(USB, robot=real.URConfig(host="127.0.0.1"), socket_pose=socket_pose)
        try:
            ok_r, steps_r, path_r, step_s = run_episode(over_rtde, seed)
        finally:
            over_rtde.close()
        in_process = real.make_twin(USB, seed=0)
        try:
            ok_t, steps_t, path_t, _ = run_episode(in_process, seed)
        finally:
            in_process.close()
        m = min(len(path_r), len(path_t))
        gap_mm = float(np.max(np.linalg.norm(path_r[:m] - path_t[:m], axis=1)) * 1e3)
        rows.append(
            {
                "seed": seed,
                "success_rtde": ok_r,
                "success_in_process": ok_t,
                "steps_rtde": steps_r,
                "steps_in_process": steps_t,
                "max_tcp_gap_mm": gap_mm,
                "rtde_wall_s_per_step": step_s,
                "server_overruns_so_far": server.state()["overruns"],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--seconds", type=positive_float, default=4.0,
                        help="servo loop length [s]")
    parser.add_argument("--episodes", type=non_negative_int, default=3,
                        help="P-controller episodes")
    args = parser.parse_args()
    if args.seconds < 0.01:  # 0.001 s was an IndexError, 0.002 s a ValueError (bench20)
        parser.error("--seconds: at least 0.01 (5 servo cycles at 500 Hz)")
    if args.seconds > SERVER_MAX_S / 2:  # 1e9 s: numpy's "Unable to allocate 3.64 TiB" (real28)
        parser.error(f"--seconds: at most {SERVER_MAX_S // 2} (the twin's server stops itself "
                     f"after {SERVER_MAX_S} s, the episodes included)")
    taken = ports_taken()
    if taken:
        raise SystemExit(f"ports {taken} on 127.0.0.1 are in use; stop the other controller")
    server = TwinProcess(USB)
    try:
        before = server.state()["overruns"]
        loop = servo_loop(args.seconds)
        loop["server_overruns"] = server.state()["overruns"] - before
        print("servo loop through RTDE (500 Hz):")
        for key, value in loop.items():
            print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
        print("P-controller episodes, RTDE vs in-process twin:")
        for row in outcomes(server, args.episodes):
            cells = (f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
            print("  " + ", ".join(cells))
    finally:
        server.close()


if __name__ == "__main__":
    from envs.tasks import pinned_versions

    with pinned_versions():  # the script's task versions are chosen on purpose
        main()
