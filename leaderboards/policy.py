"""Running a submitted policy through our own loaders only.

Two kinds: an InsertBench agent checkpoint (``agent.json`` + ``weights.safetensors``, rebuilt
by `agents.load_agent` from the registry: no code from the submission) and an ONNX graph run by
onnxruntime on the CPU. Both are checked before the first episode: finite weights, and spaces
equal to the track task's (a checkpoint made for another observation mode or action mode is
refused, not run).

ONNX contract: one float input per observation key the graph needs, named like the key, shaped
``[1, *obs_shape]`` (batch of one); one output ``[1, action_dim]`` in the normalised action space
[-1, 1]. Graphs with external data files or without a batch-of-one signature are refused.
An ONNX graph runs in a process of its own, killed when one action outlasts
`ACTION_TIME_LIMIT_S` (`leaderboards.onnx_process`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.episode import Policy, PolicyError
from leaderboards.onnx_process import OnnxProcess, OnnxProcessEnded, OnnxTimeout
from leaderboards.submission import MAX_TOTAL_BYTES, SubmissionError

#: The most parameters the agent that a submitted agent.json describes may register while it is
#: built: as many float32 values as a submission's files may hold at most. Its config (hidden
#: widths, critic ensemble size) is the submitter's: `hidden = [30000, 30000]` used to allocate
#: tens of GB before a weight was compared. Default agents register at most ~2.4M (pixel IQL/ODA);
#: target networks are deep copies, not registrations, so the built total stays within ~2.5x.
MAX_AGENT_PARAMETERS = MAX_TOTAL_BYTES // 4
#: The most modules it may register: default agents register at most 124 (pixel VICE); a critic
#: ensemble of `num_qs = 100000` used to keep the evaluator building for many minutes.
MAX_AGENT_MODULES = 10_000

#: The most nodes an ONNX policy may have, its subgraphs' and functions' included: a session
#: is built outside every action's time limit, and for a graph with a seeded random operator
#: once an episode; 1M Identity nodes in an If's dead branch took 200 s and 6.8 GB to build,
#: 150 dev episodes about 8 hours. torch.onnx.export writes tens to a few thousand nodes for
#: policies (a ResNet-50: ~120).
MAX_ONNX_NODES = 10_000
#: The most tensors (initializers and constants, subgraphs' and functions' included) it may
#: hold: the session's build time grows faster than their square whatever they weigh (1-float
#: initializers: 10,000 0.4 s, 40,000 11 s, 200,000 in a 4 MB file over 300 s), and every later
#: submission to the track loads the ranked policies again. torch.onnx.export writes one a
#: weight or bias (a ResNet-50: ~320).
MAX_ONNX_TENSORS = 10_000

_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
                "tensor(uint8)": np.uint8}
#: The ONNX tensor types of floating-point numbers (`onnx.TensorProto`'s), whose NaN the
#: weights check looks for.
_ONNX_FLOATS = ("FLOAT", "DOUBLE", "FLOAT16", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
                "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT4E2M1")


def load_policy(kind: str, path: Path, env: gym.Env) -> Policy:
    """A callable obs -> action for ``env`` from the policy directory ``path``."""
    if kind == "agent":
        return _agent_policy(path, env)
    if kind == "onnx":
        return _onnx_policy(path / "policy.onnx", env)
    raise SubmissionError(f"unknown policy kind {kind!r}")


def _agent_policy(path: Path, env: gym.Env) -> Policy:
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from agents import agent_names, agent_spec, load_agent
    from agents.checkpoint import CHECKPOINT_FORMAT, space_from_json, space_to_json
    from agents.registry import size_budget
    from benchmark.evaluate import AgentPolicy
    from envs import p_controller

    try:
        meta = json.loads((path / "agent.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise SubmissionError(f"{path.name}/agent.json is not valid JSON: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise SubmissionError(f"{path.name}/agent.json is not an InsertBench agent checkpoint "
                              f"(format {CHECKPOINT_FORMAT})")
    name = meta.get("agent")
    if name not in agent_names():
        raise SubmissionError(f"{path.name}/agent.json names agent {name!r}, not a registered "
                              f"agent ({', '.join(agent_names())}); submit an ONNX graph instead")
    for key, kind in (("observation_space", "observation"), ("action_space", "action")):
        declared = _declared_shapes(meta.get(key), f"{path.name}/agent.json {key}")
        wanted = _declared_shapes(space_to_json(getattr(env, key)), "the track task")
        if declared != wanted:  # before the space is built: its bounds are arrays of its shape
            raise SubmissionError(
                f"the policy's {kind} space {_describe_shapes(declared)} is not the track "
                f"task's {_describe_shapes(wanted)}: it was made for another task variant")
    try:
        spaces = {k: space_from_json(meta[k]) for k in ("observation_space", "action_space")}
    except (KeyError, TypeError, ValueError) as err:
        raise SubmissionError(f"{path.name}/agent.json has unreadable spaces: {err}") from None
    _check_spaces(spaces["observation_space"], spaces["action_space"], env)
    try:
        tensors = load_file(str(path / "weights.safetensors"))
    except (SafetensorError, OSError, ValueError) as err:
        raise SubmissionError(f"{path.name}/weights.safetensors is not readable: {err}") from None
    for key, tensor in tensors.items():
        # As the float32 the networks load it into: 1e300 in a float64 tensor is inf there,
        # and torch has no isfinite for float8.
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor.float()).all()):
            raise SubmissionError(f"{path.name}/weights.safetensors: tensor {key} holds NaN or "
                                  "inf values (as float32)")
    kwargs = {"base_policy": p_controller(env)} if agent_spec(name).needs_base_policy else {}
    try:
        with size_budget(MAX_AGENT_PARAMETERS, MAX_AGENT_MODULES, f"{path.name}/agent.json",
                         SubmissionError):
            # Acting only: a full checkpoint's trainer state (its listed replay buffers, row
            # lists) was built too, a million empty buffers from 8 MB of agent.json.
            agent = load_agent(path, allow_policy_only=True, acting_only=True, device="cpu",
                               **kwargs)
    except SubmissionError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, MemoryError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SubmissionError(f"{path.name}: the {name} checkpoint does not load: "
                              f"{first}") from None
    return _held_to_the_period(AgentPolicy(agent), f"{path.name}/weights.safetensors")


class PolicyTooSlow(PolicyError):
    """The policy's mean time an action went past its limit (`_count_action`), or one action
    past `ACTION_TIME_LIMIT_S`: a refusal of the whole evaluation, never one episode's failure
    (the mean counts every action so far, so it would fail each later episode at its first
    step, and both measure the machine's load too)."""


def _held_to_the_period(policy: Policy, what: str) -> Policy:
    """``policy`` stopped by a PolicyError once its mean time an action exceeds
    `AGENT_MEAN_ACTION_TIME_LIMIT_S` (from `MEAN_ACTION_TIME_GRACE` actions on): a 62 MB
    checkpoint of 650-channel convolutions, within every size limit, took 0.56 s an action,
    about 1.5 h for a track's verification."""
    spent = {"actions": 0, "seconds": 0.0}

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        start = _clock()
        action = policy(obs)
        _count_action(spent, _clock() - start, what, AGENT_MEAN_ACTION_TIME_LIMIT_S)
        return action

    act.reset = policy.reset  # type: ignore[attr-defined] - run_episode calls it (AgentPolicy)
    return act


def _count_action(spent: dict[str, float], seconds: float, what: str,
                  limit_s: float | None = None) -> None:
    """Add one action's ``seconds`` to ``spent``; PolicyError past the mean time limit
    (`MEAN_ACTION_TIME_LIMIT_S`, the 10 Hz controller's period, unless ``limit_s``)."""
    spent["actions"] += 1
    spent["seconds"] += seconds
    mean = spent["seconds"] / spent["actions"]
    limit = MEAN_ACTION_TIME_LIMIT_S if limit_s is None else limit_s
    if spent["actions"] >= MEAN_ACTION_TIME_GRACE and mean > limit:
        bound = (f"the {1000 * limit:.0f} ms period of the 10 Hz controller" if limit_s is None
                 else f"the {1000 * limit:.0f} ms limit")
        raise PolicyTooSlow(f"{what} took {1000 * mean:.0f} ms an action on average over "
                          f"{spent['actions']:.0f} actions, over {bound}, and was stopped")


def _declared_shapes(data: Any, what: str, depth: int = 0) -> Any:
    """The shapes a checkpoint's JSON space declares ({key: shape} for a Dict, a shape for a
    Box), read without building the space: a Box declared with shape [10**9] would allocate
    its bounds (8 GB each) before it could be compared with the task's."""
    if isinstance(data, dict) and data.get("type") == "Dict" and depth < 4:
        spaces = data.get("spaces")
        if isinstance(spaces, dict):
            return {k: _declared_shapes(v, what, depth + 1) for k, v in spaces.items()}
    if isinstance(data, dict) and data.get("type") == "Box":
        shape = data.get("shape")
        if isinstance(shape, list) and all(
            isinstance(n, int) and not isinstance(n, bool) for n in shape
        ):
            return tuple(shape)
    raise SubmissionError(f"{what} is not a Dict or Box space of the checkpoint format")


def _describe_shapes(shapes: Any) -> str:
    """`(tcp_pose (6,), wrench (6,))` for a Dict, `(3,)` for a Box."""
    if isinstance(shapes, dict):
        return "(" + ", ".join(f"{k} {_describe_shapes(v)}" for k, v in shapes.items()) + ")"
    return str(shapes)


def _check_spaces(obs_space: gym.Space, action_space: gym.Space, env: gym.Env) -> None:
    if obs_space != env.observation_space:
        raise SubmissionError(
            f"the policy's observation space ({_describe(obs_space)}) is not the track task's "
            f"({_describe(env.observation_space)}): it was made for another task variant")
    if action_space != env.action_space:
        raise SubmissionError(
            f"the policy's action space {_describe(action_space)} is not the track task's "
            f"{_describe(env.action_space)}: it was made for another task variant")


def _describe(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Dict):
        return ", ".join(f"{k} {tuple(s.shape)}" for k, s in space.spaces.items())
    return str(tuple(space.shape))


#: Wall-clock limit [s] on one action of a submitted ONNX policy. A policy for a 10 Hz
#: controller must act far faster (on the robot, well within its 100 ms period); a graph that
#: loops or stalls (a Loop of 10^15 trips passes onnx's checker) would otherwise hang `submit`
#: and `verify` for ever.
ACTION_TIME_LIMIT_S = 1.0
#: Limit [s] on a submitted ONNX policy's mean time an action, checked from its
#: MEAN_ACTION_TIME_GRACE-th action on: the 10 Hz controller's period. Under the 1 s limit
#: alone, a policy taking 0.9 s every action held `submit` and `verify` for hours (a track's
#: hidden evaluation runs thousands of actions).
MEAN_ACTION_TIME_LIMIT_S = 0.1
MEAN_ACTION_TIME_GRACE = 20
#: The same for an agent checkpoint [s]: 3 periods. A shipped pixel RLPD entry took 78 ms an
#: action on average (one episode 133 ms) on the 2-core machine at load 2.7, and a ranked
#: entry must verify on a busy machine; its networks' size is bounded apart (`size_budget`).
AGENT_MEAN_ACTION_TIME_LIMIT_S = 0.3
_clock = time.perf_counter  # the policy's wall-clock (a test's fake clock replaces it)

#: Memory [bytes] a submitted ONNX policy may hold in onnxruntime's CPU arena at once: every
#: tensor an action computes (its weights are kept outside the arena, bounded by the archive's
#: 64 MB). A policy at batch 1 needs a few MB; one ConstantOfShape or Tile whose shape it
#: computes could otherwise take all of the machine's memory. One arena per policy's process
#: (`leaderboards.onnx_process`).
ONNX_MEMORY_LIMIT_BYTES = 1 << 30
#: Wall-clock limit [s] on building a submitted ONNX policy's session (its node and tensor
#: counts keep it to seconds: `MAX_ONNX_NODES`, `MAX_ONNX_TENSORS`), again at each episode's
#: start for a graph with seeded random operators.
SESSION_TIME_LIMIT_S = 60.0


#: ONNX operators that draw random numbers, from an optional ``seed`` attribute or else from a
#: seed onnxruntime picks anew in every process (so does Dropout in training mode,
#: `_draws_unseeded`).
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
              "Multinomial", "Bernoulli"}


