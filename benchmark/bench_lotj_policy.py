"""Why LOTJ's offline image policy fails: its actor alone, trained by regression on the recipe.

    python -m benchmark.bench_lotj_policy --data runs/data/p001v1 --loss mse --steps 3000
    python -m benchmark.bench_lotj_policy --data runs/data/p001v1 --loss nll --daib --steps 3000
    python -m benchmark.bench_lotj_policy --data runs/data/p001v1 --loss mse --steps 3000 \
        --config policy_color_jitter=0.4

Trains only the policy of ``agents.iql`` (the same wrist-image CNN, batch, random-shift
augmentation and learning rate) on a paper 001 recipe's recorded actions, the p = 0.2 random
actions included, with advantage weights fixed at 1 (what IQL's weights are on this data, see
docs/results/offline.md): ``--loss mse`` regresses the mean, ``--loss nll`` maximises the
Gaussian likelihood as IQL's policy extraction does; ``--daib`` adds DAIB as LOTJ does;
``--config KEY=VALUE`` overrides the IQLConfig whose settings it uses (e.g.
``policy_color_jitter``: colour jitter on the training images, as LOTJ applies it to its offline
rows; IQLConfig's default 0.4, so ``--config policy_color_jitter=0`` trains as this tool did
before that default). Then runs the policy mean on training and unseen connectors at +-10 mm and
prints, per connector, the successes, the mean |action - expert action| per axis at the visited
states (the expert is the P-controller on the true socket) and the final lateral error [mm].

    python -m benchmark.bench_lotj_policy --finetune runs/p001-5k/iql/pretrained \
        --connector Europlug --trials 200

instead takes a pretrained LOTJ checkpoint (e.g. from ``bench_offline``) to one connector: its
success with the policy mean and with the ``exploration_std`` samples that finetuning draws,
then ``--trials`` trials of finetuning rewarded by its own classifier, each ending on its
verdict or the time limit (``bench_offline.lotj_finetune``), the true successes among them,
and the success after; ``--online-fraction 0`` is the control (the same trials and gradient
steps, every batch from the offline data). Figures, not tests.

    python -m benchmark.bench_lotj_policy --data runs/data/p001v1 --classifier --seed 0 \
        [--config classifier_color_jitter=0]

trains only LOTJ's reward classifier R_psi (``bench_offline``'s IQL config and random streams,
no IQL steps: at the same seed and ``--steps`` = its ``--pretrain-steps`` the very classifier of
its LOTJ run) with optional IQLConfig overrides, and scores it on 20 fresh noisy-expert
episodes of each unseen and training-check connector (the episodes ``bench_offline --seed 0``
uses, whatever ``--seed``): balanced accuracy, false-positive rate (failed states called
successes), false-negative rate, ROC AUC (threshold-free ranking) and the mean R_psi(s') of
successes, of failed states within 3 mm of the success depth and of the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

import numpy as np
import torch

from agents.daib import DAIB, BottleneckEncoder
from agents.iql import IQLConfig, Policy
from agents.networks import ObsEncoder, color_jitter, random_shift
from benchmark.bench_offline import PAPER001_TABLE1, PAPER001_TRAINING_CHECK
from benchmark.recipes import PAPER001_ENV, PAPER001_STEPS, load_recipe, recipe_version
from benchmark.script_args import doc_summary
from benchmark.train import make_base_policy, make_env


def train_policy(dataset: dict, space, loss: str, daib: bool, steps: int, batch_size: int,
                 seed: int, config: IQLConfig | None = None) -> Policy:
    """The IQL actor (``config``, default ``IQLConfig()``: its CNN size, DAIB sizes, learning
    rate, random-shift padding and ``policy_color_jitter``) trained by regression on the
    dataset's actions; images random-shifted, then colour-jittered if ``policy_color_jitter``
    > 0, as LOTJ's offline rows are."""
    cfg = config or IQLConfig()
    torch.manual_seed(seed)
    encoder = ObsEncoder(space, ("wrist",), cfg.image_feature_dim)
    bottleneck = DAIB(encoder.out_dim, cfg.daib_invariant_dim, cfg.daib_specific_dim,
                      cfg.num_domains, cfg.daib_kl_weight,
                      cfg.daib_adversarial_weight) if daib else None
    policy = Policy(BottleneckEncoder(encoder, bottleneck), 3, cfg.hidden)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.actor_lr)
    rng = np.random.default_rng(seed)
    actions = torch.as_tensor(np.clip(dataset["action"], -1, 1), dtype=torch.float32)
    images, domains = dataset["obs"]["wrist"], torch.as_tensor(dataset["task_id"])
    for _ in range(steps):
        rows = rng.integers(0, len(actions), batch_size)
        obs = {"wrist": color_jitter(random_shift(torch.as_tensor(images[rows]), cfg.augment_pad),
                                     cfg.policy_color_jitter)}
        z, z_inv, kl = policy.encoder(obs, sample=True)
        if loss == "mse":
            fit = ((policy.head(z, deterministic=True) - actions[rows]) ** 2).sum(-1).mean()
        else:
            fit = -policy.head.log_prob(z, actions[rows]).mean()
        aux, _ = policy.encoder.aux_loss(z_inv, kl, domains[rows])
        opt.zero_grad(set_to_none=True)
        (fit + aux).backward()
        opt.step()
    return policy


