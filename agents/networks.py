"""Networks shared by the learning agents: observation encoder, MLPs, actors and critics.

Observations are gymnasium ``Dict`` s. ``ObsEncoder`` turns one into a feature vector:

- every non-image ``Box`` entry (``tcp_pose``, ``tcp_vel``, ``wrench``, ...) is flattened and
  concatenated, in the space's key order;
- every uint8 image entry of shape (H, W, C) (``wrist``, ``side``, ``goal``; 32x32 or 64x64, C = 1
  or 3) goes through its own small CNN (no pretrained weights): pixels / 255, the convs of one
  of ``IMAGE_ENCODERS`` (three 3x3 convs as in SAC-AE, Yarats et al. 2019, or a cheaper strided
  pair), a linear projection, LayerNorm and tanh.

An agent may hand one encoder to its actor and its critics (SAC does, as DrQ and SAC-AE do): the
critic loss trains it, and the actor reads ``features.detach()`` through ``from_features``, so
an image is encoded once per batch instead of once per network. ``random_shift`` is DrQ's image
augmentation, on a whole batch at once.
RLPD (``agents/rlpd.py``) does the same across its critic ensemble.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.buffer import check_observation_entry
from agents.heap import retain_freed_memory


def is_image_space(space: gym.spaces.Space) -> bool:
    """True for uint8 Box spaces of shape (H, W, C): camera images."""
    return (
        isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
    )


def check_obs_keys(observation_space: gym.spaces.Dict, keys: Sequence[str],
                   name: str = "obs_keys") -> list[str]:
    """The entries ``keys`` of ``observation_space`` (empty: all of them), checked: ValueError
    naming the config field ``name`` for an entry the space lacks or one named twice."""
    keys = list(keys) or list(observation_space.spaces)
    unknown = [k for k in keys if k not in observation_space.spaces]
    if unknown:
        raise ValueError(f"{name} {unknown} not in the observation space; it has "
                         f"{list(observation_space.spaces)}")
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:  # tcp_pose,tcp_pose fed the 6-D pose in twice
        raise ValueError(f"{name} names {repeated} more than once")
    return keys


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    *,
    layer_norm: bool = False,
) -> nn.Sequential:
    """Linear-(LayerNorm)-ReLU stack ending in a linear layer of ``out_dim`` outputs.

    ``layer_norm=True`` puts LayerNorm after every hidden linear layer: RLPD's critic
    regulariser that keeps high update-to-data ratios stable (Ball et al. 2023).
    """
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers.append(nn.Linear(last, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(nn.ReLU())
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


#: Image encoder architectures: conv layers as (kernel, stride, share of ``channels``).
IMAGE_ENCODERS = {
    # SAC-AE / DrQ-style (Yarats et al. 2019): three 3x3 convs, strides 2, 2, 1.
    "drq": ((3, 2, 1.0), (3, 2, 1.0), (3, 1, 1.0)),
    # The first two layers of the DQN "Nature" CNN (Mnih et al. 2015: 8x8 stride 4, 4x4 stride 2)
    # at half its widths with the default 32 channels (16, 32): a 64x64 image becomes 6x6 after
    # two convs. About 10x fewer multiply-adds than "drq" at 64x64 and 5-9x faster updates on
    # 2 CPU cores (`python -m benchmark.bench_agents`).
    "strided": ((8, 4, 0.5), (4, 2, 1.0)),
}


class ImageEncoder(nn.Module):
    """Small CNN for one (H, W, C) image (uint8, or float pixel values 0..255): the convs of
    ``architecture`` (see ``IMAGE_ENCODERS``) -> linear -> LayerNorm -> tanh.

    ``bf16_convs`` runs the convolutions under bfloat16 autocast (weights stay float32, the head
    runs in float32): about 2x faster updates on CPUs with AVX512-BF16 / AMX, slower on CPUs
    without them (measured by ``python -m benchmark.bench_throughput``).
    """

    def __init__(
        self, shape: Sequence[int], feature_dim: int = 50, channels: int = 32,
        bf16_convs: bool = False, architecture: str = "drq",
    ):
        super().__init__()
        # Each update allocates and frees megabyte-sized feature maps: keep them in the heap.
        retain_freed_memory()
        if architecture not in IMAGE_ENCODERS:
            raise ValueError(f"image encoder {architecture!r} unknown; choose one of "
                             f"{sorted(IMAGE_ENCODERS)}")
        height, width, in_channels = shape
        self.bf16_convs = bf16_convs
        layers: list[nn.Module] = []
        last = in_channels
        for kernel, stride, share in IMAGE_ENCODERS[architecture]:
            out = max(1, round(channels * share))
            layers += [nn.Conv2d(last, out, kernel, stride=stride), nn.ReLU()]
            last = out
        self.convs = nn.Sequential(*layers, nn.Flatten())
        try:
            with torch.no_grad():
                n_flat = self.convs(torch.zeros(1, in_channels, height, width)).shape[1]
        except RuntimeError as error:  # an output smaller than the next kernel
            raise ValueError(f"{height}x{width} images are too small for the {architecture!r} "
                             f"image encoder; use larger images or another encoder") from error
        self.head = nn.Sequential(
            nn.Linear(n_flat, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh()
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) pixel values 0..255 -> (B, feature_dim) float."""
        # Scale in (B, H, W, C) order and permute last: the convs read a channels-last view
        # instead of a transposed copy.
        x = image.to(torch.float32, copy=True).div_(255.0).permute(0, 3, 1, 2)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16_convs):
            flat = self.convs(x)
        return self.head(flat.float())