#: The ONNX operators (default domain) a submitted policy may use: those of neural networks
#: (torch.onnx.export's for MLPs, CNNs, indexing, interpolation, quantisation), whose work and
#: memory grow with their tensors only, which the memory cap bounds, and the loops, which
#: onnxruntime stops between iterations at the time limit. Others are refused by name: one
#: NonMaxSuppression over 200k boxes (4 MB) ran 51 s inside a single kernel, RoiAlign's
#: sampling_ratio took 1.8 GB from outside the capped arena (736 bytes), and Unique over a
#: Range of 25M took 2.4 GB outside it (so Unique, NonZero, Compress and Det, whose work is
#: their own, are out too); contrib operators (other domains) are onnxruntime's own kernels.
#: One kernel may outlast the 1 s limit within the cap (a MaxPool of a 512x512 window over a
#: 1024x1024 map: 140 s): the policy's process is killed at the limit (`leaderboards.
#: onnx_process`), as onnxruntime stops a run only between kernels.
ONNX_OPERATORS = frozenset("""
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
    Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh
    CumSum DepthToSpace Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU
    Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalMaxPool Greater
    GreaterOrEqual GroupNormalization HardSigmoid HardSwish Hardmax Identity If
    InstanceNormalization IsInf IsNaN LRN LSTM LayerNormalization LeakyRelu Less LessOrEqual Log
    LogSoftmax Loop MatMul Max MaxPool Mean Min Mish Mod Mul Neg Not OneHot Or PRelu Pad Pow RNN
    Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean
    ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Round Scan Selu Shape Shrink
    Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze
    Sub Sum Tan Tanh ThresholdedRelu Tile Transpose Trilu Unsqueeze Where Xor
    BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor ConvInteger DequantizeLinear
    DynamicQuantizeLinear GlobalLpPool LpNormalization LpPool MatMulInteger
    MeanVarianceNormalization QLinearConv QLinearMatMul QuantizeLinear Resize ReverseSequence
    ScatterElements ScatterND TopK Upsample
    """.split()) | RANDOM_OPS