def closed_loop(policy: Policy, connector: str, version: str, episodes: int) -> dict[str, float]:
    """Successes, mean |a - a_expert| per axis and final lateral error [mm] of the mean action."""
    env = make_env(f"InsertBench/Connector-{connector}-{version}",
                   PAPER001_ENV | {"max_episode_steps": PAPER001_STEPS,
                                   "init_offset_mm": [0.0, 10.0]})
    expert = make_base_policy(env)
    successes, errors, lateral = 0, [], []
    for episode in range(episodes):
        obs, info = env.reset(seed=10_000_000 + episode)
        for _ in range(PAPER001_STEPS):
            with torch.no_grad():
                z, _, _ = policy.encoder({"wrist": torch.as_tensor(obs["wrist"][None])},
                                         sample=False)
                action = policy.head(z, deterministic=True)[0].numpy()
            errors.append(np.abs(action - expert(obs)))
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        successes += bool(info["is_success"])
        base = env.unwrapped
        offset = base.start_mat.T @ (base.tcp_pos - base.believed_goal_pos)
        lateral.append(1000.0 * float(np.linalg.norm(offset[:2])))
    env.close()
    return {"successes": successes,
            "action_error": [round(float(e), 2) for e in np.mean(errors, 0)],
            "lateral_mm": round(float(np.mean(lateral)), 1)}


class _Sampled:
    """An agent acting as it does in finetuning trials (``deterministic=False``), for evaluate."""

    def __init__(self, agent: Any):
        self.agent = agent

    def act(self, obs: dict[str, np.ndarray], deterministic: bool) -> np.ndarray:
        return self.agent.act(obs, deterministic=False)

    def reset(self, seed: int | None = None) -> None:
        self.agent.reset(seed=seed)


def advantage_weights(agent: Any, rows: int = 2000, seed: int = 0) -> dict[str, Any]:
    """IQL's advantage weights exp(beta A) (capped) on ``rows`` of the agent's offline data:
    percentiles (1, 5, 50, 95, 99) of A and of the weights, and the effective batch fraction
    (sum w)^2 / (n sum w^2) (1: every row counts alike, i.e. behaviour cloning)."""
    batch, _ = agent.offline.sample(rows, np.random.default_rng(seed))
    b = agent._to_torch(batch, augment=False)
    with torch.no_grad():
        q = agent.target_critic(b["obs"], b["action"]).min(dim=0).values
        advantage = (q - agent.value(b["obs"])).numpy()
    weights = np.minimum(np.exp(agent.config.beta * advantage), agent.config.exp_adv_max)
    levels = [1, 5, 50, 95, 99]
    return {"advantage": np.percentile(advantage, levels).round(3).tolist(),
            "weight": np.percentile(weights, levels).round(2).tolist(),
            "effective_fraction": round(float(weights.sum() ** 2 / (weights**2).sum()
                                              / len(weights)), 3)}