class ObsEncoder(nn.Module):
    """Dict observation -> flat feature vector (see the module docstring)."""

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        keys: Sequence[str] = (),
        image_feature_dim: int = 50,
        image_channels: int = 32,
        bf16_convs: bool = False,
        image_encoder: str = "drq",
    ):
        """Build the encoder.

        Args:
            observation_space: the env's Dict space.
            keys: which entries to use; empty means all of them.
            image_feature_dim: output size of each image's CNN.
            image_channels: channels of each conv layer (the CNN's cost grows with their square).
            bf16_convs: run the image convolutions under bfloat16 autocast (see ImageEncoder).
            image_encoder: the CNN architecture, a key of ``IMAGE_ENCODERS``.
        """
        super().__init__()
        keys = check_obs_keys(observation_space, keys)
        self.vector_keys = [k for k in keys if not is_image_space(observation_space[k])]
        self.image_keys = [k for k in keys if is_image_space(observation_space[k])]
        self.images = nn.ModuleDict(
            {k: ImageEncoder(observation_space[k].shape, image_feature_dim, image_channels,
                             bf16_convs, image_encoder)
             for k in self.image_keys}
        )
        self.vector_dim = sum(int(math.prod(observation_space[k].shape)) for k in self.vector_keys)
        self.out_dim = self.vector_dim + image_feature_dim * len(self.image_keys)
        if self.out_dim == 0:
            raise ValueError("the observation encoder has no inputs: select at least one key")

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Batch of observations (each entry with a leading batch dim) -> (B, out_dim)."""
        parts = [obs[k].reshape(obs[k].shape[0], -1).float() for k in self.vector_keys]
        parts += [self.images[k](obs[k]) for k in self.image_keys]
        return torch.cat(parts, dim=-1)


def random_shift(
    images: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """DrQ's augmentation: shift each image of a batch by up to +-``pad`` pixels, independently.

    ``images``: (B, H, W, C), any dtype (uint8 stays uint8). Borders are replicated, as if the
    images were padded by ``pad`` pixels of their edge and cropped back to (H, W) at a random
    offset (Kostrikov et al. 2020; Yarats et al. 2021). Batched, at memory speed: the columns
    are edge-padded (one copy), then every output row, a contiguous run of W x C values of the
    padded batch, is gathered by one ``index_select`` (clamped row numbers replicate the top
    and bottom edges).
    """
    if pad <= 0:
        return images
    batch, height, width, channels = images.shape
    device = images.device
    flat = _pad_edges(images, pad, 2).reshape(-1)  # (B, H, W + 2 pad, C), flattened
    row_len = (width + 2 * pad) * channels
    offsets = torch.randint(-pad, pad + 1, (2, batch, 1), generator=generator).to(device)
    rows = (torch.arange(height, device=device) + offsets[0]).clamp_(0, height - 1)  # (B, H)
    starts = ((torch.arange(batch, device=device)[:, None] * height + rows) * row_len
              + (offsets[1] + pad) * channels)
    # runs[k] = flat[k : k + W C]: a read-only view of every possible row start
    runs = flat.as_strided((flat.numel() - width * channels + 1, width * channels), (1, 1))
    return runs.index_select(0, starts.reshape(-1)).view(batch, height, width, channels)


def color_jitter(
    images: torch.Tensor, strength: float = 0.4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Colour augmentation: per image, a random permutation of the colour channels, then
    brightness and contrast each scaled by a factor drawn uniformly from
    [1 - ``strength``, 1 + ``strength``] (contrast about the image's mean grey level).

    ``images``: (B, H, W, C) pixel values 0..255, any dtype; returns float32 values clipped to
    0..255 (what ``ImageEncoder`` reads). A single-channel image is only scaled. Meant to keep
    a classifier trained on a few scenes from keying on their colours (paper 001's connectors
    each come with their own socket and table colours).
    """
    if strength <= 0:
        return images
    batch, _, _, channels = images.shape
    x = images.to(torch.float32)
    if channels > 1:
        order = torch.argsort(torch.rand(batch, channels, generator=generator), dim=1)
        x = torch.gather(x, 3, order.to(x.device)[:, None, None, :].expand_as(x))
    low, high = 1.0 - strength, 1.0 + strength
    factors = (torch.rand(2, batch, 1, 1, 1, generator=generator) * (high - low) + low).to(x.device)
    x = x * factors[0]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * factors[1] + mean).clamp_(0.0, 255.0)


