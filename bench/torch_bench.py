#!/usr/bin/env python3
"""PyTorch twin of `scoregen bench`: the same networks (bench/nets.py), loss, optimiser and
samplers, timed the same way (median of --repeats runs after --warmup, each run synchronised),
written as the same JSON records. `bench/compare.py scoregen.json torch.json` prints the table.

    python bench/torch_bench.py --device cpu --json torch.json [--compile]
"""

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nets import MlpScoreNet, UNet, parameter_count  # noqa: E402

BETA_MIN, BETA_MAX, T_END, T_MIN = 0.1, 20.0, 1.0, 1e-3


# ---- the VP SDE (src/sde/vp.rs) -------------------------------------------------------------
def beta(t):
    return BETA_MIN + t * (BETA_MAX - BETA_MIN)


def mean_factor(t):
    return math.exp(-0.25 * t * t * (BETA_MAX - BETA_MIN) - 0.5 * t * BETA_MIN)


def std(t):
    return math.sqrt(max(1.0 - mean_factor(t) ** 2, 0.0))


def discrete_beta(t, dt):
    """β_i = β(t)·dt of the VP SDE's DDPM discretisation (src/sde/vp.rs)."""
    return min(beta(t) * dt, 0.999)


class Score:
    """s(x, t) = −ε_θ(x, t) / s(t) (src/score/neural.rs)."""

    def __init__(self, eps, device):
        self.eps, self.device, self.nfe = eps, device, 0

    def __call__(self, x, t):
        self.nfe += 1
        tc = torch.full((x.shape[0], 1), t, device=self.device)
        return self.eps(x, tc) * (-1.0 / std(t))


# ---- samplers (src/samplers) ----------------------------------------------------------------
def transition(t, t_prev):
    m_t, s_t = mean_factor(t), std(t)
    m_p, s_p = (1.0, 0.0) if t_prev <= 0 else (mean_factor(t_prev), std(t_prev))
    a = m_t / m_p
    return a, max(s_t * s_t - a * a * s_p * s_p, 0.0), s_p, s_t


def reverse_grid(n):
    return [T_END * (n - i) / n for i in range(n + 1)]


def ddpm(score, x, steps):
    grid = reverse_grid(steps)
    for t, t_prev in zip(grid, grid[1:]):
        a, b2, s_p, s_t = transition(t, t_prev)
        mean = (x + score(x, t) * b2) / a
        sigma = math.sqrt(b2 * s_p * s_p / (s_t * s_t))
        x = mean + torch.randn_like(x) * sigma if sigma > 0 else mean
    return x


def ddim(score, x, steps):
    grid = reverse_grid(steps)
    for t, t_prev in zip(grid, grid[1:]):
        s = score(x, t)
        x0 = (x + s * std(t) ** 2) / mean_factor(t)
        eps = s * (-std(t))
        if t_prev <= 0:
            x = x0
        else:
            _, _, s_p, _ = transition(t, t_prev)
            x = x0 * mean_factor(t_prev) + eps * s_p
    return x


def pc(score, x, steps, snr=0.16):
    dt = (T_END - T_MIN) / (max(steps, 2) - 1)
    for i in range(steps):
        t = T_END - i * dt
        b = discrete_beta(t, dt)
        # Langevin corrector (Song et al. 2021, Alg. 5), norms averaged over the batch.
        grad = score(x, t)
        z = torch.randn_like(x)
        gn = grad.norm(dim=1).mean().clamp_min(1e-30)
        nn_ = z.norm(dim=1).mean()
        step = 2.0 * (1.0 - b) * (snr * nn_ / gn) ** 2
        x = x + grad * step + z * (2.0 * step).sqrt()
        # Reverse-diffusion predictor.
        fc, g = math.sqrt(1.0 - b) - 1.0, math.sqrt(b)
        s = score(x, t)
        x_mean = x - (x * fc - s * (g * g))
        x = x_mean + torch.randn_like(x) * g
    return x