def finetune_overrides(beta: float | None, online_fraction: float | None) -> dict[str, float]:
    """The IQL config fields that finetuning overrides (those given), checked by IQLConfig's own
    validation: ValueError naming the field, before anything is loaded."""
    overrides = {k: v for k, v in (("beta", beta), ("online_fraction", online_fraction))
                 if v is not None}
    IQLConfig(**overrides).validate()
    return overrides


def finetune_check(checkpoint: str, connector: str, version: str, trials: int,
                   episodes: int, seed: int, beta: float | None = None,
                   online_fraction: float | None = None) -> dict[str, Any]:
    """Mean and sampled success, classifier-rewarded finetuning (with IQL's inverse temperature
    set to ``beta`` and its online share of each batch to ``online_fraction`` if given; 0 is
    the control: the same trials and gradient steps, on the offline data only), success
    after."""
    from agents import load_agent
    from benchmark.bench_offline import lotj_finetune
    from benchmark.evaluate import evaluate
    from envs.episode import summarize

    overrides = finetune_overrides(beta, online_fraction)
    task_id = f"InsertBench/Connector-{connector}-{version}"
    env_kwargs = PAPER001_ENV | {"max_episode_steps": PAPER001_STEPS,
                                 "init_offset_mm": [0.0, 10.0]}
    env = make_env(task_id, env_kwargs)
    agent = load_agent(checkpoint)
    for field, value in overrides.items():
        setattr(agent.config, field, value)
    torch.manual_seed(seed)
    result: dict[str, Any] = {
        "weights": advantage_weights(agent, seed=seed),
        "mean": summarize(evaluate(env, agent, episodes))["successes"],
        "sampled": summarize(evaluate(env, _Sampled(agent), episodes))["successes"]}
    started = time.process_time()
    result["finetune"] = lotj_finetune(task_id, env_kwargs, agent, trials * PAPER001_STEPS,
                                       seed)
    result["finetune_cpu_s"] = round(time.process_time() - started)
    result["finetuned"] = summarize(evaluate(env, agent, episodes))["successes"]
    env.close()
    return result


