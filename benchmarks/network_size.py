"""Print parameter counts and multiply-accumulates of every network at one input size.

Usage: ``python benchmarks/network_size.py [--height 512 --width 1024] [--classes 19]``

MACs are counted by ``torch.utils.flop_counter`` (convolutions and matrix products,
FLOPs / 2) on the ``meta`` device, so nothing is allocated or computed: the script
takes seconds even for WideResNet38 at 1024×2048. BatchNorm, activations, pooling and
interpolation are not counted (the usual convention, under 1 % here).
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from anomaly_seg_ros.networks import create_network

#: (label, create_network keyword arguments) of the rows printed.
_VARIANTS = (
    ("resnet50 os16", {"backbone": "resnet50", "output_stride": 16}),
    ("resnet50 os8", {"backbone": "resnet50", "output_stride": 8}),
    ("resnet101 os16", {"backbone": "resnet101", "output_stride": 16}),
    ("resnet101 os8", {"backbone": "resnet101", "output_stride": 8}),
    ("mobilenetv2 os16", {"backbone": "mobilenetv2", "output_stride": 16}),
    ("mobilenetv2 os8", {"backbone": "mobilenetv2", "output_stride": 8}),
    ("mobilenetv2 x0.5 os16", {"backbone": "mobilenetv2", "output_stride": 16, "width_mult": 0.5}),
    ("mobilenetv2 x0.35 os16", {"backbone": "mobilenetv2", "width_mult": 0.35}),
    (
        "mobilenetv2 x0.5 separable",
        {"backbone": "mobilenetv2", "width_mult": 0.5, "decoder": "separable"},
    ),
    ("resnet101 os16 separable", {"backbone": "resnet101", "decoder": "separable"}),
    ("wideresnet38 os16", {"backbone": "wideresnet38", "output_stride": 16}),
    ("wideresnet38 os8", {"backbone": "wideresnet38", "output_stride": 8}),
)


def count(
    architecture: dict[str, Any], height: int, width: int
) -> tuple[int, int, int, tuple[int, ...]]:
    """Return (all parameters, final-conv parameters, MACs, logits shape) of one network."""
    with torch.device("meta"):
        network = create_network(**architecture).eval()
        image = torch.empty(1, 3, height, width)
    parameters = sum(p.numel() for p in network.parameters())
    final_conv: torch.nn.Conv2d = network.final_conv  # type: ignore[assignment]
    head = sum(p.numel() for p in final_conv.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        logits = network(image)
    return parameters, head, counter.get_total_flops() // 2, tuple(logits.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=19)
    args = parser.parse_args()
    print(f"input 1x3x{args.height}x{args.width}, {args.classes} classes")
    print(f"{'network':28s} {'params (M)':>10s} {'final conv':>10s} {'GMACs':>9s}  logits")
    for label, architecture in _VARIANTS:
        parameters, head, macs, shape = count(
            {**architecture, "num_classes": args.classes}, args.height, args.width
        )
        print(f"{label:28s} {parameters / 1e6:10.2f} {head:10d} {macs / 1e9:9.1f}  {shape}")


if __name__ == "__main__":
    main()
