"""Reference features for scoregen's Inception-v3 (tests/inception.rs), from pytorch-fid itself.

pytorch-fid's FIDInceptionV3 is built with synthetic weights drawn by a generator both sides
implement bit for bit (splitmix64 seeded by the FNV-1a hash of each tensor name; He-uniform
convolutions, batch-norm statistics near identity), in place of the downloaded
pt_inception-2015-12-05 weights. It is run on deterministic images, and the pool3 features are
written to tests/fixtures/inception_pytorch_fid.json.

    python -m venv venv && venv/bin/pip install torch torchvision pytorch-fid
    venv/bin/python bench/inception_fixture.py [out.json]
"""
import json
import sys

import numpy as np
import torch
import pytorch_fid.inception as pfi

M64 = (1 << 64) - 1


def fnv1a(name: str) -> int:
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def uniform(seed: int, n: int) -> np.ndarray:
    """n values in [0, 1) (multiples of 2^-24) from splitmix64 started at `seed`."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def synthetic(name: str, shape) -> np.ndarray:
    n = int(np.prod(shape))
    u = uniform(fnv1a(name), n)
    if name.endswith("conv.weight"):
        fan_in = int(np.prod(shape[1:]))
        v = (2.0 * u - 1.0) * np.sqrt(6.0 / fan_in)
    elif name.endswith("bn.weight"):
        v = 1.0 + 0.2 * (2.0 * u - 1.0)
    elif name.endswith("bn.running_var"):
        v = 1.0 + 0.5 * u
    else:  # bn.bias, bn.running_mean
        v = 0.1 * (2.0 * u - 1.0)
    return v.astype(np.float32).reshape(shape)


def image(seed: int, c: int, h: int, w: int) -> np.ndarray:
    """Pixels in [-1, 1] (scoregen's scale)."""
    return (2.0 * uniform(seed, c * h * w) - 1.0).astype(np.float32).reshape(c, h, w)


def synthetic_state_dict(model):
    sd = {}
    for k, v in model.state_dict().items():
        if v.dtype.is_floating_point and ("conv" in k or "bn" in k) and not k.startswith("fc"):
            sd[k] = torch.from_numpy(synthetic(k, tuple(v.shape)))
        else:
            sd[k] = v
    return sd


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/inception_pytorch_fid.json"
    real_loader = pfi.load_state_dict_from_url

    def fake_loader(*_a, **_k):
        # torchvision's network has the FID blocks' parameter names and shapes.
        probe = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        return synthetic_state_dict(probe)

    pfi.load_state_dict_from_url = fake_loader
    net = pfi.InceptionV3([3]).eval()
    pfi.load_state_dict_from_url = real_loader
    torch.set_grad_enabled(False)

    def feats(imgs):
        x = torch.from_numpy(np.stack(imgs))
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x01 = (x.clamp(-1, 1) + 1) / 2  # pytorch-fid takes [0, 1]
        return net(x01)[0].squeeze(3).squeeze(2).double().numpy()

    grey = feats([image(1, 1, 28, 28), image(2, 1, 28, 28)])
    rgb = feats([image(3, 3, 320, 304)])
    result = {
        "torch": torch.__version__,
        "grey_28x28": grey.tolist(),
        "rgb_320x304": rgb.tolist(),
    }
    print("feature magnitude: grey mean", float(np.abs(grey).mean()), "max", float(grey.max()),
          "zeros", int((grey == 0).sum()), "; rgb mean", float(np.abs(rgb).mean()))
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
