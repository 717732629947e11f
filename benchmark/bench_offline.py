"""Papers 001 and 004 on a budget: offline pretraining, adaptation and online finetuning figures.

    python -m benchmark.bench_offline paper004 --data runs/data/paper004 --out runs/bench004
    python -m benchmark.bench_offline paper001 --data runs/data/paper001 --out runs/bench001

``paper004`` (Zhao et al., Fig. 3 and section 5.3): AWAC and ODA are pretrained once on the
recipe's 11 training tasks; on every test task (and the 3 challenge tasks, without the start
perturbation, as in the paper) ODA adapts from 20 demonstrations of the task recorded with its
scripted controller, AWAC does not adapt; both are evaluated on fixed seeds, then optionally
finetuned online for ``--finetune-steps`` env steps and evaluated again.

``paper001`` (Nair et al., Tables I, II and IV): LOTJ (IQL + DAIB in policy and reward classifier)
is pretrained once on the recipe's training connectors. On each held-out test connector it
reports the reward classifier's balanced accuracy on fresh noisy-expert data of that connector
(paper 001 rebalances to 50/50 per connector), the policy's zero-shot success at +-10 mm, and the
success after ``--online-trials`` 20-step trials of finetuning rewarded by the classifier only;
then SAC from vision (no DAIB; trained offline on the same data, then finetuned for as many
trials on LOTJ's reward classifier, never the env's reward), the Localize baseline (+ searches)
and State-IQL offline at +-10 mm and 10-20 mm.

``--methods`` picks paper 001's methods to run (``lotj``, ``sac``, ``localize``, ``state_iql``;
default all; SAC finetunes on LOTJ's classifier, so ``sac`` pretrains LOTJ too), e.g. ``--methods
lotj`` for LOTJ's rows alone; ``--lotj-config KEY=VALUE`` (repeatable) overrides LOTJ's
IQLConfig, e.g. ``--lotj-config policy_online_rows=classifier_success``, or ``--lotj-config
online_reward=ground_truth``, an oracle control that paper 001 does not have: LOTJ's online
phase is rewarded by the simulator's success instead of R_psi (SAC still finetunes on R_psi;
the report says so in a line of its own). Every stage writes
its result under ``--out`` and is skipped when rerun with the same settings (resumable; other
settings in the same ``--out`` are refused). Prints the papers' numbers beside ours and
keeps them in ``<out>/report.txt``. Figures, not tests: correctness lives in tests/.

The presets ``paper001``, ``paper004`` (full size) and ``paper001-reduced``,
``paper004-reduced`` (under an hour on 2 cores) in ``benchmark/presets/offline/`` set the
paper, the data recipe (collected or resumed under ``<out>/data``) and the arguments:

    python -m benchmark.bench_offline --preset paper004-reduced --out runs/paper004-reduced
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents import Transition, load_agent, make_agent
from benchmark.cli_options import parse_key_values
from benchmark.evaluate import evaluate
from benchmark.preset import load_offline_preset, offline_presets
from benchmark.recipes import (
    PAPER001_ENV,
    PAPER001_STEPS,
    PAPER004_ENV,
    PAPER004_STEPS,
    check_recipe,
    load_recipe,
    paper001_connectors,
    paper004_connectors,
    paper004_env,
    recipe_connectors,
    recipe_parts,
    recipe_version,
)
from benchmark.script_args import doc_summary, output_dir
from benchmark.train import collect_demos, make_base_policy, make_env, train_episode_seed
from envs.episode import summarize
from envs.json_files import write_json
from envs.tasks import pinned_versions

#: Paper 004, Fig. 3: (ODA, AWAC) successes out of 100 after adapting from demos only.
PAPER004_FIG3 = {
    "USACPlug": (100, 87), "NEMA1430P": (100, 93), "MetalPegRect": (100, 96),
    "MetalPegRound": (100, 99), "UKACPlug": (100, 100), "CarPlug4p": (100, 100),
    "MetalPegSquare": (99, 90), "CarPlug3p": (75, 64), "EUACPlug": (99, 100),
}
PAPER004_CHALLENGE = ("RAMCard", "NetworkCard", "ComplexShape")
#: Paper 001, Table I (+-10 mm): LOTJ offline and online successes out of 20.
PAPER001_TABLE1 = {"DT12": (7, 19), "Megablock": (5, 16), "NEMA15": (11, 15),
                   "Europlug": (10, 15)}
PAPER001_CLASSIFIER_ACCURACY = 0.88  # Table IV, DAIB, mean over five held-out connectors
#: Paper 001, State-IQL offline: (Table I at +-10 mm, Table II at 10-20 mm) out of 20.
PAPER001_STATE_IQL = {"DT12": (5, 0), "Megablock": (0, 0), "NEMA15": (4, 3), "Europlug": (6, 0)}
#: Paper 001, Localize and the searches after it: (Table I at +-10 mm, Table II at 10-20 mm).
PAPER001_LOCALIZE = {
    ("none", "DT12"): (3, 0), ("none", "Megablock"): (3, 0), ("none", "NEMA15"): (0, 0),
    ("none", "Europlug"): (6, 0),
    ("straight_down", "DT12"): (1, 0), ("straight_down", "Megablock"): (1, 1),
    ("straight_down", "NEMA15"): (1, 0), ("straight_down", "Europlug"): (4, 0),
    ("random_search", "DT12"): (7, 0), ("random_search", "Megablock"): (1, 0),
    ("random_search", "NEMA15"): (0, 0), ("random_search", "Europlug"): (6, 0),
    ("spiral_search", "DT12"): (4, 0), ("spiral_search", "Megablock"): (15, 17),
    ("spiral_search", "NEMA15"): (3, 0), ("spiral_search", "Europlug"): (4, 0),
}
#: Paper 001, SAC from vision (no DAIB), Table I at +-10 mm: (offline, online) out of 20.
PAPER001_SAC = {"DT12": (0, 0), "Megablock": (0, 0), "NEMA15": (0, 0), "Europlug": (0, 0)}
#: Training connectors on which LOTJ's offline policy is also evaluated: in-distribution
#: success tells a policy that did not learn the task from one that does not generalise.
PAPER001_TRAINING_CHECK = ("USBA", "HDMI", "DSubDE9", "XT60")
#: Paper 001's methods in ``bench_offline paper001`` (``--methods``).
PAPER001_METHODS = ("lotj", "sac", "localize", "state_iql")
SCENARIOS = {"+-10 mm": [0.0, 10.0], "10-20 mm": [10.0, 20.0]}


def _json(path: Path, compute: Any) -> Any:
    """Cached stage: read ``path`` if it exists, else compute, write (whole: a kill mid-write
    left a cut-off file that failed every rerun) and return."""
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError:
            raise ValueError(f"{path} is damaged (not JSON); delete it to compute that stage "
                             "again") from None
    value = compute()
    write_json(path, value, non_finite="keep")  # NaN means, read back by this script alone
    return value


def _data_key(data: str | Path, out: Path) -> str:
    """``--data`` as bench.json compares it: the folder it names, written relative to ``--out``
    when inside it (a preset's ``<out>/data``, which moves with the run), else absolute."""
    folder, home = Path(data).resolve(), Path(out).resolve()
    return (f"<out>/{folder.relative_to(home).as_posix()}" if folder.is_relative_to(home)
            else str(folder))


def _recipe_digest(data: str | Path) -> str | None:
    """SHA-256 of the data's recipe description (recipe.json, canonical): its paper, version,
    parts, episodes and seeds (None where there is none yet)."""
    from benchmark.recipes import is_recipe_dir, read_description

    if not is_recipe_dir(Path(data)):
        return None
    text = json.dumps(read_description(Path(data)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _check_args(out: Path, args: argparse.Namespace) -> None:
    """A rerun must continue the same benchmark: refuse other settings in the same ``--out``.

    The folder itself is not a setting (a moved or copied run resumes), and ``--data`` is
    compared as the folder it names (from another working directory, or typed otherwise)."""
    wanted = {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())
              if k not in ("threads", "preset", "methods", "out")  # a preset only sets the
              # other arguments; each method's stages are cached apart, so a subset resumes
              # into the whole
              and not (k == "lotj_config" and not v)}  # runs from before the option resume
    wanted["data"] = _data_key(args.data, out)
    # What the folder holds, not only its name: data collected again into the same folder (v0
    # instead of v1, other connectors) was benchmarked with the old data's pretrained agents.
    wanted["data_recipe"] = _recipe_digest(args.data)
    path = out / "bench.json"
    if path.is_file():
        try:
            found = json.loads(path.read_text())
        except ValueError:
            raise SystemExit(f"{path} is damaged (not JSON): use another --out") from None
        found.pop("out", None)  # runs from before: the folder typed
        found.setdefault("data_recipe", wanted["data_recipe"])  # before: recorded from now on
        if isinstance(found.get("data"), str) and not found["data"].startswith("<out>"):
            found["data"] = _data_key(found["data"], out)  # as typed (earlier runs), absolute
        if found != wanted:
            changed = sorted(k for k in wanted if found.get(k) != wanted[k])
            raise SystemExit(f"{out} holds a run with other settings ({changed}); use another "
                             "--out or the same settings to resume")
    write_json(path, wanted)


def _pretrained(name: str, config: dict, dataset: dict, env: gym.Env, out: Path, seed: int):
    """Pretrain ``name`` once (checkpointed under ``out/<name>/pretrained``)."""
    path = out / name / "pretrained"
    # Done: the checkpoint and pretrain.json, which is written after the whole save (before
    # 2026-12-05 the save was in place: a kill between agent.json and the replay buffers left
    # no pretrain.json, and such a checkpoint is pretrained again).
    if not ((path / "agent.json").is_file() and (out / name / "pretrain.json").is_file()):
        torch.manual_seed(seed)
        agent = make_agent(name, env.observation_space, env.action_space, config, seed=seed)
        started = time.perf_counter()
        metrics = agent.pretrain(dataset)
        # Saved aside, then renamed into place: agent.json is written before the replay
        # buffers, and a kill between them left a checkpoint that failed every rerun.
        tmp = path.with_name("pretrained.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        agent.save(tmp, include_replay=True)  # finetuning keeps training on the offline data
        shutil.rmtree(path, ignore_errors=True)  # a cut-off one
        os.replace(tmp, path)
        write_json(out / name / "pretrain.json",  # last: the "done" mark
                   metrics | {"wall_s": time.perf_counter() - started}, non_finite="keep")
    return path


def _untrained(name: str, config: dict, dataset: dict, env: gym.Env, seed: int):
    """``name`` as `_pretrained` builds it, holding the data, before any gradient step: the
    baseline `latent_separation` needs (the tasks' states differ, so an untrained encoder
    already names the task from z: 0.80 against chance 0.09 on the small v1 recipe)."""
    torch.manual_seed(seed)
    agent = make_agent(name, env.observation_space, env.action_space,
                       config | {"pretrain_steps": 0}, seed=seed)
    agent.pretrain(dataset)
    return agent


def latent_separation(agent: Any, contexts_per_task: int = 8, seed: int = 0) -> dict[str, float]:
    """How much ODA's posterior q(z | c) says about the task, on its training tasks' demos.

    Per task, ``contexts_per_task`` independent contexts of ``context_size`` demo transitions
    give posterior means; reported: the mean KL(q || N(0, I)) [nats] (0: the posterior is the
    prior, z carries nothing), the leave-one-out nearest-centroid accuracy of naming the task
    from z (chance: 1 / tasks), and the between-task / within-task spread of the means.
    """
    rng = np.random.default_rng(seed)
    means, kls, labels = [], [], []
    with torch.no_grad():
        for task in agent.demos.task_ids:
            for _ in range(contexts_per_task):
                context = agent.to_torch(agent.demos.sample_task(
                    task, agent.config.context_size, rng))
                mean, var = agent.context_encoder.posterior(context, num_tasks=1)
                kls.append(0.5 * (mean**2 + var - 1.0 - var.log()).sum().item())
                means.append(mean[0].cpu().numpy())
                labels.append(task)
    z, y = np.asarray(means, dtype=np.float64), np.asarray(labels)
    tasks = np.unique(y)
    correct = 0
    for i in range(len(z)):
        others = np.arange(len(z)) != i
        centroids = np.stack([z[others & (y == t)].mean(0) for t in tasks])
        correct += tasks[np.argmin(((centroids - z[i]) ** 2).sum(-1))] == y[i]
    centroids = np.stack([z[y == t].mean(0) for t in tasks])
    within = float(np.mean([((z[y == t] - centroids[k]) ** 2).sum(-1).mean()
                            for k, t in enumerate(tasks)]))
    between = float(((centroids - centroids.mean(0)) ** 2).sum(-1).mean())
    return {"kl_nats": float(np.mean(kls)), "task_accuracy": correct / len(z),
            "chance": 1.0 / len(tasks), "between_over_within": between / max(within, 1e-12)}


def _finetune(env: gym.Env, agent: Any, steps: int, seed: int,
              learned_success: Callable[[dict[str, np.ndarray]], bool] | None = None,
              ) -> dict[str, float]:
    """``steps`` online env steps (episodes seeded like the runner's training episodes);
    ``training_successes`` counts the trials in which the plug mated (the env's success).

    With ``learned_success`` (a reward classifier on s'), the agent is given reward 1 and
    termination exactly where it says success, never the env's reward, and a trial ends there
    or at the time limit: ``env`` must not end episodes on its own success (a dense-reward env,
    `_practice_env`), or the trial's end would tell the learner the true success."""
    if learned_success is not None and getattr(env.unwrapped, "reward_type", "") == "sparse":
        raise ValueError("finetuning on a learned success needs an env that does not end "
                         "episodes on the true success (reward='dense')")
    episode, obs, successes, episodes, mated = 0, None, 0, 0, False
    for _ in range(steps):
        if obs is None:
            agent.reset(seed=train_episode_seed(seed, episode))
            obs, _ = env.reset(seed=train_episode_seed(seed, episode))
            episode, mated = episode + 1, False
        action = agent.act(obs, deterministic=False)
        nxt, reward, term, trunc, info = env.step(action)
        mated = mated or bool(info.get("is_success", False))
        if learned_success is not None:
            term = bool(learned_success(nxt))
            reward = float(term)
        agent.observe(Transition(obs, action, float(reward), nxt, term, trunc, info))
        agent.update()
        obs = None if term or trunc else nxt
        if term or trunc:
            episodes += 1
            successes += mated
    return {"training_episodes": episodes, "training_successes": successes}


def lotj_finetune(task_id: str, env_kwargs: dict, agent: Any, steps: int,
                  seed: int) -> dict[str, float]:
    """`_finetune` as paper 001 practises, on a new env of `task_id` with `env_kwargs`: with
    the agent's reward classifier as its online reward, dense underneath, so that a trial ends
    on R_psi's verdict (or the time limit), never on the simulator's success; otherwise (no
    classifier, the oracle control) on the env's own reward. `bench_lotj_policy --finetune`
    runs this too: it finetuned on the sparse env, its trials ended by the true success
    (bench24)."""
    learned = agent.classifier is not None and agent.config.online_reward == "classifier"
    env = make_env(task_id, {**env_kwargs, "reward": "dense"} if learned else env_kwargs)
    try:
        return _finetune(env, agent, steps, seed, agent.classifier_success if learned else None)
    finally:
        env.close()


def _practice_env(connector: str, env_kwargs: dict, args: argparse.Namespace) -> gym.Env:
    """Paper 001's online practice on a new connector: no ground truth, so the env must not end
    a trial on its own success (dense reward underneath; the learner gets R_psi's instead)."""
    return make_env(f"InsertBench/Connector-{connector}-{args.version}",
                    {**env_kwargs, "reward": "dense"})


def shuffled_context_task(task: str) -> str:
    """The test task whose demos are ODA's wrong context for `task`: the next one in paper
    004's list, whatever subset `--tasks` runs (the next in the subset was `task` itself when
    the subset had one task, and changed with the subset while results are cached by task)."""
    order = list(PAPER004_FIG3) + list(PAPER004_CHALLENGE)
    return order[(order.index(task) + 1) % len(order)]


def _paper004_task(method: str, path: Path, task: str, other_task: str, env_kwargs: dict,
                   args: argparse.Namespace) -> dict[str, Any]:
    """Adapt (ODA: 20 scripted demos of the task), evaluate, optionally finetune + evaluate
    (AWAC with the same 20 demos added to its buffer first, ODA with them in B).

    ODA is also evaluated with the demos of ``other_task`` as its context ("shuffled"): if z
    carries task information, the wrong context should not do as well as the right one."""
    env = make_env(f"InsertBench/Connector-{task}-{args.version}", env_kwargs)
    agent = load_agent(path)
    torch.manual_seed(args.seed)
    result: dict[str, Any] = {}
    if method == "oda":
        other = make_env(f"InsertBench/Connector-{other_task}-{args.version}",
                         _paper004_env(other_task))
        agent.adapt(collect_demos(other, make_base_policy(other), 20))
        other.close()
        result["shuffled_context"] = summarize(evaluate(env, agent, args.eval_episodes)) | {
            "context_task": other_task}
        agent.adapt(collect_demos(env, make_base_policy(env), 20))
    result["adapted"] = summarize(evaluate(env, agent, args.eval_episodes))
    if args.finetune_steps:
        if method == "awac":  # paper 004, 5.2: AWAC finetunes with the demos in its buffer
            agent.adapt(collect_demos(env, make_base_policy(env), 20))
        result["finetune"] = _finetune(env, agent, args.finetune_steps, args.seed)
        result["finetuned"] = summarize(evaluate(env, agent, args.eval_episodes))
    env.close()
    return result


def straight_down_task(task: str, args: argparse.Namespace) -> dict[str, Any]:
    """The scripted straight-down push (`agents.scripted`, no learning) on a paper 004 task,
    evaluated as the learners are: the floor their successes stand on (at our +-1 mm starts
    most test tasks need little lateral correction)."""
    env = make_env(f"InsertBench/Connector-{task}-{args.version}", _paper004_env(task))
    agent = make_agent("straight_down", env.observation_space, env.action_space, {},
                       seed=args.seed)
    summary = summarize(evaluate(env, agent, args.eval_episodes))
    env.close()
    return summary


def _paper004_env(task: str) -> dict[str, Any]:
    """Env kwargs of a paper 004 test task (challenge tasks: no start perturbation)."""
    env_kwargs = paper004_env(task) | {"max_episode_steps": PAPER004_STEPS}
    if task in PAPER004_CHALLENGE:
        env_kwargs |= {"init_offset_mm": [0.0, 0.0]}
    return env_kwargs


def bench_paper004(args: argparse.Namespace) -> None:
    dataset = load_recipe(args.data)
    out = Path(args.out)
    tasks = list(PAPER004_FIG3) + list(PAPER004_CHALLENGE)
    if args.tasks:
        tasks = [t for t in tasks if t in args.tasks]
    probe = make_env(f"InsertBench/Connector-USACPlug-{args.version}",
                     PAPER004_ENV | {"max_episode_steps": PAPER004_STEPS})
    configs = {"awac": {"pretrain_steps": args.pretrain_steps, "batch_size": args.batch_size},
               "oda": {"pretrain_steps": args.pretrain_steps, "batch_size": args.batch_size}}
    paths = {m: _pretrained(m, c, dataset, probe, out, args.seed) for m, c in configs.items()}
    latent = _json(out / "oda" / "latent.json",
                   lambda: latent_separation(load_agent(paths["oda"]), seed=args.seed))
    untrained = _json(out / "oda" / "latent_untrained.json", lambda: latent_separation(
        _untrained("oda", configs["oda"], dataset, probe, args.seed), seed=args.seed))
    print(f"ODA posterior on the training tasks' demos: KL {latent['kl_nats']:.3f} nats, task "
          f"named from z {latent['task_accuracy']:.2f} (chance {latent['chance']:.2f}), "
          f"between/within spread {latent['between_over_within']:.1f}; untrained encoder: "
          f"KL {untrained['kl_nats']:.3f}, task named {untrained['task_accuracy']:.2f}, "
          f"spread {untrained['between_over_within']:.1f}")
    rows = []
    for task in tasks:
        other_task = shuffled_context_task(task)
        env_kwargs = _paper004_env(task)
        row: dict[str, Any] = {"task": task}
        for method, path in paths.items():
            row[method] = _json(out / method / f"{task}.json",
                                lambda m=method, p=path, t=task, o=other_task, kw=env_kwargs:
                                _paper004_task(m, p, t, o, kw, args))
        row["straight_down"] = _json(out / "straight_down" / f"{task}.json",
                                     lambda t=task: straight_down_task(t, args))
        rows.append(row)
    print(f"paper 004 Fig. 3 (paper: successes/100 after demos only; ours: "
          f"successes/{args.eval_episodes}, pretrain {args.pretrain_steps} steps)")
    print(f"{'task':16s} {'paper ODA':>9s} {'paper AWAC':>10s} {'ODA':>6s} {'AWAC':>6s} "
          f"{'ODA, other task demos':>21s}" + ("  ODA ft  AWAC ft" if args.finetune_steps else "")
          + "  straight down (scripted)")
    wins = 0
    for row in rows:
        paper = PAPER004_FIG3.get(row["task"], ("-", "-"))
        oda, awac = (row[m]["adapted"]["successes"] for m in ("oda", "awac"))
        wins += row["task"] in PAPER004_FIG3 and oda >= awac
        shuffled = row["oda"]["shuffled_context"]
        line = (f"{row['task']:16s} {paper[0]!s:>9s} {paper[1]!s:>10s} {oda:6d} {awac:6d} "
                f"{shuffled['successes']:6d} ({shuffled['context_task']:>12s})")
        if args.finetune_steps:
            line += "".join(f" {row[m]['finetuned']['successes']:7d}" for m in ("oda", "awac"))
        print(line + f" {row['straight_down']['successes']:25d}")
    tested = sum(r["task"] in PAPER004_FIG3 for r in rows)
    print(f"ODA >= AWAC on {wins} of {tested} test tasks (paper: 8 of 9; target >= 7 of 9)")
    above = sum(r["oda"]["adapted"]["successes"] > r["straight_down"]["successes"]
                for r in rows if r["task"] in PAPER004_FIG3)
    print(f"ODA above the scripted straight-down push on {above} of {tested} test tasks")
    right = sum(r["oda"]["adapted"]["successes"] > r["oda"]["shuffled_context"]["successes"]
                for r in rows)
    wrong = sum(r["oda"]["adapted"]["successes"] < r["oda"]["shuffled_context"]["successes"]
                for r in rows)
    print(f"ODA with the task's own demos beats another task's demos on {right} of {len(rows)} "
          f"tasks, loses on {wrong}")
    if args.finetune_steps:
        for method in ("oda", "awac"):
            kept = sum(r[method]["finetuned"]["successes"] >= r[method]["adapted"]["successes"]
                       for r in rows)
            print(f"{method}: after {args.finetune_steps} online steps at least as good as "
                  f"before on {kept} of {len(rows)} tasks")


def classifier_episodes(env: gym.Env, episodes: int, seed: int) -> dict[str, Any]:
    """Fresh noisy-expert episodes (p = 0.2 random actions, as the recipe) on ``env``: every
    s' (``next_obs``, a dict of (N, ...) arrays), its true success (N,) bool and its insertion
    depth [mm] (N,). Episodes are seeded by ``seed`` + 77, apart from the recipe's seeds."""
    from benchmark.datasets import attempt_seeds, run_episode

    expert = make_base_policy(env)
    next_obs: dict[str, list[np.ndarray]] = {}
    success, depth = [], []
    for i in range(episodes):
        env_seed, rng = attempt_seeds(seed + 77, i)
        episode = run_episode(env, expert, env_seed, rng, 0.2)
        for k, v in episode.items():
            if k.startswith("obs/"):
                next_obs.setdefault(k[4:], []).append(v[1:])
        success.append(episode["info/is_success"][1:] > 0.5)
        depth.append(episode["info/insertion_depth_mm"][1:])
    return {"next_obs": {k: np.concatenate(v) for k, v in next_obs.items()},
            "success": np.concatenate(success), "depth_mm": np.concatenate(depth)}


def classifier_scores(probability: np.ndarray, success: np.ndarray,
                      threshold: float) -> dict[str, float]:
    """Balanced accuracy of R_psi(s') >= ``threshold`` against the true ``success``, its
    true-positive / true-negative rates and the false-positive rate (failed states called
    successes) and false-negative rate (successes called failures); NaN where a class is
    absent."""
    predicted = probability >= threshold
    y = np.asarray(success, bool)
    tpr = float(predicted[y].mean()) if y.any() else float("nan")
    tnr = float((~predicted[~y]).mean()) if (~y).any() else float("nan")
    return {"balanced_accuracy": (tpr + tnr) / 2, "true_positive_rate": tpr,
            "true_negative_rate": tnr, "false_positive_rate": 1.0 - tnr,
            "false_negative_rate": 1.0 - tpr, "positives": int(y.sum()),
            "negatives": int((~y).sum())}


def _classifier_accuracy(agent: Any, env: gym.Env, episodes: int, seed: int) -> dict[str, float]:
    """Balanced accuracy of R_psi(s') against the true success on noisy-expert episodes."""
    data = classifier_episodes(env, episodes, seed)
    return classifier_scores(agent.success_probability(data["next_obs"]), data["success"],
                             agent.config.classifier_threshold)


def _paper001_connector(path: Path, connector: str, env_kwargs: dict,
                        args: argparse.Namespace) -> dict[str, Any]:
    """Classifier accuracy, zero-shot success, classifier-rewarded finetuning, success."""
    env = make_env(f"InsertBench/Connector-{connector}-{args.version}", env_kwargs)
    agent = load_agent(path)
    torch.manual_seed(args.seed)
    result = {
        "classifier": _classifier_accuracy(agent, env, args.classifier_episodes, args.seed),
        "offline": summarize(evaluate(env, agent, args.eval_episodes)),
    }
    result["finetune"] = lotj_finetune(f"InsertBench/Connector-{connector}-{args.version}",
                                       env_kwargs, agent, args.online_trials * PAPER001_STEPS,
                                       args.seed)
    # trials that ended on a success of R_psi (LOTJ's own verdict; training_successes: the env's)
    result["finetune"]["classifier_successes"] = agent.online_trials_classifier_success
    result["online"] = summarize(evaluate(env, agent, args.eval_episodes))
    env.close()
    return result


def _sac_connector(path: Path, lotj_path: Path, connector: str, env_kwargs: dict,
                   args: argparse.Namespace) -> dict[str, Any]:
    """SAC from vision: zero-shot success, finetuning rewarded by LOTJ's reward classifier
    (the same R_psi that LOTJ finetunes on; the learner never sees the env's reward), success."""
    env = make_env(f"InsertBench/Connector-{connector}-{args.version}", env_kwargs)
    practice = _practice_env(connector, env_kwargs, args)
    agent, lotj = load_agent(path), load_agent(lotj_path)
    torch.manual_seed(args.seed)
    result = {"offline": summarize(evaluate(env, agent, args.eval_episodes)),
              "finetune": _finetune(practice, agent, args.online_trials * PAPER001_STEPS,
                                    args.seed, lotj.classifier_success)}
    result["online"] = summarize(evaluate(env, agent, args.eval_episodes))
    env.close()
    practice.close()
    return result


def _offline_eval(path: Path, connector: str, env_kwargs: dict,
                  args: argparse.Namespace) -> dict[str, Any]:
    """Success of the checkpoint at ``path`` (no finetuning) on ``connector``."""
    env = make_env(f"InsertBench/Connector-{connector}-{args.version}", env_kwargs)
    summary = summarize(evaluate(env, load_agent(path), args.eval_episodes))
    env.close()
    return summary


def _localize_eval(path: Path, connector: str, search: str, env_kwargs: dict,
                   args: argparse.Namespace) -> dict[str, Any]:
    """Success of the localizer (+ a search) on a held-out connector."""
    env = make_env(f"InsertBench/Connector-{connector}-{args.version}", env_kwargs)
    meta = json.loads((path / "agent.json").read_text())
    agent = make_agent("localize", env.observation_space, env.action_space,
                       meta["config"] | {"search": search}, seed=args.seed)
    agent.load_state(path, meta)
    summary = summarize(evaluate(env, agent, args.eval_episodes))
    env.close()
    return summary


def lotj_config(pretrain_steps: int, batch_size: int,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """LOTJ as ``bench_paper001`` trains it: IQL + DAIB on the wrist image, its reward
    classifier (DAIB too) trained for as many steps as IQL; then ``overrides`` (IQLConfig
    fields, ``--lotj-config``)."""
    return {"daib": True, "reward_classifier": True, "pretrain_steps": pretrain_steps,
            "classifier_steps": pretrain_steps, "batch_size": batch_size,
            "obs_keys": ("wrist",)} | (overrides or {})


def parse_lotj_config(items: list[str] | None, pretrain_steps: int,
                      batch_size: int) -> dict[str, str]:
    """``--lotj-config`` items ``KEY=VALUE`` -> IQLConfig overrides (strings, converted by the
    config); ValueError (one line) for a malformed item, an unknown field or a bad value."""
    from agents.config import build_config
    from agents.iql import IQLConfig

    overrides = parse_key_values(items, "--lotj-config")
    try:
        build_config(IQLConfig, lotj_config(pretrain_steps, batch_size, overrides))
    except TypeError as err:
        raise ValueError(str(err)) from err
    return overrides


def paper001_eval_env(connector: str, version: str) -> gym.Env:
    """A paper 001 connector as ``bench_paper001`` evaluates it: +-10 mm start, 20 steps."""
    return make_env(f"InsertBench/Connector-{connector}-{version}",
                    PAPER001_ENV | {"max_episode_steps": PAPER001_STEPS,
                                    "init_offset_mm": [0.0, 10.0]})


def bench_paper001(args: argparse.Namespace) -> None:
    dataset = load_recipe(args.data)
    out = Path(args.out)
    connectors = args.tasks or list(PAPER001_TABLE1)
    env_kwargs = PAPER001_ENV | {"max_episode_steps": PAPER001_STEPS,
                                 "init_offset_mm": [0.0, 10.0]}
    probe = make_env(f"InsertBench/Connector-DT12-{args.version}", env_kwargs)
    methods = set(getattr(args, "methods", None) or PAPER001_METHODS)
    if methods & {"lotj", "sac"}:
        overrides = parse_lotj_config(getattr(args, "lotj_config", None), args.pretrain_steps,
                                      args.batch_size)
        path = _pretrained("iql", lotj_config(args.pretrain_steps, args.batch_size, overrides),
                           dataset, probe, out, args.seed)
    if "localize" in methods or "state_iql" in methods:
        localizer = _pretrained("localize", {"pretrain_steps": args.pretrain_steps}, dataset,
                                probe, out, args.seed)
    if "state_iql" in methods:
        state_iql = _pretrained("state_iql", {"pretrain_steps": args.pretrain_steps,
                                              "localize_steps": args.pretrain_steps,
                                              "batch_size": args.batch_size}, dataset, probe,
                                out, args.seed)
    if "lotj" in methods:
        _print_lotj(args, out, path, connectors, env_kwargs)
    if "sac" in methods:
        _print_sac(args, out, path, connectors, env_kwargs, dataset, probe)
    if "localize" in methods:
        _print_localize(args, out, localizer, connectors, env_kwargs)
    if "state_iql" in methods:
        _print_state_iql(args, out, state_iql, connectors, env_kwargs)
    if "lotj" in methods:
        rows = [(c, _json(out / "iql" / f"{c}.json", None)) for c in connectors]
        better = sum(r["online"]["successes"] > r["offline"]["successes"] for _, r in rows)
        above = sum(r["online"]["success_rate"] > 0.75 for _, r in rows)
        claim = sum(r["classifier"]["balanced_accuracy"] > r["offline"]["success_rate"]
                    for _, r in rows)
        print(f"online > offline on {better} of {len(rows)}; online > 75% on {above} of "
              f"{len(rows)}; classifier accuracy > zero-shot success on {claim} of {len(rows)}")


def _print_lotj(args: argparse.Namespace, out: Path, path: Path, connectors: list[str],
                env_kwargs: dict) -> None:
    """LOTJ's rows: classifier accuracy, offline and online success per connector, and its
    offline success on the training-check connectors."""
    rows = []
    for connector in connectors:
        rows.append((connector, _json(out / "iql" / f"{connector}.json",
                                      lambda c=connector: _paper001_connector(path, c, env_kwargs,
                                                                              args))))
    print(f"paper 001 Tables I and IV at +-10 mm (paper: k/20, real robot; ours: "
          f"k/{args.eval_episodes}, pretrain {args.pretrain_steps} steps, "
          f"online {args.online_trials} x {PAPER001_STEPS} env steps)")
    if parse_key_values(getattr(args, "lotj_config", None),
                       "--lotj-config").get("online_reward") == "ground_truth":
        print("ORACLE CONTROL, not paper 001: LOTJ's online phase is rewarded by the "
              "simulator's success (online_reward=ground_truth), not by R_psi")
    print(f"{'connector':10s} {'paper off':>9s} {'paper on':>8s} {'off':>4s} {'on':>4s} "
          f"{'R acc':>6s} (paper R acc {PAPER001_CLASSIFIER_ACCURACY:.2f})")
    for connector, r in rows:
        paper = PAPER001_TABLE1.get(connector, ("-", "-"))
        print(f"{connector:10s} {paper[0]!s:>9s} {paper[1]!s:>8s} "
              f"{r['offline']['successes']:4d} {r['online']['successes']:4d} "
              f"{r['classifier']['balanced_accuracy']:6.2f}   successes while finetuning: true "
              f"{r['finetune']['training_successes']}/{r['finetune']['training_episodes']}, "
              f"R_psi's {r['finetune'].get('classifier_successes', '-')}")
    trained = {c: _json(out / "iql" / f"training-{c}.json",
                        lambda c=c: _offline_eval(path, c, env_kwargs, args))
               for c in PAPER001_TRAINING_CHECK if c in recipe_connectors(args.data)}
    print("LOTJ offline on training connectors (in distribution), successes/"
          f"{args.eval_episodes} at +-10 mm: " + ", ".join(
              f"{c} {r['successes']}" for c, r in trained.items()))


def _print_sac(args: argparse.Namespace, out: Path, lotj: Path, connectors: list[str],
               env_kwargs: dict, dataset: dict, probe: gym.Env) -> None:
    """SAC from vision's rows, finetuned on LOTJ's (``lotj``) reward classifier."""
    # Paper 001's SAC baseline: SAC from the wrist image (no DAIB), trained offline on the same
    # data, finetuned from its policy (no random warm-up) on LOTJ's learned reward.
    sac = _pretrained("sac", {"pretrain_steps": args.pretrain_steps, "batch_size": args.batch_size,
                              "obs_keys": ("wrist",), "random_steps": 0, "learning_starts": 0,
                              "buffer_size": len(dataset["action"])
                              + args.online_trials * PAPER001_STEPS}, dataset, probe, out,
                      args.seed)
    sac_rows = [(c, _json(out / "sac" / f"{c}.json",
                          lambda c=c: _sac_connector(sac, lotj, c, env_kwargs, args)))
                for c in connectors]
    print(f"SAC from vision, offline and after {args.online_trials} x {PAPER001_STEPS} online "
          f"env steps rewarded by "
          f"LOTJ's classifier: successes/{args.eval_episodes} at +-10 mm (paper: /20, Table I)")
    for connector, r in sac_rows:
        paper = PAPER001_SAC.get(connector, ("-", "-"))
        print(f"SAC            {connector:10s} ours {r['offline']['successes']:>3d} -> "
              f"{r['online']['successes']:<3d} paper {paper[0]} -> {paper[1]}  (true successes "
              f"while finetuning: {r['finetune']['training_successes']}/"
              f"{r['finetune']['training_episodes']})")


def _print_localize(args: argparse.Namespace, out: Path, localizer: Path, connectors: list[str],
                    env_kwargs: dict) -> None:
    """The localizer's rows (+ each search after moving to its estimate), both offsets."""
    print("Localize (+ search after moving to its estimate): successes/"
          f"{args.eval_episodes} (paper: /20, Table I | Table II)")
    for search in ("none", "straight_down", "random_search", "spiral_search"):
        for connector in connectors:
            counts = []
            for scenario, offset in SCENARIOS.items():
                if search != "none" and scenario == "+-10 mm":
                    counts.append("-")  # the paper's searches at +-10 mm start without it
                    continue
                result = _json(out / "localize" / f"{search}-{connector}-{offset[0]:g}.json",
                               lambda c=connector, o=offset, s=search:
                               _localize_eval(localizer, c, s, env_kwargs | {"init_offset_mm": o},
                                              args))
                counts.append(str(result["successes"]))
            paper = PAPER001_LOCALIZE.get((search, connector), ("-", "-"))
            print(f"{search:14s} {connector:10s} ours {' | '.join(counts):>9s}   paper "
                  f"{'-' if search != 'none' else paper[0]} | {paper[1]}")


def _print_state_iql(args: argparse.Namespace, out: Path, state_iql: Path,
                     connectors: list[str], env_kwargs: dict) -> None:
    """State-IQL's offline rows at both offsets."""
    print(f"State-IQL offline (IQL on the socket offset, the localizer's estimate when acting):"
          f" successes/{args.eval_episodes} at +-10 | 10-20 mm (paper: /20, Tables I | II)")
    for connector in connectors:
        counts = [str(_json(out / "state_iql" / f"{connector}-{offset[0]:g}.json",
                            lambda c=connector, o=offset:
                            _offline_eval(state_iql, c, env_kwargs | {"init_offset_mm": o},
                                            args))["successes"])
                  for offset in SCENARIOS.values()]
        paper = PAPER001_STATE_IQL.get(connector, ("-", "-"))
        print(f"State-IQL      {connector:10s} ours {' | '.join(counts):>9s}   paper "
              f"{paper[0]} | {paper[1]}")


#: Integer arguments and their least allowed value.
COUNT_ARGS = {"seed": 0, "pretrain_steps": 0, "batch_size": 1, "eval_episodes": 1,
              "finetune_steps": 0, "online_trials": 0, "classifier_episodes": 1, "threads": 1}
def _data_from_preset(preset: dict[str, Any], out: Path) -> Path:
    """Collect (or resume) the preset's recipe under ``out/data``."""
    from benchmark.recipes import collect_recipe

    data = out / "data"
    collect_recipe(preset["paper"], data, progress=False, **preset.get("recipe", {}))
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("paper", nargs="?", choices=["paper001", "paper004"],
                        help="the paper (or give --preset)")
    parser.add_argument("--preset", help=f"an offline preset ({', '.join(offline_presets())}) "
                        "or a TOML path: sets the paper, the data recipe and the defaults")
    parser.add_argument("--data", type=Path,
                        help="an `insertbench dataset recipe` output folder (default with "
                        "--preset: <out>/data, collected or resumed first)")
    parser.add_argument("--out", type=output_dir, required=True,
                        help="folder of the results (and of the data with --preset)")
    parser.add_argument("--seed", type=int, default=0, help="seed of training and evaluation")
    parser.add_argument("--pretrain-steps", type=int, default=2000,
                        help="offline gradient steps per method")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per gradient step")
    parser.add_argument("--eval-episodes", type=int, default=20,
                        help="evaluation episodes per test task")
    parser.add_argument("--finetune-steps", type=int, default=0, help="paper004 only")
    parser.add_argument("--online-trials", type=int, default=20,
                        help=f"paper001 only: the online budget, in full-length trials: N x "
                        f"{PAPER001_STEPS} env steps (trials that R_psi ends early leave steps "
                        "for more)")
    parser.add_argument("--classifier-episodes", type=int, default=20, help="paper001 only")
    parser.add_argument("--tasks", nargs="+", help="subset of test tasks / connectors")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--methods", nargs="+", choices=PAPER001_METHODS,
                        help="paper001 only: the methods to run (default all; sac pretrains "
                        "LOTJ too, for its reward classifier)")
    parser.add_argument("--lotj-config", action="append", metavar="KEY=VALUE",
                        help="paper001 only: an IQLConfig override of LOTJ (repeatable), e.g. "
                        "policy_online_rows=classifier_success; online_reward=ground_truth "
                        "is an oracle control (the simulator's success rewards LOTJ online)")
    args = parser.parse_args()
    if args.preset:
        try:
            preset = load_offline_preset(args.preset)
        except ValueError as err:
            parser.error(str(err))
        try:  # its values, before any data: a bad one was blamed on --out after the checks
            recipe_parts(preset["paper"], **preset.get("recipe", {}))
        except ValueError as err:
            parser.error(f"{args.preset}: [recipe] {err}")
        if args.paper not in (None, preset["paper"]):
            parser.error(f"preset {args.preset} is for {preset['paper']}, not {args.paper}")
        parser.set_defaults(paper=preset["paper"], **preset.get("bench", {}))
        args = parser.parse_args()  # the preset's values, then the command line's
    # Checked here, before any data is collected or bench.json written (a preset's [bench]
    # values bypass argparse's type=): these ended in tracebacks, some after pretraining.
    for name, low in COUNT_ARGS.items():
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            parser.error(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")
    if args.paper is not None and args.tasks:
        from envs.catalog import CATALOG

        # paper001: the held-out connectors only (its recipe trains on the "train" split, and
        # USBA given was reported as a test row of Tables I and IV)
        known = (list(PAPER004_FIG3) + list(PAPER004_CHALLENGE) if args.paper == "paper004"
                 else sorted(set(CATALOG) - set(paper001_connectors())))
        unknown = sorted(set(args.tasks) - set(known))
        if unknown:  # paper004 dropped them silently, paper001 failed after pretraining
            parser.error(f"--tasks {unknown} are not {args.paper} tasks; known: {known}")
    if args.paper is None or (args.data is None and not args.preset):
        parser.error("give the paper and --data, or --preset")
    if args.methods and args.paper != "paper001":
        parser.error("--methods applies to paper001 only")
    # The other paper's budgets were accepted, stored in bench.json and then made the doc's
    # own command a run of "other settings" (a preset's [bench] values count as given too).
    other = ({"online_trials": 20, "classifier_episodes": 20} if args.paper == "paper004"
             else {"finetune_steps": 0})
    for name, default in other.items():
        if getattr(args, name) != default:
            parser.error(f"--{name.replace('_', '-')} does not apply to {args.paper}")
    if args.lotj_config:
        if args.paper != "paper001":
            parser.error("--lotj-config applies to paper001 only")
        try:
            parse_lotj_config(args.lotj_config, args.pretrain_steps, args.batch_size)
        except ValueError as err:
            parser.error(str(err))
    if args.data is None:  # the preset's recipe, collected (or resumed) after every check
        from benchmark.folder_lock import RunInProgress

        try:  # another recipe or other dynamics in <out>/data was a traceback
            args.data = _data_from_preset(preset, args.out)
        except (ValueError, RunInProgress) as err:
            parser.error(" ".join(str(err).split())
                         + f" (its data is {args.out / 'data'}: give another --out)")
    try:  # else a FileNotFoundError traceback after bench.json was written
        check_recipe(args.data, args.paper)
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads)
    _check_args(args.out, args)
    args.version = recipe_version(args.data)  # the tasks the data was recorded on
    report = io.StringIO()
    # A recipe of 2 of paper 004's 11 training connectors was reported as paper 004's Fig. 3.
    paper_set = paper001_connectors() if args.paper == "paper001" else paper004_connectors()
    left_out = [c for c in paper_set if c not in recipe_connectors(args.data)]
    if left_out:
        note = (f"note: --data {args.data} holds {len(paper_set) - len(left_out)} of the "
                f"{len(paper_set)} training connectors of {args.paper}'s setting (without "
                f"{', '.join(left_out[:4])}{', ...' if len(left_out) > 4 else ''}): not the "
                "paper's setting")
        print(note, file=report)  # its first line, printed with the report
    # The data's version is pinned: Gymnasium's "out of date" advice is for a stale ID typed.
    try:
        with contextlib.redirect_stdout(report), pinned_versions():
            (bench_paper001 if args.paper == "paper001" else bench_paper004)(args)
    except ValueError as err:  # the data, a damaged stage: one line, as `insertbench` prints
        raise SystemExit(f"{parser.prog}: error: {' '.join(str(err).split())}") from None
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted (the same command resumes from the stages done)",
              file=sys.stderr)
        raise SystemExit(130) from None
    (args.out / "report.txt").write_text(report.getvalue())
    print(report.getvalue(), end="")


if __name__ == "__main__":
    main()
