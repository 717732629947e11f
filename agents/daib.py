"""Domain-adversarial information bottleneck (DAIB) and the learned reward of paper 001.

Paper: A. Nair, B. Zhu, G. Narayanan, E. Solowjow, S. Levine, "Learning on the Job:
Self-Rewarding Offline-to-Online Finetuning for Industrial Insertion of Novel Connectors from
Vision", ICRA 2023, section V-D, eq. 5.

The representation is split, z = (z_I, z_S):

- z_I should be domain (connector) invariant: a domain classifier F(z_I) is trained to name the
  connector, and a gradient-reversal layer (Ganin et al. 2016, DANN) makes the encoder *worsen*
  it, i.e. L_adv = -L_domain for the encoder;
- z_S may carry domain-specific information, but through a variational information bottleneck
  (Alemi et al. 2017): q(z_S|s) = N(mu(s), sigma(s)^2) with lambda * KL(q || N(0, I)), lambda =
  0.01 (paper), so the network prefers z_I wherever the invariant features suffice.

At inference (acting, rewarding online transitions) z_S is its mean (section V-E).
``RewardClassifier`` is R_psi(s): the probability that state s is a successful insertion,
trained by binary cross-entropy on the offline data's sparse rewards (section V-B).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from agents.networks import ObsEncoder, mlp


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; gradient times -scale backward (DANN's gradient-reversal layer)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # noqa: D102
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return -ctx.scale * grad, None


class DAIB(nn.Module):
    """Feature vector -> z = (z_I, z_S), with the domain-adversarial and KL losses."""

    def __init__(self, in_dim: int, invariant_dim: int, specific_dim: int, num_domains: int,
                 kl_weight: float = 0.01, adversarial_weight: float = 1.0, hidden: int = 256):
        """``adversarial_weight`` scales the reversed gradient the encoder receives (DANN's
        lambda; the domain classifier itself always trains at full rate)."""
        super().__init__()
        self.adversarial_weight = adversarial_weight
        self.invariant = nn.Sequential(nn.Linear(in_dim, invariant_dim), nn.Tanh())
        self.specific = nn.Linear(in_dim, 2 * specific_dim)
        self.domain_classifier = mlp(invariant_dim, (hidden,), num_domains)
        self.num_domains = num_domains
        self.kl_weight = kl_weight
        self.out_dim = invariant_dim + specific_dim

    def forward(self, features: torch.Tensor, *, sample: bool) -> tuple[torch.Tensor, ...]:
        """Returns z (B, out_dim), z_I (B, invariant_dim) and KL(q(z_S|s) || N(0, I)) (B,)."""
        z_inv = self.invariant(features)
        mean, log_std = self.specific(features).chunk(2, dim=-1)
        log_std = log_std.clamp(-10.0, 2.0)
        z_spec = mean + log_std.exp() * torch.randn_like(mean) if sample else mean
        kl = 0.5 * (mean**2 + (2 * log_std).exp() - 1.0 - 2 * log_std).sum(-1)
        return torch.cat([z_inv, z_spec], dim=-1), z_inv, kl

    def loss(self, z_inv: torch.Tensor, kl: torch.Tensor,
             domains: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """L_DAIB = L_domain (F learns it, the encoder gets -grad) + lambda * KL.

        ``domains`` (B,) int; rows labelled -1 (online data of the unseen connector) have no
        domain and take no part in the adversarial term.
        """
        logits = self.domain_classifier(_ReverseGradient.apply(z_inv, self.adversarial_weight))
        labelled = domains >= 0
        if labelled.any():
            domain_loss = F.cross_entropy(logits[labelled], domains[labelled])
            accuracy = (logits[labelled].argmax(-1) == domains[labelled]).float().mean().item()
        else:
            domain_loss, accuracy = logits.sum() * 0.0, float("nan")
        total = domain_loss + self.kl_weight * kl.mean()
        return total, {"daib/domain_ce": domain_loss.item(), "daib/domain_acc": accuracy,
                       "daib/kl": kl.mean().item()}


class BottleneckEncoder(nn.Module):
    """``ObsEncoder`` followed by DAIB, or by nothing (``daib=None``)."""

    def __init__(self, encoder: ObsEncoder, daib: DAIB | None):
        super().__init__()
        self.encoder = encoder
        self.daib = daib
        self.out_dim = daib.out_dim if daib is not None else encoder.out_dim

    def forward(self, obs: Mapping[str, torch.Tensor], *,
                sample: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Returns z, and z_I and the KL per row (None without DAIB)."""
        features = self.encoder(obs)
        if self.daib is None:
            return features, None, None
        return self.daib(features, sample=sample)

    def aux_loss(self, z_inv: torch.Tensor | None, kl: torch.Tensor | None,
                 domains: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """L_DAIB, or 0 without DAIB."""
        if self.daib is None or z_inv is None or kl is None:
            return torch.zeros((), device=domains.device), {}
        return self.daib.loss(z_inv, kl, domains)



def freeze_convolutions(encoder: ObsEncoder) -> None:
    """Stop training the image CNNs' conv layers (paper 001 freezes them online, section V-E)."""
    for image_encoder in encoder.images.values():
        image_encoder.convs.requires_grad_(False)


class RewardClassifier(nn.Module):
    """R_psi(s) = sigmoid(f(z(s))): probability that observation s shows a mated plug."""

    def __init__(self, encoder: BottleneckEncoder, hidden: tuple[int, ...]):
        super().__init__()
        self.encoder = encoder
        self.head = mlp(encoder.out_dim, hidden, 1)

    def logits(self, obs: Mapping[str, torch.Tensor], *,
               sample: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Success logits (B,), z_I and KL (for the DAIB loss)."""
        z, z_inv, kl = self.encoder(obs, sample=sample)
        return self.head(z).squeeze(-1), z_inv, kl

    def loss(self, obs: Mapping[str, torch.Tensor], success: torch.Tensor,
             domains: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """L_R = BCE(R(s), r) + L_DAIB (eq. 5)."""
        logits, z_inv, kl = self.logits(obs, sample=True)
        bce = F.binary_cross_entropy_with_logits(logits, success)
        aux, metrics = self.encoder.aux_loss(z_inv, kl, domains)
        accuracy = ((logits > 0).float() == success).float().mean().item()
        return bce + aux, {"reward/bce": bce.item(), "reward/accuracy": accuracy} | {
            f"reward/{k}": v for k, v in metrics.items()}

    @torch.no_grad()
    def probability(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """R_psi(s) in [0, 1] with the deterministic (mean) bottleneck: (B,)."""
        return torch.sigmoid(self.logits(obs, sample=False)[0])