def _tensor_constants(model: Any) -> dict[str, Any]:
    """The top graph's initializers and Constant outputs by name (built once: per Dropout node,
    16,000 of them in a 490 KB graph held `submit` for a minute before the first action)."""
    constants = {init.name: init for init in model.graph.initializer}
    constants |= {n.output[0]: a.t for n in model.graph.node if n.op_type == "Constant"
                  for a in n.attribute if a.name == "value"}
    return constants


def _draws_unseeded(node: Any, constants: dict[str, Any]) -> bool:
    """Whether ``node`` draws random numbers without a ``seed`` attribute: a random operator,
    or a Dropout whose training_mode (its third input) is not a constant false (in training
    mode it zeroes random elements; in inference mode, the default, it passes its input)."""
    from onnx import numpy_helper

    if node.domain not in ("", "ai.onnx") or any(a.name == "seed" for a in node.attribute):
        return False
    if node.op_type in RANDOM_OPS:
        return True
    if node.op_type != "Dropout" or len(node.input) < 3 or not node.input[2]:
        return False
    mode = constants.get(node.input[2])
    return mode is None or bool(np.any(numpy_helper.to_array(mode)))


def _nodes(model: Any) -> Iterator[Any]:
    """Every node of an ONNX model: its graph's, its functions' and their subgraphs'."""
    import onnx

    pending = [*model.graph.node, *(n for f in model.functions for n in f.node)]
    while pending:
        node = pending.pop()
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                pending.extend(attr.g.node)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                pending.extend(n for g in attr.graphs for n in g.node)


