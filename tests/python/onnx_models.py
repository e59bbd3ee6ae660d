"""Reference networks for the ONNX tests: torchvision classification models
with seeded random weights, the tutorial network, and where each one's last
convolution-like layer lives in torch (for Grad-CAM)."""
import os

import numpy as np


def torch_modules():
    """torch, torchvision and onnx, or a skip (never under CI=true)."""
    import pytest
    if os.environ.get("CI") == "true":
        import onnx
        import torch
        import torchvision
    else:
        torch = pytest.importorskip("torch")
        torchvision = pytest.importorskip("torchvision")
        onnx = pytest.importorskip("onnx")
    return torch, torchvision, onnx


def tutorial_net(torch):
    """The tutorial's network: three valid convolutions with ReLU, then
    Linear(8*116*116, 128) + ReLU and Linear(128, 3) + Softmax."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 7), nn.ReLU(),
        nn.Conv2d(8, 8, 5), nn.ReLU(),
        nn.Conv2d(8, 8, 3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 116 * 116, 128), nn.ReLU(),
        nn.Linear(128, 3), nn.Softmax(dim=1))


def op_mix_net(torch, dynamic):
    """A small network that uses many ops at once: batch norm, depthwise
    convolution, hard swish, a channel shuffle (view, transpose, reshape),
    channel selection (Gather, Slice, Unsqueeze), Split, SiLU, ReLU6,
    squeeze-excitation, padding,
    pooling with ceil_mode, permute + LayerNorm + Linear + GELU (layer
    norm and GELU blocks), and a softmax head.  With `dynamic` it ends in
    a spatial mean so that any input size works."""
    nn, F = torch.nn, torch.nn.functional

    class OpMix(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
            self.se1 = nn.Conv2d(8, 4, 1)
            self.se2 = nn.Conv2d(4, 8, 1)
            self.ln = nn.LayerNorm(8)
            self.fc1 = nn.Linear(8, 16)
            self.fc2 = nn.Linear(16, 8)
            self.head = nn.Linear(8 if dynamic else 200, 5)

        def forward(self, x):
            x = x[:, [2, 1, 0]]  # Gather of a list of channels (BGR to RGB)
            # Slice, and Gather of one channel then Unsqueeze
            x = torch.cat([x[:, 0:1] * 0.5 + x[:, 0].unsqueeze(1) * 0.25, x[:, 1:]], 1)
            x = F.relu(self.bn(self.c1(x)))
            x = F.hardswish(self.dw(x))
            b, c, h, w = x.shape
            x = x.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)
            a, bb = torch.split(x, [3, 5], dim=1)
            x = torch.cat([F.silu(a), F.relu6(bb)], 1)
            g = torch.sigmoid(self.se2(F.relu(self.se1(F.adaptive_avg_pool2d(x, 1)))))
            x = F.pad(x * g, (1, 1, 1, 1))
            x = F.avg_pool2d(x, 3, 2, ceil_mode=True)
            y = x.permute(0, 2, 3, 1)
            y = y + self.fc2(F.gelu(self.fc1(self.ln(y))))
            x = F.max_pool2d(y.permute(0, 3, 1, 2), 2, 2, ceil_mode=True)
            x = x.mean([2, 3]) if dynamic else x.flatten(1)
            return F.softmax(self.head(x), 1)

    return OpMix()


def _no_inplace(torch, model):
    for mod in model.modules():
        if hasattr(mod, "inplace"):
            mod.inplace = False
    return model


# name -> (input size, module whose output is the last convolution-like
# layer's, or None).  The module paths follow torchvision 0.14.
SPECS = {
    "tutorial": (128, "5"),
    "op_mix": (32, None),
    "op_mix_dynamic": (32, None),
    "resnet18": (64, "layer4.1.bn2"),
    "vgg11_bn": (224, "features.27"),
    "mobilenet_v2": (64, "features.18"),
    "squeezenet1_1": (64, "classifier.2"),
    "alexnet": (224, None),
    "resnext50_32x4d": (64, None),
    "wide_resnet": (64, None),
    "squeezenet1_0": (64, None),
    "densenet121": (64, None),
    "inception_v3": (96, None),
    "googlenet": (64, None),
    "shufflenet_v2_x0_5": (64, None),
    "mobilenet_v3_small": (64, None),
    "mnasnet0_5": (64, None),
    "efficientnet_b0": (64, None),
    "efficientnet_v2_s": (64, None),
    "regnet_y_400mf": (64, None),
    "convnext_tiny": (64, None),
}


def build(name, seed=0):
    """The torch model `name` in eval mode, weights from `seed`."""
    torch, torchvision, _ = torch_modules()
    torch.manual_seed(seed)
    models = torchvision.models
    if name == "tutorial":
        m = tutorial_net(torch)
    elif name.startswith("op_mix"):
        m = op_mix_net(torch, name.endswith("dynamic"))
    elif name == "wide_resnet":
        # the wide_resnet family (width_per_group 128) with one block per
        # stage: the same ops as wide_resnet50_2 at a quarter of the size
        from torchvision.models.resnet import Bottleneck, ResNet
        m = ResNet(Bottleneck, [1, 1, 1, 1], width_per_group=128)
    elif name in ("inception_v3", "googlenet"):
        m = getattr(models, name)(weights=None, aux_logits=False, init_weights=True)
    else:
        m = getattr(models, name)(weights=None)
    m.eval()
    # batch norm statistics that are not the identity, so that folding
    # them into the convolutions is visible
    g = torch.Generator().manual_seed(seed + 1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.1)
    return _no_inplace(torch, m)


def export(model, size, path, opset, dynamic=False):
    torch, _, _ = torch_modules()
    x = torch.randn(1, 3, size, size)
    axes = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}} \
        if dynamic else None
    torch.onnx.export(model, x, str(path), opset_version=opset, input_names=["input"],
                      output_names=["output"], dynamic_axes=axes)


def submodule(model, path):
    mod = model
    for part in path.split("."):
        mod = mod[int(part)] if part.isdigit() else getattr(mod, part)
    return mod


def nhwc(x):
    return np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))