def _pad_edges(x: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    """``x`` with its first and last slices along ``dim`` repeated ``pad`` times outwards."""
    shape = list(x.shape)
    shape[dim] = pad
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, x.shape[dim] - 1, 1)
    return torch.cat([first.expand(shape), x, last.expand(shape)], dim)


class ObsNormalizer(nn.Module):
    """Running mean / std of each vector observation entry; images pass through unchanged.

    InsertBench mixes metres (``tcp_pose`` moves by millimetres), m/s and newtons: raw, the pose
    is invisible next to the wrench. Entries are standardised with statistics of every
    observation seen so far (Chan et al.'s parallel update, float64) and clipped to +-``clip``.
    The statistics are module buffers, so they are checkpointed with the networks.
    """

    def __init__(self, observation_space: gym.spaces.Dict, clip: float = 10.0):
        super().__init__()
        self.keys = [k for k, s in observation_space.spaces.items() if not is_image_space(s)]
        self.clip = clip
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        for k in self.keys:
            shape = observation_space[k].shape
            self.register_buffer(f"{k}_mean", torch.zeros(shape, dtype=torch.float64))
            self.register_buffer(f"{k}_m2", torch.zeros(shape, dtype=torch.float64))

    @torch.no_grad()
    def update(self, obs: Mapping[str, np.ndarray], batched: bool = False) -> None:
        """Add one observation (or a batch of them with ``batched=True``) to the statistics."""
        if not self.keys:
            return
        n = int(np.shape(obs[self.keys[0]])[0]) if batched else 1
        if n == 0:
            return
        total = self.count + n
        for k in self.keys:
            x = torch.as_tensor(np.asarray(obs[k]), dtype=torch.float64)
            x = x.reshape(n, *x.shape[batched:])
            mean, m2 = getattr(self, f"{k}_mean"), getattr(self, f"{k}_m2")
            batch_mean = x.mean(dim=0)
            delta = batch_mean - mean
            m2 += ((x - batch_mean) ** 2).sum(dim=0) + delta**2 * self.count * n / total
            mean += delta * n / total
        self.count.copy_(total)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Standardised copy of a batch of observations (float32 vectors, images untouched)."""
        out = dict(obs)
        if self.count < 2:
            return out
        for k in self.keys:
            mean = getattr(self, f"{k}_mean")
            std = (getattr(self, f"{k}_m2") / self.count).sqrt() + 1e-6
            out[k] = ((obs[k].double() - mean) / std).clamp(-self.clip, self.clip).float()
        return out


def obs_to_torch(obs: Mapping[str, np.ndarray], space: gym.spaces.Dict,
                 device: torch.device | str) -> dict:
    """One unbatched observation of ``space`` -> dict of tensors with a batch dim of 1.

    Each of the space's keys is checked first (present, its shape, finite, images uint8): a
    wrong shape failed deep inside torch, and a NaN came out as a NaN action."""
    if not isinstance(obs, Mapping):
        raise ValueError(f"observation must be a dict of arrays, got {type(obs).__name__}")
    return {
        k: torch.as_tensor(
            check_observation_entry("observation", obs, k, s.shape, s.dtype), device=device
        ).unsqueeze(0)
        for k, s in space.spaces.items()
    }


class QEnsemble(nn.Module):
    """``num_qs`` independent Q(s, a) heads over one encoder; output (num_qs, B).

    Two heads give TD3/SAC's clipped double Q; RLPD uses larger ensembles with LayerNorm.
    """

    def __init__(
        self,
        encoder: ObsEncoder,
        action_dim: int,
        hidden: Sequence[int],
        num_qs: int = 2,
        layer_norm: bool = False,
    ):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleList(
            [mlp(encoder.out_dim + action_dim, hidden, 1, layer_norm=layer_norm)
             for _ in range(num_qs)]
        )

    def forward(self, obs: Mapping[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        return self.q_from_features(self.encoder(obs), action)

    def q_from_features(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q of (B, encoder.out_dim) features and (B, A) actions -> (num_qs, B)."""
        x = torch.cat([features, action], dim=-1)
        return torch.stack([head(x).squeeze(-1) for head in self.heads])