def _graphs(model: Any) -> Iterator[Any]:
    """The model's graph and every graph a node holds (If branches, Loop and Scan bodies), its
    functions' included: `_nodes` visits them all."""
    import onnx

    yield model.graph
    for node in _nodes(model):
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield attr.g
            elif attr.type == onnx.AttributeProto.GRAPHS:
                yield from attr.graphs


def _tensors(model: Any) -> Iterator[tuple[str, Any]]:
    """Every dense tensor an ONNX model holds, with a name for messages: the initializers of its
    graph and every subgraph, and the tensors in node attributes (a Constant's ``value``), its
    functions' included (`_sparse_tensors`: the sparse ones)."""
    import onnx

    kind = onnx.AttributeProto
    for graph in _graphs(model):
        yield from ((f"initializer {t.name}", t) for t in graph.initializer)
    for node in _nodes(model):
        where = f"node {node.name or node.op_type}"
        for attr in node.attribute:
            if attr.type == kind.TENSOR:
                yield where, attr.t
            elif attr.type == kind.TENSORS:
                yield from ((where, t) for t in attr.tensors)


def _sparse_tensors(model: Any) -> Iterator[str]:
    """Where an ONNX model holds sparse tensors (initializers, node attributes), for messages."""
    import onnx

    kind = onnx.AttributeProto
    for graph in _graphs(model):
        yield from (f"initializer {t.values.name}" for t in graph.sparse_initializer)
    for node in _nodes(model):
        if any(attr.type in (kind.SPARSE_TENSOR, kind.SPARSE_TENSORS) for attr in node.attribute):
            yield f"node {node.name or node.op_type}"


