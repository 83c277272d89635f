"""scoregen's networks written in PyTorch, layer for layer (src/nn/mlp.rs, src/nn/unet.rs).

Same parameter count, same operations in the same order, so that `bench/torch_bench.py` measures
the same work as `scoregen bench`. Only what the benchmark needs: unconditional models.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def fourier_features(t, w):
    """[sin(2π t w), cos(2π t w)] for times t: [n, 1] and frequencies w: [1, k]."""
    proj = (t @ w) * (2.0 * math.pi)
    return torch.cat([proj.sin(), proj.cos()], dim=1)


class MlpBlock(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.fc1 = nn.Linear(h, h)
        self.temb = nn.Linear(h, h)
        self.fc2 = nn.Linear(h, h)


class MlpScoreNet(nn.Module):
    """src/nn/mlp.rs: Fourier time embedding, input layer, residual blocks, output layer."""

    def __init__(self, dim, hidden=128, blocks=3, fourier_features=32, fourier_scale=16.0):
        super().__init__()
        half = fourier_features // 2
        self.register_buffer("fourier_w", torch.randn(1, half) * fourier_scale)
        self.time_embed = nn.Linear(fourier_features, hidden)
        self.input = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(MlpBlock(hidden) for _ in range(blocks))
        self.output = nn.Linear(hidden, dim)

    def forward(self, x, t):
        e = F.silu(self.time_embed(fourier_features(t, self.fourier_w)))
        h = self.input(x)
        for b in self.blocks:
            r = b.fc1(F.silu(h)) + b.temb(e)
            h = h + b.fc2(F.silu(r))
        return self.output(F.silu(h))


def conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def groups_dividing(c, groups):
    return next(g for g in range(groups, 0, -1) if c % g == 0)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb_dim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups_dividing(cin, groups), cin, eps=1e-5)
        self.conv1 = conv(cin, cout, 3)
        self.temb = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-5)
        self.conv2 = conv(cout, cout, 3)
        self.shortcut = conv(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.shortcut(x) if self.shortcut is not None else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=1e-5)
        self.q, self.k, self.v, self.proj = (nn.Linear(c, c) for _ in range(4))

    def forward(self, x):
        n, c, h, w = x.shape
        t = self.norm(x).reshape(n, c, h * w).transpose(1, 2)
        q, k, v = self.q(t), self.k(t), self.v(t)
        scores = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=2)
        out = self.proj(scores @ v).transpose(1, 2).reshape(n, c, h, w)
        return x + out


class UNet(nn.Module):
    """src/nn/unet.rs (unconditional), DDPM positional time embedding."""

    def __init__(self, channels=1, height=28, width=28, base=32, mult=(1, 2, 2), res_blocks=1,
                 attn_levels=(2,), groups=8):
        super().__init__()
        self.shape = (channels, height, width)
        temb_dim = 4 * base
        half = max(base // 2, 1)
        k = half
        w = [1000.0 * 10000.0 ** (-i / (max(k, 2) - 1)) / (2 * math.pi) for i in range(k)]
        self.register_buffer("fourier_w", torch.tensor([w]))
        self.temb1 = nn.Linear(2 * half, temb_dim)
        self.temb2 = nn.Linear(temb_dim, temb_dim)
        self.conv_in = conv(channels, base, 3)
        skips, ch = [base], base
        self.down = nn.ModuleList()
        for level, m in enumerate(mult):
            out = base * m
            lvl = nn.Module()
            lvl.blocks, lvl.attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(res_blocks):
                lvl.blocks.append(ResBlock(ch, out, temb_dim, groups))
                if level in attn_levels:
                    lvl.attns.append(AttnBlock(out, groups))
                ch = out
                skips.append(ch)
            lvl.downsample = None
            if level + 1 < len(mult):
                skips.append(ch)
                lvl.downsample = conv(ch, ch, 3, 2)
            self.down.append(lvl)
        self.mid_res1 = ResBlock(ch, ch, temb_dim, groups)
        self.mid_attn = AttnBlock(ch, groups)
        self.mid_res2 = ResBlock(ch, ch, temb_dim, groups)
        self.up = nn.ModuleList()
        for level in reversed(range(len(mult))):
            out = base * mult[level]
            lvl = nn.Module()
            lvl.blocks, lvl.attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(res_blocks + 1):
                skip = skips.pop()
                lvl.blocks.append(ResBlock(ch + skip, out, temb_dim, groups))
                if level in attn_levels:
                    lvl.attns.append(AttnBlock(out, groups))
                ch = out
            lvl.upsample = conv(ch, ch, 3) if level > 0 else None
            self.up.append(lvl)
        self.norm_out = nn.GroupNorm(groups, ch, eps=1e-5)
        self.conv_out = conv(ch, channels, 3)

    def forward(self, x, t):
        temb = self.temb2(F.silu(self.temb1(fourier_features(t, self.fourier_w))))
        h = self.conv_in(x)
        skips = [h]
        for lvl in self.down:
            for i, b in enumerate(lvl.blocks):
                h = b(h, temb)
                if i < len(lvl.attns):
                    h = lvl.attns[i](h)
                skips.append(h)
            if lvl.downsample is not None:
                h = lvl.downsample(h)
                skips.append(h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, temb)), temb)
        for lvl in self.up:
            for i, b in enumerate(lvl.blocks):
                h = b(torch.cat([h, skips.pop()], dim=1), temb)
                if i < len(lvl.attns):
                    h = lvl.attns[i](h)
            if lvl.upsample is not None:
                target = skips[-1].shape[2:] if skips else self.shape[1:]
                h = lvl.upsample(F.interpolate(h, size=tuple(target), mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))

    def eps(self, x, t):
        """Rows of x are flattened images, as scoregen's EpsModel."""
        n = x.shape[0]
        return self.forward(x.reshape(n, *self.shape), t).reshape(n, -1)


def mlp_eps(model):
    return model


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    for cfg in [dict(base=32, mult=(1, 2, 2), attn_levels=(2,)),
                dict(base=32, mult=(1, 2, 2), attn_levels=()),
                dict(base=32, mult=(1, 2), attn_levels=()),
                dict(base=16, mult=(1, 2, 2), attn_levels=()),
                dict(base=32, mult=(1, 1, 2), attn_levels=()),
                dict(base=32, mult=(1, 2, 2), attn_levels=(1, 2))]:
        print(cfg, parameter_count(UNet(**cfg)))
    print("mlp 256x3 f64", parameter_count(MlpScoreNet(2, 256, 3, 64)))
