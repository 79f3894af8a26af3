"""The CLIP embedding service on open_clip.

Model and weights come from settings: CURIO_CLIP_MODEL (an open_clip model name such as
ViT-B-32) and CURIO_CLIP_PRETRAINED (an open_clip pretrained tag such as laion2b_s34b_b79k,
or a path to a checkpoint file). The model is loaded once per process and kept; images go
through open_clip's own inference transform for that model and tag, so a vector here equals
the one open_clip's reference pipeline gives.

Weights are never downloaded here: Curio's machines may have no network, and a request that
hangs on a download would freeze a web worker. A tag is resolved against the local caches
open_clip itself fills (the Hugging Face cache, ~/.cache/clip); when nothing is found,
`ClipUnavailable` says which model, what to set and how to fetch the weights where a network
exists. Nothing else in Curio needs CLIP, so callers catch it and carry on.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image


class ClipUnavailable(RuntimeError):
    """CLIP weights for the configured model cannot be found on this machine."""


@dataclass(frozen=True)
class ClipConfig:
    model_name: str
    pretrained: str

    @classmethod
    def from_settings(cls) -> ClipConfig:
        return cls(str(settings.CURIO_CLIP_MODEL), str(settings.CURIO_CLIP_PRETRAINED))

    @property
    def is_file(self) -> bool:
        return bool(self.pretrained) and (os.sep in self.pretrained or Path(self.pretrained).suffix != "")


def weights_help(config: ClipConfig, problem: str) -> str:
    """The message shown by the UI and the commands when weights are missing."""
    return (
        f"CLIP is unavailable: {problem} "
        f"Configured model: CURIO_CLIP_MODEL={config.model_name!r}, CURIO_CLIP_PRETRAINED={config.pretrained!r}. "
        "Set CURIO_CLIP_PRETRAINED to the path of a checkpoint file for that model, or to an open_clip pretrained tag "
        "whose weights are already in the local cache. To fetch weights on a machine with a network, run "
        f"`python -c \"import open_clip; open_clip.create_model('{config.model_name}', pretrained='"
        f"{config.pretrained if not config.is_file else 'laion2b_s34b_b79k'}')\"` there (it fills ~/.cache/huggingface "
        "or ~/.cache/clip), then copy that cache or the checkpoint file here. Search by text and embedding jobs need "
        "CLIP; browsing, filters, selection, custom embeddings and classification work without it."
    )


def _checkpoint_fingerprint(path: Path) -> str:
    """Short id of a checkpoint's contents: two files with the same name are different weights."""
    digest = hashlib.sha256()
    digest.update(str(path.stat().st_size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:12]


def _cached_tag_file(config: ClipConfig, tag_cfg: dict[str, Any]) -> str | None:
    """Where open_clip's own downloader would have left the tag's weights, if it did."""
    if tag_cfg.get("file"):
        return str(tag_cfg["file"]) if Path(str(tag_cfg["file"])).is_file() else None
    hub = str(tag_cfg.get("hf_hub", ""))
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith(".bin"):
            names.insert(0, filename[: -len(".bin")] + ".safetensors")
        for name in names:
            found = try_to_load_from_cache(repo_id, name)
            if isinstance(found, str) and Path(found).is_file():
                return found
    url = str(tag_cfg.get("url", ""))
    if url:
        candidate = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if candidate.is_file():
            return str(candidate)
    return None


@dataclass(frozen=True)
class ResolvedWeights:
    checkpoint: str
    # Inference preprocessing the tag was trained with (mean/std/interpolation/resize mode);
    # empty for a bare checkpoint file, which uses the model config's defaults.
    preprocess: dict[str, Any]
    space_key: str


def resolve_weights(config: ClipConfig | None = None) -> ResolvedWeights:
    """Find the weights file for the configured model without touching the network.

    Raises ClipUnavailable with the full explanation when they are not on this machine.
    """
    import open_clip

    config = config or ClipConfig.from_settings()
    if open_clip.get_model_config(config.model_name) is None:
        raise ClipUnavailable(weights_help(config, f"open_clip has no model named {config.model_name!r}."))
    if not config.pretrained:
        raise ClipUnavailable(weights_help(config, "no weights are configured."))
    tag_cfg = open_clip.get_pretrained_cfg(config.model_name, config.pretrained)
    if tag_cfg:
        found = _cached_tag_file(config, tag_cfg)
        if found is None:
            raise ClipUnavailable(
                weights_help(
                    config, f"the weights for tag {config.pretrained!r} are not in the local cache (no download is tried)."
                )
            )
        preprocess = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if tag_cfg.get(k) is not None}
        return ResolvedWeights(found, preprocess, f"clip:{config.model_name}:{config.pretrained}")
    path = Path(config.pretrained).expanduser()
    if path.is_file():
        return ResolvedWeights(str(path), {}, f"clip:{config.model_name}:{path.name}@{_checkpoint_fingerprint(path)}")
    if config.is_file:
        raise ClipUnavailable(weights_help(config, f"the checkpoint file {config.pretrained!r} does not exist."))
    raise ClipUnavailable(
        weights_help(config, f"{config.pretrained!r} is neither an open_clip pretrained tag for this model nor a file.")
    )


