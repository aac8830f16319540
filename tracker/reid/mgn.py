"""MGN, the Multiple Granularity Network (Wang et al., ACM MM 2018, arXiv 1804.01438), in three layouts.

A ResNet-50 is shared up to ``res_conv4_1`` (``layer3[0]``); three branches each own a copy of the rest of
``layer3`` and a ``layer4``-like stage. Branch 1 gives one global feature; branch 2 a global feature and
2 horizontal stripes; branch 3 a global feature and 3 stripes. Each of the 8 maps is pooled to 2048-d and
reduced to 256-d by a 1x1 conv + BN (+ ReLU); the test-time feature is the 8 reduced features
concatenated (2048-d) and L2-normalised.

The ``layout`` switch reproduces the networks behind the public checkpoints exactly, parameter name for
parameter name (``../shared/mgn/*.json`` lists them), so that each loads with ``strict=True``:

``paper``
    MGN as published, in seathiefwang/MGN-pytorch's layout (``backone``, ``p1..p3``, ``reduction_0..7``,
    ``fc_id_*``): plain ResNet-50, global branch downsampled in ``res_conv5_1`` (12x4 map for 384x128
    input), the part branches at stride 1 (24x8); global max pooling; conv + BN + ReLU reduction.
    Training: softmax classifiers (Linear with bias) on the 5 part features and on the 3 global features,
    batch-hard triplet loss on the 3 reduced global features. The paper feeds the global classifiers the
    2048-d pooled features (``global_cls_dim=2048``, the default for new models); seathiefwang's
    released ``model_best.pt`` feeds them the 256-d reduced ones (``global_cls_dim=256``); checkpoints
    say which by their shapes. Test: features after the ReLU; the released code sums the features of the
    image and of its horizontal flip (``test_flip``).
``fastreid``
    fast-reid's 2020 (v0.2) MGN behind ``market_mgn_R50-ibn.pth``: ResNet-50 with IBN-a in layer1-3,
    *all* branches at stride 1 (24x8), GeM pooling with a learnable exponent, conv + BN + ReLU reduction
    (``bX_pool``), then a "bnneck" BN whose output is the test feature and feeds a bias-free classifier
    (``bX_head``); the normalisation constants are stored as ``pixel_mean`` / ``pixel_std`` buffers.
``fastreid-v1``
    the same network as written by current fast-reid (v1): ``bX_head`` holds GeM (``pool_layer``), the
    conv + BN reduction without ReLU (``bottleneck``) and the classifier matrix (``weight``);
    ``pixel_mean`` / ``pixel_std`` are not saved.

Input to :meth:`MGN.forward`: float (N, 3, H, W) **RGB in 0..255** (any H, W with H >= 48 and W >= 16;
384x128 for the public weights); the model normalises with the ImageNet mean/std
(``[123.675, 116.28, 103.53]`` / ``[58.395, 57.12, 57.375]``), which is what all three used.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from tracker.config import VARIANTS as LAYOUTS

UNITS = ("b1", "b2", "b3", "b21", "b22", "b31", "b32", "b33")  # order of the 8 features in the test feature
PAPER_CLASSIFIERS = (
    "fc_id_2048_0", "fc_id_2048_1", "fc_id_2048_2",
    "fc_id_256_1_0", "fc_id_256_1_1", "fc_id_256_2_0", "fc_id_256_2_1", "fc_id_256_2_2",
)  # fmt: skip
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
FEAT_DIM = 256
EMBED_DIM = len(UNITS) * FEAT_DIM  # 2048
POOLED_DIM = 2048


class IBN(nn.Module):
    """IBN-a normalisation: InstanceNorm (affine) on the first half of the channels, BatchNorm on the rest."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.half = planes // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Keep channels-last input channels-last (a plain .contiguous() would convert it back and forth).
        fmt = (
            torch.channels_last
            if x.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat(
            [self.IN(a.contiguous(memory_format=fmt)), self.BN(b.contiguous(memory_format=fmt))], dim=1
        )


class Bottleneck(nn.Module):
    """ResNet bottleneck with torchvision's parameter names (stride on the 3x3 conv); ``ibn`` puts IBN-a
    in place of ``bn1``."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        ibn: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = IBN(planes) if ibn else nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def resnet_stage(inplanes: int, planes: int, blocks: int, stride: int, ibn: bool) -> nn.Sequential:
    """One ResNet-50 stage (``layerN``): ``blocks`` bottlenecks, the first with a 1x1 projection."""
    downsample = None
    if stride != 1 or inplanes != planes * 4:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4)
        )
    layers = [Bottleneck(inplanes, planes, stride, downsample, ibn)]
    layers += [Bottleneck(planes * 4, planes, ibn=ibn) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class GeM(nn.Module):
    """Generalised-mean pooling to 1x1 with a learnable exponent ``p`` (fast-reid's GeneralizedMeanPoolingP).

    Computed in float32 even under autocast: ``x ** 3`` of activations overflows float16.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.float()
        x = x.float().clamp(min=self.eps).pow(p)
        return F.adaptive_avg_pool2d(x, 1).pow(1.0 / p)


def _pool_reduce(relu: bool) -> nn.Sequential:
    """fast-reid's pooling + reduction: GeM, 1x1 conv 2048 -> 256 without bias, BN (+ ReLU)."""
    layers: list[nn.Module] = [
        GeM(),
        nn.Conv2d(POOLED_DIM, FEAT_DIM, 1, bias=False),
        nn.BatchNorm2d(FEAT_DIM),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _frozen_bias_bn(channels: int) -> nn.BatchNorm2d:
    """BN whose shift stays 0 during training (fast-reid's bnneck: ``bias_freeze=True``)."""
    bn = nn.BatchNorm2d(channels)
    bn.bias.requires_grad_(False)
    return bn


class BNNeckHead(nn.Module):
    """fast-reid v0.2 head: ``bnneck`` BN on the 256-d feature, bias-free ``classifier`` (training only)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.bnneck = _frozen_bias_bn(FEAT_DIM)
        self.classifier = nn.Linear(FEAT_DIM, num_classes, bias=False) if num_classes else None


class EmbeddingHead(nn.Module):
    """fast-reid v1 head: GeM ``pool_layer``, ``bottleneck`` (1x1 conv + BN), classifier matrix ``weight``."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.pool_layer = GeM()
        self.bottleneck = nn.Sequential(
            nn.Conv2d(POOLED_DIM, FEAT_DIM, 1, bias=False), _frozen_bias_bn(FEAT_DIM)
        )
        self.weight = nn.Parameter(torch.empty(num_classes, FEAT_DIM)) if num_classes else None


class MGNOutput(NamedTuple):
    """Training-mode output: 8 classifier logits (N, num_classes) in :data:`UNITS` order and the 3
    global features (N, 256) for the triplet loss."""

    logits: list[torch.Tensor]
    triplet: list[torch.Tensor]


class MGN(nn.Module):
    """MGN in one of :data:`LAYOUTS` (see the module docstring).

    Parameters
    ----------
    layout : "fastreid" | "fastreid-v1" | "paper"
    num_classes : training identities; 0 builds an inference-only model without classifiers.
    global_cls_dim : ``paper`` only: input size of the 3 global classifiers, 2048 (paper) or 256
        (seathiefwang's release).
    test_flip : eval mode sums the features of each image and its mirror image before normalising.

    ``forward`` in eval mode: (N, 3, H, W) RGB 0..255 -> (N, 2048) L2-normalised; in training mode:
    :class:`MGNOutput`.
    """

    def __init__(
        self,
        layout: str = "fastreid",
        num_classes: int = 0,
        global_cls_dim: int = POOLED_DIM,
        test_flip: bool = False,
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"unknown MGN layout {layout!r} (known: {', '.join(LAYOUTS)})")
        if global_cls_dim not in (FEAT_DIM, POOLED_DIM):
            raise ValueError(f"global_cls_dim must be {FEAT_DIM} or {POOLED_DIM}, got {global_cls_dim}")
        self.layout = layout
        self.num_classes = num_classes
        self.global_cls_dim = global_cls_dim if layout == "paper" else FEAT_DIM
        self.test_flip = test_flip
        # Build on the meta device (no memory, no default initialisation, cheap deep copies), then
        # allocate on the caller's default device and initialise once.
        target = torch.empty(0).device
        with torch.device("meta"):
            self._build(layout, num_classes)
        if target.type != "meta":
            self.to_empty(device=target)
            self.reset_parameters()

    def _build(self, layout: str, num_classes: int) -> None:
        ibn = layout != "paper"
        persistent = layout == "fastreid"  # fast-reid v0.2 saved them; v1 and seathiefwang did not
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=persistent)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=persistent)

        layer3 = resnet_stage(512, 256, 6, 2, ibn)
        trunk = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            resnet_stage(64, 64, 3, 1, ibn),
            resnet_stage(256, 128, 4, 2, ibn),
            layer3[0],
        )
        res_conv4 = nn.Sequential(*layer3[1:])
        global_conv5 = resnet_stage(1024, 512, 3, 2 if layout == "paper" else 1, ibn=False)
        part_conv5 = resnet_stage(1024, 512, 3, 1, ibn=False)
        branch_names = ("p1", "p2", "p3") if layout == "paper" else ("b1", "b2", "b3")
        self._trunk_name = "backone" if layout == "paper" else "backbone"
        self._branch_names = branch_names
        setattr(self, self._trunk_name, trunk)
        for name, conv5 in zip(branch_names, (global_conv5, part_conv5, part_conv5)):
            setattr(self, name, nn.Sequential(copy.deepcopy(res_conv4), copy.deepcopy(conv5)))

        for i, unit in enumerate(UNITS):
            if layout == "paper":
                reduction = nn.Sequential(
                    nn.Conv2d(POOLED_DIM, FEAT_DIM, 1, bias=False),
                    nn.BatchNorm2d(FEAT_DIM),
                    nn.ReLU(inplace=True),
                )
                setattr(self, f"reduction_{i}", reduction)
                if num_classes:
                    cls_in = self.global_cls_dim if i < 3 else FEAT_DIM
                    setattr(self, PAPER_CLASSIFIERS[i], nn.Linear(cls_in, num_classes))
            elif layout == "fastreid":
                setattr(self, f"{unit}_pool", _pool_reduce(relu=True))
                setattr(self, f"{unit}_head", BNNeckHead(num_classes))
            else:
                setattr(self, f"{unit}_head", EmbeddingHead(num_classes))

    def reset_parameters(self) -> None:
        """Random initialisation: He-normal convs, norms to identity with fresh running statistics,
        classifiers N(0, 0.001), GeM p = 3, the ImageNet normalisation constants."""
        with torch.no_grad():
            self.pixel_mean.copy_(torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1))
            self.pixel_std.copy_(torch.tensor(PIXEL_STD).view(1, 3, 1, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)):
                m.reset_parameters()  # weight 1, bias 0, running mean 0 / var 1, counter 0
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, EmbeddingHead) and m.weight is not None:
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, GeM):
                nn.init.constant_(m.p, 3.0)

    def restore_constants(self) -> None:
        """Recreate, on the CPU, the normalisation buffers a checkpoint does not store (after a meta-device
        build and ``load_state_dict(assign=True)``)."""
        if self.layout != "fastreid" or self.pixel_mean.is_meta:
            self.pixel_mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
            self.pixel_std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)

    # ---------------------------------------------------------------- forward
    def _maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The 8 feature maps in :data:`UNITS` order: 3 branch outputs, then 2 and 3 horizontal stripes."""
        x = (x - self.pixel_mean) / self.pixel_std
        shared = getattr(self, self._trunk_name)(x)
        g1, g2, g3 = (getattr(self, name)(shared) for name in self._branch_names)
        return [g1, g2, g3, *torch.tensor_split(g2, 2, dim=2), *torch.tensor_split(g3, 3, dim=2)]

    def _unit(self, i: int, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One of the 8 features from its map ``z``: (triplet feature, test feature, classifier input)."""
        if self.layout == "paper":
            pooled = F.adaptive_max_pool2d(z, 1)
            f = getattr(self, f"reduction_{i}")(pooled).flatten(1)
            cls_in = pooled.flatten(1) if i < 3 and self.global_cls_dim == POOLED_DIM else f
            return f, f, cls_in
        unit = UNITS[i]
        head = getattr(self, f"{unit}_head")
        if self.layout == "fastreid":
            f = getattr(self, f"{unit}_pool")(z)
            bn = head.bnneck(f).flatten(1)
            return f.flatten(1), bn, bn
        neck = head.bottleneck(head.pool_layer(z)).flatten(1)
        return neck, neck, neck

    def _classify(self, i: int, cls_in: torch.Tensor) -> torch.Tensor:
        if self.layout == "paper":
            return getattr(self, PAPER_CLASSIFIERS[i])(cls_in)
        head = getattr(self, f"{UNITS[i]}_head")
        if self.layout == "fastreid":
            return head.classifier(cls_in)
        return F.linear(cls_in, head.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB 0..255 -> (N, 2048) test features, not normalised."""
        return torch.cat([self._unit(i, z)[1] for i, z in enumerate(self._maps(x))], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | MGNOutput:
        if not self.training:
            if self.test_flip:
                both = self.features(torch.cat([x, x.flip(3)]))
                feats = both[: len(x)] + both[len(x) :]
            else:
                feats = self.features(x)
            return F.normalize(feats.float(), dim=1)
        if not self.num_classes:
            raise RuntimeError("this MGN has no classifiers (num_classes=0) and cannot be trained")
        units = [self._unit(i, z) for i, z in enumerate(self._maps(x))]
        logits = [self._classify(i, u[2]) for i, u in enumerate(units)]
        return MGNOutput(logits=logits, triplet=[u[0] for u in units[:3]])

    def frozen_parameter_names(self) -> set[str]:
        """Parameters that training must not update (the bnneck shifts of the fast-reid layouts)."""
        return {name for name, p in self.named_parameters() if not p.requires_grad}


def load_imagenet_resnet50(model: MGN, state: dict[str, torch.Tensor]) -> None:
    """Initialise the trunk and every branch of ``model`` from a torchvision ResNet-50 state dict.

    Branch stages all start from ``layer3[1:]`` / ``layer4`` (stride does not change the weights). For
    IBN-a layers the BN parameters are split: the first half of the channels initialises the
    InstanceNorm's affine parameters, the rest the BatchNorm. Heads keep their random initialisation.
    """
    target = model.state_dict()
    trunk = model._trunk_name
    mapping: dict[str, str] = {}
    for key in state:
        head, _, rest = key.partition(".")
        if head in ("conv1", "bn1"):
            mapping[f"{trunk}.{0 if head == 'conv1' else 1}.{rest}"] = key
        elif head in ("layer1", "layer2"):
            mapping[f"{trunk}.{4 if head == 'layer1' else 5}.{rest}"] = key
        elif head == "layer3":
            block, _, tail = rest.partition(".")
            if block == "0":
                mapping[f"{trunk}.6.{tail}"] = key
            else:
                for branch in model._branch_names:
                    mapping[f"{branch}.0.{int(block) - 1}.{tail}"] = key
        elif head == "layer4":
            for branch in model._branch_names:
                mapping[f"{branch}.1.{rest}"] = key
    new = {}
    for dst, src in mapping.items():
        value = state[src]
        if dst in target:
            new[dst] = value
            continue
        # IBN split: "...bn1.<param>" -> "...bn1.IN.<param>" (first half) / "...bn1.BN.<param>" (rest).
        prefix, _, param = dst.rpartition(".")
        in_key, bn_key = f"{prefix}.IN.{param}", f"{prefix}.BN.{param}"
        if bn_key in target:
            half = value.shape[0] // 2 if value.ndim else 0
            if in_key in target:
                new[in_key] = value[:half]
            new[bn_key] = value[half:] if value.ndim else value
    missing_backbone = [
        k
        for k in target
        if k not in new and (k.startswith(trunk + ".") or k.split(".")[0] in model._branch_names)
    ]
    if missing_backbone:
        raise ValueError(
            f"ResNet-50 state dict does not cover {len(missing_backbone)} backbone entries, e.g. "
            f"{missing_backbone[0]}"
        )
    model.load_state_dict(new, strict=False)