def onnx_content(path: Path) -> bytes:
    """The ONNX graph at ``path`` without what onnxruntime never runs (the producer, model
    version, doc strings, metadata properties, graph and node names), serialised
    deterministically; its bytes where it does not parse or is too large (the evaluation
    refuses it)."""
    import onnx

    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except Exception:  # noqa: BLE001 - onnx raises many types for a bad file
        return data
    try:  # before the walks below, each as long as the graph
        _check_onnx_counts(model)
    except SubmissionError:  # the evaluation refuses it
        return data
    for name in ("producer_name", "producer_version", "domain", "model_version", "doc_string"):
        model.ClearField(name)
    del model.metadata_props[:]
    model.graph.ClearField("name")
    model.graph.ClearField("doc_string")
    for node in _nodes(model):
        node.ClearField("name")
        node.ClearField("doc_string")
    return model.SerializeToString(deterministic=True)


def _check_onnx_counts(model: Any) -> None:
    """SubmissionError for a graph of more than `MAX_ONNX_NODES` nodes or `MAX_ONNX_TENSORS`
    tensors, counted only that far: checked after every other walk over the graph, 2.3 million
    Identity nodes (64 MB) took 80 s and 2.4 GB before their refusal (leader24). Nodes first:
    finding the tensors walks every node."""
    top = len(model.graph.node) + sum(len(f.node) for f in model.functions)  # without a walk
    if top > MAX_ONNX_NODES or sum(1 for _ in islice(_nodes(model),
                                                     MAX_ONNX_NODES + 1)) > MAX_ONNX_NODES:
        raise SubmissionError(f"policy.onnx has more than {MAX_ONNX_NODES:,} nodes (subgraphs "
                              "included), the most a policy may have (`leaderboards.policy."
                              "MAX_ONNX_NODES`): its session is built outside the time limits")
    if sum(1 for _ in islice(_tensors(model), MAX_ONNX_TENSORS + 1)) > MAX_ONNX_TENSORS:
        raise SubmissionError(f"policy.onnx holds more than {MAX_ONNX_TENSORS:,} tensors "
                              "(initializers and constants, subgraphs included), the most a "
                              "policy may hold (`leaderboards.policy.MAX_ONNX_TENSORS`): its "
                              "session is built outside the time limits")


