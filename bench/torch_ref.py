"""The PyTorch side of `make bench` (Debian's python3-torch, CPU).

    torch_ref.py serve               commands on stdin, as bench/bench.c
    torch_ref.py export DIR          writes the ONNX models libcvis loads
    torch_ref.py startup DIR IMAGE   the start-up row: import torch, build
                                     resnet18, Grad-CAM on IMAGE, exit

Models are torchvision's with random weights from a fixed seed, in eval
mode; parameters do not require gradients (attribution needs none: this is
the faster way to use torch, so the comparison is against a careful user).
Methods are straightforward implementations of the same mathematics as
libcvis's (the parity references of tests/python/test_methods_parity.py,
in float32 and NCHW).  Tensors are NCHW; inputs are seeded uniform [0,1)."""
import os
import sys
import time

SEED = 0


def build(name):
    import torch
    import torchvision
    torch.manual_seed(SEED)
    nn = torch.nn
    if name == "tutorial":
        m = nn.Sequential(
            nn.Conv2d(3, 8, 7), nn.ReLU(),
            nn.Conv2d(8, 8, 5), nn.ReLU(),
            nn.Conv2d(8, 8, 3), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * 116 * 116, 128), nn.ReLU(),
            nn.Linear(128, 3))  # logits: libcvis drops the softmax too
    else:
        m = getattr(torchvision.models, name)(weights=None)
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def cam_module(model, name):
    """The module whose output is the CAM layer (the last convolution-like
    layer's output, as libcvis's seek finds it)."""
    if name.startswith("resnet"):
        return model.layer4
    if name.startswith("vgg"):
        return model.features[-2]
    return model[5]


def export(out_dir):
    import torch
    os.makedirs(out_dir, exist_ok=True)
    for name, size, axes in (
            ("resnet18", 224, {"input": {0: "batch"}, "output": {0: "batch"}}),
            ("resnet18_dyn", 224, {"input": {0: "batch", 2: "height", 3: "width"},
                                   "output": {0: "batch"}}),
            ("vgg11", 224, {"input": {0: "batch"}, "output": {0: "batch"}})):
        path = os.path.join(out_dir, name + ".onnx")
        if os.path.exists(path):
            continue
        m = build(name.replace("_dyn", ""))
        tmp = path + ".tmp"
        torch.onnx.export(m, torch.zeros(1, 3, size, size), tmp, opset_version=13,
                          input_names=["input"], output_names=["output"], dynamic_axes=axes)
        os.replace(tmp, path)
    state = os.path.join(out_dir, "resnet18.pt")
    if not os.path.exists(state):
        torch.save(build("resnet18").state_dict(), state + ".tmp")
        os.replace(state + ".tmp", state)


