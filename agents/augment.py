"""Image augmentation for offline batches: DrQ's random shift.

Paper 001 (section V-C) augments the offline 75% of every batch and leaves the online 25%
alone; it does not name the augmentation. We use the random shift of DrQ (Kostrikov, Yarats and
Fergus, "Image Augmentation Is All You Need", ICLR 2021): replicate-pad by ``pad`` pixels, crop
back at a random offset, independently per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """(B, H, W, C) uint8 images shifted by up to ``pad`` pixels each way (torch's RNG)."""
    if pad == 0 or images.shape[0] == 0:
        return images
    batch, height, width, _ = images.shape
    padded = F.pad(images.permute(0, 3, 1, 2).float(), (pad, pad, pad, pad), mode="replicate")
    shifts = torch.randint(0, 2 * pad + 1, (batch, 2), device=images.device)
    rows = torch.arange(height, device=images.device)[None, :] + shifts[:, :1]
    cols = torch.arange(width, device=images.device)[None, :] + shifts[:, 1:]
    batch_index = torch.arange(batch, device=images.device)[:, None, None]
    # Advanced indices around a slice: the result is (B, H, W, C), channels last again.
    shifted = padded[batch_index, :, rows[:, :, None], cols[:, None, :]]
    return shifted.round().to(images.dtype)
