"""Seeds written by other programs than libcvis, added to those of
make_seeds.c: NPZ archives by numpy, images by PIL, ONNX models exported by
PyTorch.  Each group is skipped (with a note) when its module is missing.

    python3 tests/fuzz/make_seeds.py DIR
"""
import os
import warnings
import sys

warnings.filterwarnings("ignore")
here = os.path.dirname(os.path.abspath(__file__))
root = sys.argv[1]


def out(sub, name):
    os.makedirs(os.path.join(root, sub), exist_ok=True)
    return os.path.join(root, sub, name)


def numpy_seeds():
    import numpy as np
    rng = np.random.default_rng(3)
    # the weights of seed_npz_model (tests/fuzz/seed_models.h), as numpy
    # writes them: float64, one Fortran-ordered, one big-endian, ":0" names
    w = {
        "conv/kernel:0": rng.standard_normal((3, 3, 3, 4)),
        "conv/bias:0": np.zeros(4),
        "bn/gamma": np.ones(4, dtype="<f4"),
        "bn/beta": np.zeros(4, dtype=">f4"),
        "bn/moving_mean": np.asfortranarray(rng.standard_normal(4).astype("<f2")),
        "bn/moving_variance": np.ones(4, dtype="<f8"),
        "fc/kernel": np.asfortranarray(rng.standard_normal((4, 3)).astype("<f4")),
        "fc/bias": np.zeros(3, dtype="<f4"),
    }
    np.savez(out("npz", "numpy_model.npz"), **w)
    np.savez_compressed(out("npz", "numpy_model_deflated.npz"), **w)
    np.savez(out("npz", "numpy_misc.npz"), scalar=np.float32(2.5),
             empty=np.zeros((0, 3), dtype="<f4"), half=np.arange(6, dtype="<f2"),
             big=np.arange(4, dtype=">f8").reshape(2, 2))


def pil_seeds():
    from PIL import Image
    img = Image.new("RGB", (11, 7))
    img.putdata([(x * 23 % 256, y * 37 % 256, (x * y) % 256) for y in range(7) for x in range(11)])
    img.save(out("image", "pil_progressive.jpg"), progressive=True, quality=80)
    img.save(out("image", "pil_420.jpg"), subsampling=2, quality=60)
    img.save(out("image", "pil_interlaced.png"), interlace=1)
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(out("image", "pil_palette.png"))
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(out("image", "pil_palette.gif"))
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(out("image", "pil_palette.bmp"))
    img.convert("1").save(out("image", "pil_1bit.bmp"))
    img.convert("L").save(out("image", "pil_gray.tga"))
    img.save(out("image", "pil_rle.tga"), compression="tga_rle")
    img.convert("L").convert("I").save(out("image", "pil_16bit.png"))
    img.convert("LA").save(out("image", "pil_gray_alpha.png"))


def torch_seeds():
    import torch
    sys.path.insert(0, os.path.join(here, "..", "python"))
    import onnx_models
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)

    class Small(nn.Module):
        """Residual block, squeeze, pools, Gemm and assorted activations."""

        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(6)
            self.c2 = nn.Conv2d(6, 6, 3, padding=1, groups=2)
            self.bn2 = nn.BatchNorm2d(6)
            self.sq = nn.Conv2d(6, 4, 1)
            self.fc = nn.Linear(4 * 4 * 4, 5)
            self.drop = nn.Dropout(0.3)

        def forward(self, x):
            y = F.relu(self.bn1(self.c1(x)))
            y = F.leaky_relu(self.bn2(self.c2(y)) + y, 0.2)
            y = F.max_pool2d(y, 2)
            y = torch.cat([torch.tanh(y[:, :3]), torch.sigmoid(y[:, 3:]) * 2.0], 1)
            y = F.elu(self.sq(y))
            y = F.avg_pool2d(y, 2)
            return self.fc(self.drop(torch.flatten(y, 1)))

    small = Small().eval()
    for opset in (11, 13):
        onnx_models.export(small, 16, out("onnx", "torch_small_opset%d.onnx" % opset), opset)
    mix = onnx_models.op_mix_net(torch, False).eval()
    onnx_models.export(mix, 32, out("onnx", "torch_op_mix.onnx"), 17)
    mixd = onnx_models.op_mix_net(torch, True).eval()
    onnx_models.export(mixd, 32, out("onnx", "torch_op_mix_dynamic.onnx"), 17, dynamic=True)


for name, fn in (("numpy", numpy_seeds), ("PIL", pil_seeds), ("torch", torch_seeds)):
    try:
        fn()
    except ImportError as e:
        print("make_seeds.py: no %s seeds (%s)" % (name, e))
print("make_seeds.py: seeds added under %s" % root)