class Runner:
    def __init__(self):
        import torch
        import torch.nn.functional as F
        self.torch, self.F = torch, F
        self.models, self.inputs = {}, {}

    def input_for(self, b, h, w):
        """libcvis's input of this shape when bench.c saved it (NHWC, under
        BENCH_INPUT_DIR), else a seeded one of torch's own."""
        key = (b, h, w)
        if key not in self.inputs:
            path = os.path.join(os.environ.get("BENCH_INPUT_DIR", ""),
                                "input_%d_%dx%d.npy" % key)
            if os.environ.get("BENCH_INPUT_DIR") and os.path.exists(path):
                import numpy as np
                x = self.torch.from_numpy(np.load(path)).permute(0, 3, 1, 2).contiguous()
            else:
                g = self.torch.Generator().manual_seed(1234 + b * 7 + h)
                x = self.torch.rand(b, 3, h, w, generator=g)
            self.inputs[key] = x
        return self.inputs[key]

    # -- helpers -----------------------------------------------------------
    def normalize(self, a):
        flat = a.reshape(a.shape[0], -1)
        lo = flat.min(1, keepdim=True).values
        hi = flat.max(1, keepdim=True).values
        return ((flat - lo) / (hi - lo + 1e-7)).reshape(a.shape)

    def expand(self, cam, H, W):
        return self.F.interpolate(cam[:, None], size=(H, W), mode="bilinear",
                                  align_corners=True)[:, 0]

    def acts_and_grads(self, name, x, cls):
        """The CAM layer's activations and d(sum of target logits)/d(them),
        backward stopping there."""
        model = self.models[name]
        store = {}

        def hook(_mod, _inp, out):
            out = out.detach().requires_grad_(True)
            store["A"] = out
            return out
        h = cam_module(model, name).register_forward_hook(hook)
        try:
            out = model(x)
        finally:
            h.remove()
        s = out.gather(1, cls[:, None])
        s.sum().backward()
        return store["A"].detach(), store["A"].grad, s.detach()

    # -- rows ----------------------------------------------------------------
    def fwd(self, name, x, grad):
        model = self.models[name]
        if not grad:
            with self.torch.no_grad():
                model(x)
            return
        x = x.clone().requires_grad_(True)
        out = model(x)
        out[:, 0].sum().backward()

    def saliency(self, name, x, cls):
        x = x.clone().requires_grad_(True)
        self.models[name](x).gather(1, cls[:, None]).sum().backward()
        return self.normalize(x.grad.abs().amax(1))

    def smoothgrad(self, name, x, cls, samples=20, noise=0.2):
        model, torch = self.models[name], self.torch
        span = (x.flatten(1).max(1).values - x.flatten(1).min(1).values) * noise
        total = torch.zeros_like(x)
        for _ in range(samples):
            xn = (x + torch.randn_like(x) * span[:, None, None, None]).requires_grad_(True)
            model(xn).gather(1, cls[:, None]).sum().backward()
            total += xn.grad.abs()
        return self.normalize((total / samples).amax(1))

    def gradcam(self, name, x, cls):
        A, g, _ = self.acts_and_grads(name, x, cls)
        cam = self.torch.relu((g.mean((2, 3), keepdim=True) * A).sum(1))
        return self.normalize(self.expand(cam, x.shape[2], x.shape[3]))

    def gradcam_pp(self, name, x, cls):
        torch = self.torch
        A, g, s = self.acts_and_grads(name, x, cls)
        S = torch.exp(s).view(-1, 1, 1, 1)
        d1, d2, d3 = S * g, S * g ** 2, S * g ** 3
        sa = A.sum((2, 3), keepdim=True)
        den = 2 * d2 + d3 * sa
        den = torch.where(d2 == 0, torch.ones_like(den), den)
        alpha = d2 / den
        asum = alpha.sum((2, 3), keepdim=True)
        alpha = alpha / torch.where(asum != 0, asum, torch.ones_like(asum))
        w = (alpha * torch.relu(d1)).sum((2, 3), keepdim=True)
        cam = torch.relu((w * A).sum(1))
        return self.normalize(self.expand(cam, x.shape[2], x.shape[3]))

    def scorecam(self, name, x, cls, max_n=None, batch=32):
        torch, F = self.torch, self.F
        model = self.models[name]
        store = {}
        h = cam_module(model, name).register_forward_hook(
            lambda _m, _i, out: store.__setitem__("A", out))
        with torch.no_grad():
            try:
                model(x)
            finally:
                h.remove()
            A = store["A"]
            B, K = A.shape[:2]
            H, W = x.shape[2:]
            weights = torch.zeros(B, K)
            if max_n is None:
                chans = torch.arange(K)
            else:  # Faster Score-CAM: every image uses the union of the
                # per-image sets (SEMANTICS.md, as libcvis does)
                sd = A.flatten(2).std(2, unbiased=False)
                chans = torch.unique(sd.topk(max_n, dim=1).indices.flatten())
            for b in range(B):
                for k0 in range(0, len(chans), batch):
                    ks = chans[k0:k0 + batch]
                    up = F.interpolate(A[b:b + 1, ks], size=(H, W), mode="bilinear",
                                       align_corners=True)[0]
                    lo = up.flatten(1).min(1).values[:, None, None]
                    hi = up.flatten(1).max(1).values[:, None, None]
                    masks = (up - lo) / (hi - lo + 1e-7)
                    p = torch.softmax(model(x[b:b + 1] * masks[:, None]), 1)
                    weights[b, ks] = p[:, cls[b]]
            cam = torch.relu((weights[:, :, None, None] * A).sum(1))
        return self.normalize(self.expand(cam, H, W))

    def actmax(self, name, x, cls, steps=100, lr=1.0, rho=0.999, eps=1e-7, jitter=4,
               rotate=1.0, tv_w=1.0, norm_w=0.3):
        """Keras-style RMSprop on -score + TV + L1 norm, with a random
        jitter (roll) and a random rotation of up to `rotate` degrees per
        step, clipped to [0, 1] at the end."""
        torch, F = self.torch, self.F
        model = self.models[name]
        v = x.clone()
        acc = torch.zeros_like(v)
        n = v[0].numel()
        for _ in range(steps):
            v = v.detach().requires_grad_(True)
            dy, dx = (int(t) for t in torch.randint(-jitter, jitter + 1, (2,)))
            u = torch.roll(v, (dy, dx), (2, 3))
            ang = (torch.rand(()) * 2 - 1) * rotate * 3.141592653589793 / 180
            c, s = torch.cos(ang), torch.sin(ang)
            theta = torch.stack([torch.stack([c, -s, torch.zeros(())]),
                                 torch.stack([s, c, torch.zeros(())])])
            grid = F.affine_grid(theta.expand(v.shape[0], 2, 3), list(v.shape),
                                 align_corners=False)
            u = F.grid_sample(u, grid, align_corners=False)
            score = model(u).gather(1, cls[:, None]).sum()
            tv = ((v[:, :, 1:] - v[:, :, :-1]).abs().sum() +
                  (v[:, :, :, 1:] - v[:, :, :, :-1]).abs().sum()) / n
            norm = v.abs().sum() / n
            (-score + tv_w * tv + norm_w * norm).backward()
            g = v.grad
            acc = rho * acc + (1 - rho) * g * g
            v = v.detach() - lr * g / (torch.sqrt(acc) + eps)
        return torch.clamp(v, 0, 1)

    def run(self, name, kind, b, h, w):
        x = self.input_for(b, h, w)
        cls = self.torch.arange(b) % 1000
        t = time.perf_counter()
        if kind in ("fwd", "fwdgrad"):
            self.fwd(name, x, kind == "fwdgrad")
        elif kind == "saliency":
            self.saliency(name, x, cls)
        elif kind == "smoothgrad":
            self.smoothgrad(name, x, cls)
        elif kind == "gradcam":
            self.gradcam(name, x, cls)
        elif kind == "gradcam++":
            self.gradcam_pp(name, x, cls)
        elif kind == "scorecam":
            self.scorecam(name, x, cls)
        elif kind == "scorecam64":  # two batches per image: Score-CAM's peak memory
            self.scorecam(name, x, cls, max_n=64)
        elif kind == "fasterscorecam":
            self.scorecam(name, x, cls, max_n=10)
        elif kind == "actmax":
            self.actmax(name, x, cls)
        else:
            raise ValueError("unknown kind " + kind)
        return time.perf_counter() - t

    def sgemm(self, n):
        a, b, c = self.torch.rand(n, n), self.torch.rand(n, n), self.torch.rand(n, n)
        self.torch.mm(a, b, out=c)  # timed the second time, as bench.c does
        t = time.perf_counter()
        self.torch.mm(a, b, out=c)
        return time.perf_counter() - t