C = [0.0, 0.2, 0.3, 0.8, 8 / 9, 1.0, 1.0]
A = [[], [0.2], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9],
     [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
     [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
     [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]]
E = [71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40]


def ode(score, y, tol):
    """Probability-flow ODE by Dormand–Prince RK45 with scoregen's step control."""
    def f(t, x):
        return x * (-0.5 * beta(t)) - score(x, t) * (0.5 * beta(t))

    t0, t1 = T_END, T_MIN
    span, t, h = abs(t1 - t0), t0, 0.01 * abs(t1 - t0)
    k1 = f(t, y)
    numel = y.numel()
    while (t - t1) > 1e-12 * max(span, 1.0):
        h = min(h, t - t1)
        hs = -h
        ks = [k1]
        for i in range(1, 7):
            yi = y
            for j, kj in enumerate(ks):
                if A[i][j] != 0.0:
                    yi = yi + kj * (hs * A[i][j])
            ks.append(f(t + C[i] * hs, yi))
        err = sum(kj * E[j] for j, kj in enumerate(ks) if E[j] != 0.0)
        scale = torch.maximum(y.abs(), yi.abs()) * tol + tol
        en = math.sqrt(((err * hs / scale) ** 2).sum().item() / numel)
        if en <= 1.0:
            t, y, k1 = t + hs, yi, ks[-1]
            h *= 5.0 if en == 0 else min(max(0.9 * en ** -0.2, 0.2), 5.0)
        else:
            h *= min(max(0.9 * en ** -0.2, 0.2), 1.0)
    return y


# ---- timing ---------------------------------------------------------------------------------
def peak_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mib(device, reset_ok):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    if not reset_ok:
        return None
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(device, warmup, repeats, run):
    for _ in range(warmup):
        run()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ok = peak_reset()
    times, nfe = [], 0
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        nfe = run()
        sync(device)
        times.append((time.perf_counter() - t) * 1e3)
    return times, nfe, peak_mib(device, ok)


def record(args, framework, model, what, batch, timed, params, sampler=None, steps=None):
    times, nfe, peak = timed
    med = statistics.median(times)
    return dict(framework=framework, device=args.device, model=model, what=what,
                precision=args.precision, sampler=sampler,
                batch=batch, steps=steps, nfe=nfe if sampler else None, median_ms=med,
                runs_ms=times, items_per_s=batch * 1e3 / med, runs_per_s=1e3 / med,
                nfe_per_s=nfe * 1e3 / med if sampler else None, peak_mem_mib=peak, params=params)


def ddpm_tables(device, steps=1000):
    b1, bt = beta(1.0 / steps) / steps, beta(1.0) / steps
    betas = torch.linspace(b1, bt, steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0).to(device=device, dtype=torch.float32)


def bench_train(args, fw, name, model, eps, dim, batch, device):
    """DDPM ε-loss (Ho et al. 2020, Alg. 1), backward, clipping at 1, Adam (lr 2e-4)."""
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    alpha_bar = ddpm_tables(device)
    x0 = torch.randn(batch, dim, device=device)

    def run():
        idx = torch.randint(0, 1000, (batch,), device=device)
        ab = alpha_bar[idx][:, None]
        noise = torch.randn_like(x0)
        xt = x0 * ab.sqrt() + noise * (1 - ab).sqrt()
        t = ((idx + 1).float() / 1000.0)[:, None]
        loss = ((eps(xt, t) - noise) ** 2).mean(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return 0

    return record(args, fw, name, "train_step", batch,
                  time_runs(device, args.warmup, args.repeats, run), parameter_count(model))


def bench_forward(args, fw, name, model, eps, dim, batch, device):
    def run():
        with torch.no_grad():
            x = torch.randn(batch, dim, device=device)
            t = torch.full((batch, 1), 0.5, device=device)
            eps(x, t).sum().item()
        return 0

    return record(args, fw, name, "forward", batch,
                  time_runs(device, args.warmup, args.repeats, run), parameter_count(model))


def bench_sample(args, fw, name, model, eps, dim, batch, sampler, steps, device, sweep=False):
    def run():
        score = Score(eps, device)
        with torch.no_grad():
            x = torch.randn(batch, dim, device=device)
            if sampler == "ddpm":
                x = ddpm(score, x, steps)
            elif sampler == "ddim":
                x = ddim(score, x, steps)
            elif sampler == "pc":
                x = pc(score, x, steps)
            elif sampler == "ode":
                x = ode(score, x, args.ode_tol)
            else:
                raise SystemExit(f"unknown sampler {sampler}")
            if not torch.isfinite(x).all().item():
                raise SystemExit(f"{sampler} produced non-finite samples")
        return score.nfe

    warmup, repeats = (min(1, args.warmup), 1) if sweep else (args.warmup, args.repeats)
    timed = time_runs(device, warmup, repeats, run)
    return record(args, fw, name, "sweep" if sweep else "sample", batch, timed,
                  parameter_count(model), sampler, steps)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--suite", default="all", choices=["all", "mlp", "unet"])
    p.add_argument("--unet", default="bench", choices=["bench", "mnist"],
                   help="bench: mult (1, 2), attention in the middle block only (records 'unet'); "
                        "mnist: scoregen's default MNIST network, mult (1, 2, 2), attention also "
                        "at 7x7 (records 'unet-mnist')")
    p.add_argument("--batches", default="1,16,64,256")
    p.add_argument("--sample-batches")
    p.add_argument("--mlp-batch", type=int, default=4096)
    p.add_argument("--samplers", default="ddpm,ddim,pc,ode")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--ode-tol", type=float, default=1e-3)
    p.add_argument("--nfe-sweep", default="10,100,1000")
    p.add_argument("--sweep-batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--precision", default="f32", choices=["f32", "bf16"],
                   help="bf16: training steps under torch.autocast (bf16, f32 weights and loss), "
                        "forward passes and samplers on a bf16 copy of the network (what "
                        "`scoregen bench --precision bf16` does)")
    p.add_argument("--json")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    fw = "pytorch-compile" if args.compile else "pytorch"
    ints = lambda s: [int(v) for v in s.split(",") if v.strip()]  # noqa: E731
    batches = ints(args.batches)
    sample_batches = ints(args.sample_batches) if args.sample_batches else batches
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    print(f"{fw} {torch.__version__} bench on {device} in {args.precision}, "
          f"{torch.get_num_threads()} threads (median of {args.repeats} runs after {args.warmup} "
          f"warm-up)", file=sys.stderr)
    records = []

    def push(r):
        nfe = f"  {r['nfe_per_s']:9.2f} NFE/s" if r["nfe_per_s"] is not None else ""
        what = f"{r['what']} {r['sampler']} ({r['nfe']} NFE)" if r["sampler"] else r["what"]
        mem = f"  peak {r['peak_mem_mib']:.0f} MiB" if r["peak_mem_mib"] is not None else ""
        print(f"{r['model']:<5} {what:<26} batch {r['batch']:>5}  {r['median_ms']:>10.2f} ms  "
              f"{r['items_per_s']:>10.2f} items/s{nfe}{mem}", file=sys.stderr)
        records.append(r)

    def prepare(model):
        model = model.to(device)
        fn = model.eps if isinstance(model, UNet) else model
        return model, (torch.compile(fn) if args.compile else fn)

    def with_precision(model, eps):
        """(network, ε for training, ε for inference) in the chosen precision."""
        if args.precision == "f32":
            return model, eps, eps
        half = copy.deepcopy(model).to(torch.bfloat16)
        half_fn = half.eps if isinstance(half, UNet) else half
        half_fn = torch.compile(half_fn) if args.compile else half_fn

        def train_eps(x, t):
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                out = eps(x, t)
            return out.float()

        def infer_eps(x, t):
            return half_fn(x.to(torch.bfloat16), t.to(torch.bfloat16)).float()

        return model, train_eps, infer_eps

    if args.suite in ("all", "mlp"):
        model, eps, infer = with_precision(
            *prepare(MlpScoreNet(2, hidden=256, blocks=3, fourier_features=64)))
        push(bench_train(args, fw, "mlp", model, eps, 2, args.mlp_batch, device))
        for s in samplers:
            push(bench_sample(args, fw, "mlp", model, infer, 2, args.mlp_batch, s, args.steps,
                              device))
    if args.suite in ("all", "unet"):
        if args.unet == "mnist":
            name = "unet-mnist"
            model, eps = prepare(UNet(base=32, mult=(1, 2, 2), attn_levels=(2,)))
        else:
            name = "unet"
            model, eps = prepare(UNet(base=32, mult=(1, 2), attn_levels=()))
        model, eps, infer = with_precision(model, eps)
        dim = 28 * 28
        for b in batches:
            push(bench_train(args, fw, name, model, eps, dim, b, device))
        for b in batches:
            push(bench_forward(args, fw, name, model, infer, dim, b, device))
        for b in sample_batches:
            for s in samplers:
                push(bench_sample(args, fw, name, model, infer, dim, b, s, args.steps, device))
        for n in ints(args.nfe_sweep):
            push(bench_sample(args, fw, name, model, infer, dim, args.sweep_batch, "ddim", n,
                              device, sweep=True))
    out = json.dumps(dict(framework=fw, version=torch.__version__, device=args.device,
                          precision=args.precision, records=records), indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(out + "\n")
    else:
        print(out)


if __name__ == "__main__":
    main()