def train_classifier(dataset: dict, observation_space, action_space, steps: int,
                     batch_size: int, seed: int, overrides: dict[str, Any] | None = None) -> Any:
    """LOTJ's reward classifier alone: the IQL agent ``bench_offline`` pretrains (the same
    config, construction order and random streams, ``overrides`` applied to its IQLConfig),
    with ``steps`` classifier steps and no IQL steps. With no overrides, seed s and ``steps``
    = ``bench_offline``'s ``--pretrain-steps``, R_psi is the classifier of its LOTJ run."""
    from agents import make_agent
    from benchmark.bench_offline import lotj_config

    config = lotj_config(0, batch_size) | {"classifier_steps": steps} | (overrides or {})
    torch.manual_seed(seed)
    agent = make_agent("iql", observation_space, action_space, config, seed=seed)
    agent.pretrain(dataset)
    return agent


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count half); threshold-free, so 1.0 with every score on one side of 0.5 is
    a perfect ranking that only the threshold spoils. NaN where a class is absent."""
    score, positive = np.asarray(score, float), np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return float("nan")
    pos, neg = score[positive], score[~positive]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def classifier_data(connector: str, version: str, episodes: int,
                    eval_seed: int = 0) -> dict[str, Any]:
    """``episodes`` fresh noisy-expert episodes of ``connector`` at +-10 mm, the episodes on
    which ``bench_offline --seed eval_seed`` scores the classifier (see
    ``bench_offline.classifier_episodes``)."""
    from benchmark.bench_offline import classifier_episodes, paper001_eval_env

    env = paper001_eval_env(connector, version)
    data = classifier_episodes(env, episodes, eval_seed)
    env.close()
    return data


def classifier_check(agent: Any, connector: str, data: dict[str, Any]) -> dict[str, Any]:
    """R_psi on ``data`` of ``connector`` (from ``classifier_data``): balanced accuracy, true /
    false positive and negative rates, and the mean R_psi(s') of the successes, of the failed
    states within 3 mm of the connector's success depth ("near": partly inserted) and of the
    other failed states ("far")."""
    from benchmark.bench_offline import classifier_scores
    from envs.catalog import CATALOG

    p = agent.success_probability(data["next_obs"])
    y = data["success"]
    near = ~y & (data["depth_mm"] >= CATALOG[connector].spec.success_depth_mm - 3.0)

    def mean(mask: np.ndarray) -> float:
        return round(float(p[mask].mean()), 3) if mask.any() else float("nan")

    return classifier_scores(p, y, agent.config.classifier_threshold) | {
        "auc": round(roc_auc(p, y), 3), "p_success": mean(y), "p_near": mean(near),
        "p_far": mean(~y & ~near), "near": int(near.sum())}


def parse_overrides(items: list[str] | None) -> dict[str, str] | str:
    """``--config KEY=VALUE`` strings -> {key: value}; an error line (str) for a malformed item."""
    from benchmark.cli_options import parse_key_values

    try:
        return parse_key_values(items, "--config")
    except ValueError as err:
        return str(err)


def classifier_overrides(items: list[str] | None, steps: int,
                         batch_size: int) -> dict[str, str] | str:
    """``KEY=VALUE`` strings -> IQLConfig overrides, checked against LOTJ's config as
    ``train_classifier`` builds it; an error line (str) for a malformed item, an unknown field
    or a value out of range."""
    from agents.config import build_config
    from benchmark.bench_offline import lotj_config

    overrides = parse_overrides(items)
    if isinstance(overrides, str):
        return overrides
    config = lotj_config(0, batch_size) | {"classifier_steps": steps} | overrides
    try:
        build_config(IQLConfig, config).validate()
    except (TypeError, ValueError) as err:
        return str(err)
    return overrides


#: The IQLConfig fields `train_policy` reads: any other was printed as applied and ignored
#: (`device=cuda` ran on the CPU, bench18).
POLICY_FIELDS = ("image_feature_dim", "daib_invariant_dim", "daib_specific_dim", "num_domains",
                 "daib_kl_weight", "daib_adversarial_weight", "hidden", "actor_lr", "augment_pad",
                 "policy_color_jitter")


def policy_config(items: list[str] | None) -> IQLConfig | str:
    """``KEY=VALUE`` strings -> the IQLConfig (defaults plus overrides) that ``train_policy``
    uses; an error line (str) for a malformed item, an unknown field, one the policy study does
    not read (`POLICY_FIELDS`) or a value out of range."""
    from agents.config import build_config

    overrides = parse_overrides(items)
    if isinstance(overrides, str):
        return overrides
    known = {f.name for f in dataclasses.fields(IQLConfig)}  # unknown ones: build_config's
    unread = sorted(k for k in overrides if k in known and k not in POLICY_FIELDS)
    if unread:
        return (f"--config {', '.join(unread)}: the policy study does not read "
                f"{'it' if len(unread) == 1 else 'them'} (it reads {', '.join(POLICY_FIELDS)})")
    try:
        return build_config(IQLConfig, overrides)
    except (TypeError, ValueError) as err:
        return str(err)


def _print_classifier(args: argparse.Namespace, overrides: dict[str, str]) -> None:
    """``--classifier``: train R_psi alone, print its scores on the unseen and training-check
    connectors."""
    from benchmark.bench_offline import PAPER001_CLASSIFIER_ACCURACY

    steps, episodes = args.steps or 5000, args.episodes or 20
    dataset = load_recipe(args.data)
    version = recipe_version(args.data)
    probe = make_env(f"InsertBench/Connector-DT12-{version}", PAPER001_ENV)
    started = time.process_time()
    agent = train_classifier(dataset, probe.observation_space, probe.action_space, steps,
                             args.batch_size, args.seed, overrides)
    print(f"reward classifier alone, {steps} steps of {args.batch_size}, seed {args.seed}"
          f"{', ' + ' '.join(args.config) if args.config else ''}: "
          f"{time.process_time() - started:.0f} CPU-s; scored on {episodes} noisy-expert "
          f"episodes per connector (paper: balanced accuracy {PAPER001_CLASSIFIER_ACCURACY})")
    print("| connector | balanced acc. | FP rate | FN rate | AUC | mean R: success / near / far |")
    print("|---|---|---|---|---|---|")
    for kind, connectors in (("unseen", tuple(PAPER001_TABLE1)),
                             ("training", PAPER001_TRAINING_CHECK)):
        for connector in connectors:
            r = classifier_check(agent, connector,
                                 classifier_data(connector, version, episodes))
            print(f"| {connector} ({kind}) | {r['balanced_accuracy']:.2f} | "
                  f"{r['false_positive_rate']:.2f} | {r['false_negative_rate']:.2f} | "
                  f"{r['auc']:.2f} | {r['p_success']:.2f} / {r['p_near']:.2f} / "
                  f"{r['p_far']:.2f} |")


def _check_data(parser: argparse.ArgumentParser, data: str) -> None:
    """--data must be a paper 001 recipe folder (it ended in a FileNotFoundError or, for a
    paper 004 recipe, a KeyError 'wrist' traceback)."""
    from benchmark.recipes import check_recipe

    try:
        check_recipe(data, "paper001")
    except ValueError as err:
        parser.error(str(err))


def _check_finetune(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--finetune must be an iql (LOTJ) checkpoint, --connector and --version must exist
    (tracebacks before)."""
    from agents.registry import resolve_agent_dir
    from benchmark.recipes import VERSIONS
    from envs.catalog import CATALOG

    try:
        agent_dir = resolve_agent_dir(args.finetune)
    except FileNotFoundError as err:
        parser.error(str(err))
    agent = json.loads((agent_dir / "agent.json").read_text()).get("agent")
    if agent != "iql":
        parser.error(f"--finetune {args.finetune} holds a {agent} checkpoint, not LOTJ's (iql)")
    if args.connector not in CATALOG:
        parser.error(f"--connector {args.connector!r} is not a catalog connector; known: "
                     f"{sorted(CATALOG)}")
    if args.version not in VERSIONS:
        parser.error(f"--version must be one of {list(VERSIONS)}, got {args.version!r}")


def main() -> None:
    from envs.tasks import pinned_versions

    with pinned_versions():  # the task versions studied are chosen: no "out of date" advice
        _main()


def _main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--data", help="a paper001 `dataset recipe` folder")
    parser.add_argument("--loss", choices=["mse", "nll"],
                        help="the policy study's loss (default mse; not with --classifier or "
                        "--finetune)")
    parser.add_argument("--daib", action="store_true",
                        help="the policy study with DAIB (not with --classifier or --finetune)")
    parser.add_argument("--steps", type=int,
                        help="gradient steps (default 3000; with --classifier 5000, the "
                        "paper001-reduced preset's)")
    parser.add_argument("--batch-size", type=int, default=128, help="rows per gradient step")
    parser.add_argument("--episodes", type=int,
                        help="episodes per connector (default 10; with --classifier 20, "
                        "bench_offline's --classifier-episodes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data order and networks")
    parser.add_argument("--finetune", metavar="CHECKPOINT",
                        help="a pretrained LOTJ checkpoint to finetune instead")
    parser.add_argument("--connector", help="with --finetune: the connector (default Europlug)")
    parser.add_argument("--trials", type=int, help="with --finetune: online trials (default 200)")
    parser.add_argument("--version", help="with --finetune: task version (default v1)")
    parser.add_argument("--beta", type=float,
                        help="with --finetune: IQL's inverse temperature while finetuning")
    parser.add_argument("--online-fraction", type=float,
                        help="with --finetune: online share of each batch (0: the control, "
                        "offline rows only)")
    parser.add_argument("--classifier", action="store_true",
                        help="with --data: train only LOTJ's reward classifier, as bench_offline "
                        "does, and score it on fresh noisy-expert episodes")
    parser.add_argument("--config", action="append", metavar="KEY=VALUE",
                        help="an IQLConfig override (repeatable): with --classifier, e.g. "
                        "classifier_color_jitter=0; with --loss, e.g. policy_color_jitter=0.4")
    args = parser.parse_args()
    # `args.steps or 3000` read an explicit 0 as the default; negatives ended in tracebacks.
    for name, low in (("steps", 1), ("episodes", 1), ("batch_size", 1), ("trials", 0),
                      ("seed", 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    torch.set_num_threads(1)
    # Each was ignored outside its mode (the policy study over all 8 connectors ran with
    # --connector HDMI --trials 7; --classifier ignored --loss and --daib), exit 0.
    modes = {"--connector": (args.connector, "--finetune"), "--trials": (args.trials, "--finetune"),
             "--version": (args.version, "--finetune"), "--beta": (args.beta, "--finetune"),
             "--online-fraction": (args.online_fraction, "--finetune")}
    for option, (value, mode) in modes.items():
        if value is not None and not args.finetune:
            parser.error(f"{option} applies with {mode} only")
    if (args.loss is not None or args.daib) and (args.classifier or args.finetune):
        parser.error("--loss and --daib apply to the policy study only (not with --classifier "
                     "or --finetune)")
    args.loss = args.loss or "mse"
    args.connector = args.connector or "Europlug"
    args.trials = 200 if args.trials is None else args.trials
    args.version = args.version or "v1"
    if args.config and args.finetune:
        parser.error("--config does not apply with --finetune (see --beta, --online-fraction)")
    if args.classifier:
        if args.data is None or args.finetune:
            parser.error("--classifier needs --data and no --finetune")
        overrides = classifier_overrides(args.config, args.steps or 5000, args.batch_size)
        if isinstance(overrides, str):
            parser.error(overrides)
        _check_data(parser, args.data)
        _print_classifier(args, overrides)
        return
    args.steps = args.steps or 3000
    args.episodes = args.episodes or 10
    if args.finetune:
        try:
            finetune_overrides(args.beta, args.online_fraction)
        except ValueError as err:
            parser.error(str(err))
        _check_finetune(parser, args)
        r = finetune_check(args.finetune, args.connector, args.version, args.trials,
                           args.episodes, args.seed, args.beta, args.online_fraction)
        w = r["weights"]
        print(f"advantage weights on the offline data (beta {args.beta or 'as trained'}): A "
              f"percentiles 1/5/50/95/99 {w['advantage']}, weights {w['weight']}, effective "
              f"batch fraction {w['effective_fraction']}")
        print(f"{args.connector}: policy mean {r['mean']}/{args.episodes}, exploration samples "
              f"{r['sampled']}/{args.episodes}; {args.trials} trials on its classifier "
              f"({r['finetune_cpu_s']} CPU-s): {r['finetune']['training_successes']}/"
              f"{r['finetune']['training_episodes']} true successes; after "
              f"{r['finetuned']}/{args.episodes}")
        return
    if args.data is None:
        parser.error("give --data (or --finetune CHECKPOINT)")
    config = policy_config(args.config)
    if isinstance(config, str):
        parser.error(config)
    _check_data(parser, args.data)
    dataset = load_recipe(args.data)
    probe = make_env(f"InsertBench/Connector-DT12-{recipe_version(args.data)}", PAPER001_ENV)
    started = time.process_time()
    policy = train_policy(dataset, probe.observation_space, args.loss, args.daib, args.steps,
                          args.batch_size, args.seed, config)
    print(f"{args.loss}{' + DAIB' if args.daib else ''}, {args.steps} steps, seed {args.seed}, "
          f"policy_color_jitter {config.policy_color_jitter}"
          f"{', ' + ' '.join(args.config) if args.config else ''}: "
          f"{time.process_time() - started:.0f} CPU-s")
    for kind, connectors in (("training", PAPER001_TRAINING_CHECK),
                             ("unseen", tuple(PAPER001_TABLE1))):
        for connector in connectors:
            r = closed_loop(policy, connector, recipe_version(args.data), args.episodes)
            print(f"{kind:8s} {connector:10s} {r['successes']:2d}/{args.episodes}  "
                  f"|a - expert| {r['action_error']}  final lateral error {r['lateral_mm']} mm")


if __name__ == "__main__":
    main()