def clip_status() -> tuple[bool, str]:
    """(available, message) for the UI: cheap, loads no model."""
    try:
        weights = resolve_weights()
    except ClipUnavailable as exc:
        return False, str(exc)
    return True, f"CLIP ready: {weights.space_key}"


class ClipEncoder:
    """A loaded open_clip model with its inference transform and tokenizer."""

    def __init__(self, config: ClipConfig, weights: ResolvedWeights) -> None:
        import open_clip
        import torch

        self.config = config
        self.space_key = weights.space_key
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        model, _, preprocess = open_clip.create_model_and_transforms(
            config.model_name,
            pretrained=weights.checkpoint,
            device=self.device,
            image_mean=weights.preprocess.get("mean"),
            image_std=weights.preprocess.get("std"),
            image_interpolation=weights.preprocess.get("interpolation"),
            image_resize_mode=weights.preprocess.get("resize_mode"),
        )
        model.eval()
        self.model = model
        self.preprocess: Callable[[Image.Image], Any] = preprocess
        self.tokenizer = open_clip.get_tokenizer(config.model_name)
        size = model.visual.image_size
        self.image_size = int(max(size) if isinstance(size, tuple | list) else size)
        with torch.inference_mode():
            self.dim = int(self.encode_text(["a photo"]).shape[1])

    def encode_tensors(self, batch: Any) -> np.ndarray:
        """Preprocessed image tensors (N, 3, H, W) → L2-normalized float32 vectors (N, dim)."""
        import torch

        with torch.inference_mode():
            features = self.model.encode_image(batch.to(self.device), normalize=True)
        return features.float().cpu().numpy()

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        return self.encode_tensors(torch.stack([self.preprocess(img) for img in images]))

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            features = self.model.encode_text(self.tokenizer(list(texts)).to(self.device), normalize=True)
        return features.float().cpu().numpy()


_lock = threading.Lock()
_encoders: dict[ClipConfig, ClipEncoder] = {}


def get_encoder() -> ClipEncoder:
    """The process-wide encoder for the configured model (loaded on first use).

    Keyed by the configuration, so a settings change (tests, a re-embed with a new model)
    gets its own encoder instead of silently reusing the old model.
    """
    config = ClipConfig.from_settings()
    with _lock:
        encoder = _encoders.get(config)
        if encoder is None:
            weights = resolve_weights(config)
            encoder = ClipEncoder(config, weights)
            _encoders[config] = encoder
        return encoder


def decode_image(path: str | Path, *, draft_size: int | None) -> Image.Image:
    """Open and decode an image, leaving its mode alone: open_clip's transform resizes first
    and converts to RGB after, and doing the same keeps vectors identical to its pipeline.

    With `draft_size`, JPEG decoding uses Pillow's draft mode to decode at the smallest DCT
    scale that keeps both sides ≥ draft_size: several times faster on large photos, at the
    cost of pixels that differ slightly from a full decode (CURIO_CLIP_DRAFT_DECODE turns it
    off where bit-exact vectors matter more than speed)."""
    img = Image.open(path)
    if draft_size and img.format == "JPEG":
        img.draft(img.mode, (draft_size, draft_size))
    img.load()
    return img