class DeterministicActor(nn.Module):
    """a = tanh(f(s)) in [-1, 1] (TD3, BC)."""

    def __init__(self, encoder: ObsEncoder, action_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.encoder = encoder
        self.net = mlp(encoder.out_dim, hidden, action_dim)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.tanh(self.net(self.encoder(obs)))


#: The most entropy a tanh-squashed Gaussian has in one dimension [nats] (zero mean, std
#: 0.875; computed by quadrature), below the uniform's ln 2 on [-1, 1].
TANH_GAUSSIAN_MAX_ENTROPY = 0.6836


def entropy_target(target: float | None, action_dim: int, default: float) -> float:
    """SAC's entropy target [nats], `default` where None. `SquashedGaussianActor` has at most
    `TANH_GAUSSIAN_MAX_ENTROPY` nats a dimension: a target there or above is never reached,
    and the temperature grows without bound (alpha 2e5 after 1,500 updates at 10 nats)."""
    if target is None:
        return float(default)
    ceiling = action_dim * TANH_GAUSSIAN_MAX_ENTROPY
    if not math.isfinite(target) or target >= ceiling:
        raise ValueError(f"target_entropy {target} nats is not below {ceiling:.3f}, the most a "
                         f"tanh-squashed Gaussian policy on {action_dim} action dimensions can "
                         "have: the temperature would grow without bound")
    return float(target)


class SquashedGaussianActor(nn.Module):
    """tanh-squashed diagonal Gaussian policy (SAC, Haarnoja et al. 2018, appendix C)."""

    def __init__(
        self,
        encoder: ObsEncoder,
        action_dim: int,
        hidden: Sequence[int],
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
    ):
        super().__init__()
        self.encoder = encoder
        self.net = mlp(encoder.out_dim, hidden, 2 * action_dim)
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max

    def forward(
        self, obs: Mapping[str, torch.Tensor], deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (action in [-1, 1], log pi(action | obs)); deterministic -> tanh(mean)."""
        return self.from_features(self.encoder(obs), deterministic)

    def from_features(
        self, features: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` on (B, encoder.out_dim) features (pass ``features.detach()`` when the
        encoder is the critic's)."""
        mean, log_std = self.net(features).chunk(2, dim=-1)
        # Soft clamp keeps gradients alive at the bounds (as in many SAC implementations).
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (
            torch.tanh(log_std) + 1
        )
        if deterministic:
            action = torch.tanh(mean)
            return action, torch.zeros(action.shape[0], device=action.device)
        std = log_std.exp()
        pre_tanh = mean + std * torch.randn_like(mean)
        action = torch.tanh(pre_tanh)
        normal_log_prob = (-0.5 * ((pre_tanh - mean) / std) ** 2 - log_std
                           - 0.5 * math.log(2 * math.pi))
        # log|d tanh(u)/du| = 2 (log 2 - u - softplus(-2u)), numerically stable.
        log_det = 2 * (math.log(2) - pre_tanh - nn.functional.softplus(-2 * pre_tanh))
        return action, (normal_log_prob - log_det).sum(-1)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging: target <- (1 - tau) target + tau source."""
    targets, sources = list(target.parameters()), list(source.parameters())
    if len(targets) != len(sources):
        raise ValueError(f"soft_update: {len(targets)} target parameters, {len(sources)} source")
    with torch.no_grad():
        # One call for all tensors (the same lerp per tensor, bitwise), not one per tensor.
        torch._foreach_lerp_(targets, sources, tau)


class ActionScaler:
    """Maps the agents' internal [-1, 1]^A actions to a bounded Box action space and back."""

    def __init__(self, action_space: gym.spaces.Box):
        low, high = action_space.low.astype(np.float64), action_space.high.astype(np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(f"action space must be bounded, got {action_space}")
        self.low, self.high = low, high
        self.dtype = action_space.dtype

    def to_env(self, unit_action: np.ndarray) -> np.ndarray:
        """[-1, 1] -> [low, high]; ValueError for a non-finite action (clipping keeps NaN: a
        NaN observation or NaN weights came back as a NaN action, outside the space)."""
        if not np.all(np.isfinite(unit_action)):
            raise ValueError(f"the policy's action {unit_action} is not finite: a NaN or inf "
                             "observation, or weights trained on one")
        a = self.low + (np.clip(unit_action, -1, 1) + 1) * 0.5 * (self.high - self.low)
        return a.astype(self.dtype)

    def to_unit(self, env_action: np.ndarray) -> np.ndarray:
        """[low, high] -> [-1, 1] (float32), one action or a batch; ValueError for actions of
        another size (numpy's broadcast error named no action)."""
        a = np.asarray(env_action, dtype=np.float64)
        if a.shape[-1:] != self.low.shape:
            raise ValueError(f"action has shape {a.shape}, the action space has {self.low.shape}")
        a = 2 * (a - self.low) / (self.high - self.low) - 1
        return np.clip(a, -1, 1).astype(np.float32)


class GaussianActor(nn.Module):
    """pi(a | x) = N(tanh(f(x)), diag(exp(log_std))) with a state-independent std.

    The head of the advantage-weighted learners (IQL, AWAC, ODA): their actor loss is the
    log-likelihood of *dataset* actions, which a tanh-squashed Gaussian makes infinite at the
    bounds, so the mean is squashed and the sample is clipped instead (as CORL's IQL and AWAC
    actors do). It takes a feature vector x, not an observation, so the caller decides what
    feeds it: encoder features, DAIB's bottleneck z (IQL) or features and a task latent (ODA).
    """

    def __init__(
        self,
        in_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        log_std_min: float = -6.0,
        log_std_max: float = 0.0,
    ):
        super().__init__()
        self.net = mlp(in_dim, hidden, action_dim)
        self.log_std = nn.Parameter(torch.zeros(action_dim))
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def distribution(self, features: torch.Tensor) -> torch.distributions.Normal:
        """The action distribution for a batch of input features (B, in_dim)."""
        mean = torch.tanh(self.net(features))
        std = self.log_std.clamp(self.log_std_min, self.log_std_max).exp()
        return torch.distributions.Normal(mean, std.expand_as(mean))

    def log_prob(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action | features), summed over action dimensions: (B,)."""
        return self.distribution(features).log_prob(action).sum(-1)

    def forward(self, features: torch.Tensor, deterministic: bool = False,
                std: float | None = None) -> torch.Tensor:
        """An action in [-1, 1]: the mean if ``deterministic``, else a clipped sample, drawn
        with standard deviation ``std`` instead of the learned one if given (exploration)."""
        dist = self.distribution(features)
        if deterministic:
            action = dist.mean
        elif std is not None:
            action = dist.mean + std * torch.randn_like(dist.mean)
        else:
            action = dist.rsample()
        return action.clamp(-1.0, 1.0)