def blas_threads(n):
    """torch.set_num_threads sets OpenMP's count (its own convolutions), not
    the BLAS's: Debian's torch calls OpenBLAS (pthreads), which keeps one
    thread per core unless told otherwise, so a "1 thread" matrix product
    would run on two.  The same count goes to OpenBLAS, as bench.c does."""
    import ctypes
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
    except OSError:  # another BLAS: its count is not set here
        return
    lib.openblas_set_num_threads(ctypes.c_int(n))


def serve():
    r = Runner()
    torch = r.torch
    torch.set_num_interop_threads(1)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "quit":
                break
            if parts[0] == "load":
                r.models[parts[1]] = build(parts[2])
                value = 0
            elif parts[0] == "threads":
                torch.set_num_threads(int(parts[1]))
                blas_threads(int(parts[1]))
                value = torch.get_num_threads()
            elif parts[0] == "run":
                value = r.run(parts[1], parts[2], *(int(p) for p in parts[3:6]))
            elif parts[0] == "sgemm":
                value = r.sgemm(int(parts[1]))
            else:
                raise ValueError("unknown command " + parts[0])
            print("ok %.6g" % value, flush=True)
        except Exception as e:  # the driver reports it with the row
            print("error %s" % str(e).replace("\n", " "), flush=True)


def startup(model_dir, image):
    """A whole process: import torch, build resnet18 with the saved weights,
    Grad-CAM of the top-1 class on one picture, the map written as .npy."""
    import numpy as np
    import torch
    import torchvision
    from PIL import Image
    m = torchvision.models.resnet18(weights=None)
    m.load_state_dict(torch.load(os.path.join(model_dir, "resnet18.pt")))
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    img = np.asarray(Image.open(image).convert("RGB").resize((224, 224)), np.float32) / 255
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = torch.from_numpy(((img - mean) / std).astype(np.float32).transpose(2, 0, 1)[None].copy())
    r = Runner()
    r.models["resnet18"] = m
    with torch.no_grad():
        cls = m(x).argmax(1)
    cam = r.gradcam("resnet18", x, cls)
    np.save(os.path.join(model_dir, "startup_torch_map.npy"), cam.numpy())


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve()
    elif sys.argv[1] == "export":
        export(sys.argv[2])
    elif sys.argv[1] == "startup":
        startup(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: torch_ref.py serve | export DIR | startup DIR IMAGE")