def _onnx_policy(path: Path, env: gym.Env) -> Policy:
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - onnx raises many types for a bad file
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SubmissionError(f"{path.parent.name}/policy.onnx is not a valid ONNX model: "
                              f"{first}") from None
    _check_onnx_counts(model)
    # Every tensor, not only the top graph's initializers: onnxruntime reads a Constant's or a
    # subgraph's external data from the evaluator's working directory (the file's bytes then
    # steered the actions). Before the checker, whose error said whether such a file exists
    # here (leader25).
    for where, tensor in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise SubmissionError(f"policy.onnx: {where} uses external data; embed every "
                                  "weight in the graph")
    try:
        onnx.checker.check_model(model)
    except Exception as err:  # noqa: BLE001 - onnx raises many types for a bad file
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SubmissionError(f"{path.parent.name}/policy.onnx is not a valid ONNX model: "
                              f"{first}") from None
    # onnxruntime makes a sparse tensor dense while it builds the session, outside the memory
    # limit: a 329-byte file of one [23000, 23000] sparse initializer took 4 GiB.
    for where in _sparse_tensors(model):
        raise SubmissionError(f"policy.onnx: {where} is a sparse tensor, made dense outside the "
                              "memory limit while the session is built; store it dense")
    floats = {getattr(onnx.TensorProto, name, None) for name in _ONNX_FLOATS}
    for where, tensor in _tensors(model):  # NaN in any of them was unchecked
        # Strings live outside onnxruntime's memory limit (a Gather of a 48 MB one grew the
        # process by 0.44 GiB in a second) and are no action (leader22).
        if tensor.data_type == onnx.TensorProto.STRING:
            raise SubmissionError(f"policy.onnx: {where} holds strings; a policy's tensors "
                                  "are numbers")
        if tensor.data_type not in floats:
            continue
        # bfloat16 and the float8 types are ml_dtypes arrays, not np.floating: their NaN went
        # unchecked (leader22)
        values = numpy_helper.to_array(tensor).astype(np.float32)
        # Weights must be finite; a constant may be +-inf (a one-sided Clip, a -inf mask, as
        # torch.onnx.export writes them), never NaN.
        weights = where.startswith("initializer")
        if np.any(np.isnan(values)) or (weights and not np.all(np.isfinite(values))):
            raise SubmissionError(f"policy.onnx: {where} holds NaN"
                                  f"{' or inf' if weights else ''} values")
    for output in model.graph.output:
        if output.type.tensor_type.elem_type == onnx.TensorProto.STRING or \
                output.type.WhichOneof("value") != "tensor_type":
            raise SubmissionError(f"policy.onnx output {output.name!r} is not a tensor of "
                                  "numbers: the action is")
    constants = _tensor_constants(model)
    for node in _nodes(model):
        if any(a.name in ("value_string", "value_strings") or
               (a.name == "to" and a.i == onnx.TensorProto.STRING) for a in node.attribute):
            raise SubmissionError(f"policy.onnx: node {node.name or node.op_type} makes "
                                  "strings; a policy's tensors are numbers")
        if node.domain not in ("", "ai.onnx") or node.op_type not in ONNX_OPERATORS:
            domain = f"{node.domain}." if node.domain not in ("", "ai.onnx") else ""
            raise SubmissionError(
                f"policy.onnx: operator {domain}{node.op_type} (node {node.name or '?'}) is not "
                "among the neural-network operators a policy may use, whose work and memory "
                "the time and memory limits bound (`leaderboards.policy.ONNX_OPERATORS`)")
        if _draws_unseeded(node, constants):
            raise SubmissionError(f"policy.onnx: node {node.name or node.op_type} draws random "
                                  "numbers without a seed attribute; onnxruntime seeds it anew "
                                  "in every process, so its episodes could not be recomputed")
    policy = OnnxPolicy(model.SerializeToString(),
                        draws=any(node.op_type in RANDOM_OPS | {"Dropout"}
                                  for node in _nodes(model)))
    try:
        _check_onnx_inputs(policy, env)
    except SubmissionError:
        policy.close()  # its process, at once: the traceback keeps the policy alive a while
        raise
    return policy


def _check_onnx_inputs(policy: OnnxPolicy, env: gym.Env) -> None:
    """SubmissionError for a graph whose inputs or outputs are not the track task's; records
    each input's dtype in `policy.inputs`."""
    obs_spaces = env.observation_space.spaces
    for name, shape, onnx_type in policy.declared_inputs:
        if name not in obs_spaces:
            raise SubmissionError(f"policy.onnx input {name!r} is not an observation of the "
                                  f"track task ({', '.join(obs_spaces)})")
        want = (1, *obs_spaces[name].shape)
        if len(shape) != len(want) or any(
            isinstance(d, int) and d != w for d, w in zip(shape, want, strict=True)
        ):
            raise SubmissionError(f"policy.onnx input {name!r} has shape {shape}, the "
                                  f"track task's observation is {list(want)}: it was made for "
                                  "another task variant")
        if onnx_type not in _ONNX_DTYPES:
            raise SubmissionError(f"policy.onnx input {name!r} has type {onnx_type}; use "
                                  f"one of {sorted(_ONNX_DTYPES)}")
        # A float reading cast to uint8 wraps on x86 and saturates on ARM (C leaves it
        # undefined): its actions would depend on the evaluating machine (leader19).
        if onnx_type == "tensor(uint8)" and obs_spaces[name].dtype != np.uint8:
            raise SubmissionError(f"policy.onnx input {name!r} has type tensor(uint8), but the "
                                  f"observation is {obs_spaces[name].dtype}: use tensor(float)")
        policy.inputs[name] = _ONNX_DTYPES[onnx_type]
    if policy.outputs != 1:
        raise SubmissionError("policy.onnx must have exactly one output (the action)")


class OnnxPolicy:
    """A checked ONNX graph as the callable obs -> action `run_episode` takes, run in a process
    of its own (`leaderboards.onnx_process`). One stopped at an action's limit is started
    afresh at the next call: a stall on a busy machine failed every later episode of the
    sim-to-sim block (diff22). A graph with random operators (``draws``) gets a new session at
    each episode's start, so each episode starts them from their seeds: they drew on across
    calls, and one episode replayed alone (the site's GIFs) was another episode."""

    def __init__(self, graph: bytes, draws: bool) -> None:
        self.graph, self.draws = graph, draws
        self.process: OnnxProcess | None = None
        self.spent = {"actions": 0, "seconds": 0.0}
        self.declared_inputs, self.outputs = self._new_session()
        self.inputs: dict[str, Any] = {}  # name -> the dtype fed (set by `_onnx_policy`)

    def _new_session(self) -> tuple[list[tuple[str, list[Any], str]], int]:
        """Build the graph's session (in a new process where the last was stopped): its
        inputs and output count."""
        if self.process is None or not self.process.alive:
            self.process = OnnxProcess()
        try:
            reply = self.process.request(("session", self.graph, ONNX_MEMORY_LIMIT_BYTES),
                                         SESSION_TIME_LIMIT_S)
        except OnnxTimeout:
            raise SubmissionError(f"onnxruntime took over {SESSION_TIME_LIMIT_S:g} s to build "
                                  "policy.onnx's session and was stopped") from None
        except OnnxProcessEnded as err:
            raise SubmissionError(f"onnxruntime's process ended while it built policy.onnx's "
                                  f"session ({err})") from None
        if reply[0] != "ok":
            raise SubmissionError(f"onnxruntime cannot run policy.onnx: {reply[1]}")
        return reply[1], reply[2]

    def reset(self, seed: int | None = None) -> None:
        """At each episode's start (`run_episode`)."""
        if (self.draws and self.spent["actions"]) or not self.process.alive:
            self._new_session()

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if not self.process.alive:  # stopped at an earlier action's limit
            self._new_session()
        feed = {k: np.asarray(obs[k], dtype=t)[None] for k, t in self.inputs.items()}
        start = _clock()
        try:
            status, value = self.process.request(("run", feed), ACTION_TIME_LIMIT_S)
        except OnnxTimeout:  # as the mean's limit: a busy machine's load counts too (diff33)
            raise PolicyTooSlow(f"policy.onnx took over {ACTION_TIME_LIMIT_S:g} s for one "
                                "action and was stopped") from None
        except OnnxProcessEnded as err:
            raise PolicyError(f"policy.onnx's process ended during an action ({err})") from None
        if status == "memory":
            raise PolicyError(f"policy.onnx needed over {ONNX_MEMORY_LIMIT_BYTES / 2**30:g} GiB "
                              "of memory for one action and was stopped")
        if status != "ok":
            raise PolicyError(f"policy.onnx failed to run: {value}")
        _count_action(self.spent, _clock() - start, "policy.onnx")
        out = np.asarray(value)
        return out[0] if out.ndim >= 1 and out.shape[0] == 1 else out

    def close(self) -> None:
        """End its process now (it ends with the policy otherwise)."""
        if self.process is not None:
            self.process.close()
