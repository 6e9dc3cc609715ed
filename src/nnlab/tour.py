"""A tour of the lecture's claims, section by section: each one is computed, printed and plotted.

``python -m nnlab tour`` (or :func:`run`) goes through

1. §2.1–2.3  threshold neurons: AND/OR/NOT with the lecture's weights, XOR from two layers, and
   the count of linearly separable Boolean functions (14 of 16 for n = 2, 104 of 256 for n = 3);
2. §3        the activation functions and their analytic derivatives, with the relations of §3.8;
3. §2.10, §4 vanishing gradients in a 20-layer sigmoid MLP, and the cures (ReLU + He init,
   batch normalisation, residual connections);
4. §1        training an MLP on the spiral with ``nl.fit``: empirical vs held-out risk.

Each section writes a PNG (atomically) into ``out_dir`` and returns its numbers; ``run`` also
writes them to ``summary.json``. Everything is seeded; the whole tour takes well under a minute
on one CPU core (``fast=True`` skips the 256 linear programs of the n = 3 count).
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Callable

import torch

from nnlab import _io

__all__ = ["run", "SECTIONS"]

Echo = Callable[[str], None]


def _save(fig: Any, path: Path) -> str:
    """Write a matplotlib Figure as PNG, atomically."""
    return str(_io.save_figure(fig, path, dpi=110, bbox_inches="tight"))


def _figure(**kw: Any) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(layout="constrained", **kw)


# ---- §2.1–2.3 ------------------------------------------------------------------------------------
def logic(out: Path, fast: bool, echo: Echo) -> dict[str, Any]:
    """Threshold neurons compute AND/OR/NOT; XOR needs two layers; 14 of 16 functions are separable."""
    from nnlab import logic as lg

    rows = list(itertools.product([0, 1], repeat=2))
    AND = lg.threshold_neuron([1, 1], -1.5)  # [x1 + x2 - 3/2 > 0]
    OR = lg.threshold_neuron([1, 1], -0.5)   # [x1 + x2 - 1/2 > 0]
    NOT = lg.threshold_neuron([-1], 0.5)     # [-x + 1/2 > 0]
    xor = lg.xor_network()
    table = {"AND": [int(AND(a, b)) for a, b in rows], "OR": [int(OR(a, b)) for a, b in rows],
             "NOT": [int(NOT(a)) for a in (0, 1)], "XOR (2 layers)": [int(xor(a, b)) for a, b in rows]}
    echo("  x1 x2 | AND OR XOR(2 layers)")
    for i, (a, b) in enumerate(rows):
        echo(f"   {a}  {b} |  {table['AND'][i]}   {table['OR'][i]}      {table['XOR (2 layers)'][i]}")
    xor_ok = table["XOR (2 layers)"] == [a ^ b for a, b in rows]
    echo(f"  the two-layer threshold network computes XOR exactly: {xor_ok}")
    echo(f"  XOR is linearly separable (one neuron): {bool(lg.linearly_separable((0, 1, 1, 0)))}")

    tables = list(itertools.product([0, 1], repeat=4))
    separable = {t: bool(lg.linearly_separable(t)) for t in tables}
    n2 = sum(separable.values())
    bad = [t for t, s in separable.items() if not s]
    echo(f"  linearly separable Boolean functions of 2 inputs: {n2} of 16; not: {bad} (XOR, XNOR)")
    result = {"truth_tables": table, "xor_exact": xor_ok, "separable_2": n2,
              "non_separable_2": [list(t) for t in bad]}
    if not fast:
        n3 = len(lg.separable_boolean_functions(3))
        echo(f"  ... of 3 inputs: {n3} of 256")
        result["separable_3"] = n3

    fig = _figure(figsize=(9, 9.5))
    axes = fig.subplots(4, 4)
    for ax, t in zip(axes.flat, tables):
        for (a, b), v in zip(rows, t):
            ax.scatter([a], [b], s=180, c="tab:red" if v else "white", edgecolors="k")
        ax.set_title(f"{''.join(map(str, t))}: " + ("separable" if separable[t] else "NOT separable"),
                     fontsize=9, color="k" if separable[t] else "tab:red")
        ax.set_xlim(-0.5, 1.5), ax.set_ylim(-0.5, 1.5), ax.set_xticks([0, 1]), ax.set_yticks([0, 1])
    fig.suptitle("§2.2: the 16 Boolean functions of (x1, x2); red = 1. Only XOR and XNOR need two layers")
    result["plot"] = _save(fig, out / "logic_separability.png")
    return result


# ---- §3 ------------------------------------------------------------------------------------------
def activations(out: Path, fast: bool, echo: Echo) -> dict[str, Any]:
    """Every activation f and its analytic f′ (checked against autograd), and the §3.8 relations."""
    from nnlab import activations as acts

    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    names = list(acts.names())
    worst = 0.0
    for name in names:
        if name == "step":
            continue
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(acts.get(name).fn(xg).sum(), xg)
        d = acts.derivative(name, x)
        worst = max(worst, float((g - d).abs().max()))
    sig, tanh, softplus = (acts.get(n).fn for n in ("sigmoid", "tanh", "softplus"))
    relations = {
        "tanh(x) = 2σ(2x) − 1": float((tanh(x) - (2 * sig(2 * x) - 1)).abs().max()),
        "softplus′(x) = σ(x)": float((acts.derivative("softplus", x) - sig(x)).abs().max()),
        "max σ′ = 1/4": float(acts.derivative("sigmoid", x).max()),
        "max tanh′ = 1": float(acts.derivative("tanh", x).max()),
    }
    echo(f"  {len(names)} activations: {', '.join(names)}")
    echo(f"  analytic derivative vs autograd, worst |difference| on [-4, 4]: {worst:.1e}")
    for k, v in relations.items():
        echo(f"  {k}: {'max |difference| ' if '=' in k and 'max' not in k else ''}{v:.3g}")

    cols = 5
    fig = _figure(figsize=(3.0 * cols, 2.4 * ((len(names) + cols - 1) // cols)))
    axes = fig.subplots((len(names) + cols - 1) // cols, cols, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        ax.plot(x, acts.get(name).fn(x), label="f(x)")
        ax.plot(x, acts.derivative(name, x), "--", label="f′(x)")
        ax.axhline(0, color="0.8", lw=0.5), ax.axvline(0, color="0.8", lw=0.5)
        ax.set_title(name, fontsize=10)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("§3: activation functions (solid) and their analytic derivatives (dashed)")
    return {"names": names, "max_derivative_error": worst, "relations": relations,
            "plot": _save(fig, out / "activations.png")}


# ---- §2.10, §4 -----------------------------------------------------------------------------------
def vanishing_gradients(out: Path, fast: bool, echo: Echo) -> dict[str, Any]:
    """Per-layer ‖∂L/∂A_i‖ in a 20-layer MLP: sigmoid vanishes; ReLU+He, batch norm, residual cure it."""
    import nnlab as nl

    depth, width = 20, 32
    sizes = [8] + [width] * (depth - 1) + [1]
    configs = {
        "sigmoid, Xavier init": dict(activation="sigmoid", init="xavier"),
        "ReLU, He init": dict(activation="relu", init="he"),
        "sigmoid + batch norm": dict(activation="sigmoid", init="xavier", batchnorm=True),
        "sigmoid + residual": dict(activation="sigmoid", init="xavier", residual=True),
    }
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, sizes[0], generator=g)
    y = torch.randn(128, 1, generator=g)
    curves, ratios = {}, {}
    for label, kw in configs.items():
        torch.manual_seed(0)
        model = nl.MLP(sizes, **kw)
        norms = list(nl.diagnostics.gradient_norms(model, x, y, "mse").values())
        curves[label] = norms
        ratios[label] = norms[0] / norms[-1]
        echo(f"  {label:22s} ‖∂L/∂A_1‖ / ‖∂L/∂A_{depth}‖ = {ratios[label]:.1e}")
    cured = all(ratios[k] > 1e3 * ratios["sigmoid, Xavier init"] for k in list(configs)[1:])
    echo(f"  each cure lifts the first layer's gradient by more than 1000x: {cured}")

    fig = _figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for label, norms in curves.items():
        ax.semilogy(range(1, len(norms) + 1), norms, marker="o", ms=3, label=label)
    ax.set_xlabel("nn.Linear in forward order (residual: + the 8→32 projection)"), ax.set_ylabel("‖∂L/∂A‖ (log scale)")
    ax.set_title(f"§2.10, §4: gradient norms per layer in a {depth}-layer MLP")
    ax.legend(fontsize=8)
    return {"depth": depth, "first_over_last": ratios, "cured": cured,
            "plot": _save(fig, out / "vanishing_gradients.png")}


# ---- §1 ------------------------------------------------------------------------------------------
def training(out: Path, fast: bool, echo: Echo) -> dict[str, Any]:
    """An MLP learns the spiral with nl.fit: empirical risk falls, held-out risk follows it."""
    import nnlab as nl

    X, y = nl.data.toy("spiral", 400, noise=0.03, seed=0)
    Xv, yv = nl.data.toy("spiral", 400, noise=0.03, seed=1)
    torch.manual_seed(0)
    model = nl.MLP([2, 32, 32, 2], activation="relu", init="he")
    epochs = 300
    t0 = time.perf_counter()
    h = nl.fit(model, (X, y), val=(Xv, yv), loss="cross_entropy", optimizer="adam", lr=0.03,
               epochs=epochs, batch_size=None, seed=0, progress=False)
    secs = time.perf_counter() - t0
    echo(f"  {epochs} full-batch Adam epochs in {secs:.1f} s: empirical risk {h.train_loss[-1]:.3f}, "
         f"held-out risk {h.val_loss[-1]:.3f}")
    echo(f"  accuracy: training {h.train_acc[-1]:.1%}, held-out {h.val_acc[-1]:.1%}")

    fig = _figure(figsize=(11, 4.5))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(h.epochs, h.train_loss, label="empirical risk (training)")
    ax1.plot(h.epochs, h.val_loss, label="held-out risk (validation)")
    ax1.set_yscale("log"), ax1.set_xlabel("epoch"), ax1.set_ylabel("cross-entropy"), ax1.legend()
    ax1.set_title("§1.1: empirical vs held-out risk")
    grid = torch.stack(torch.meshgrid(torch.linspace(-1.2, 1.2, 200), torch.linspace(-1.2, 1.2, 200),
                                      indexing="xy"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        p = torch.softmax(model.eval()(grid), dim=1)[:, 1].reshape(200, 200)
    ax2.contourf(grid[:, 0].reshape(200, 200), grid[:, 1].reshape(200, 200), p, levels=20,
                 cmap="RdBu_r", alpha=0.6)
    ax2.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", s=8, edgecolors="k", linewidths=0.2)
    ax2.set_title("decision boundary on the spiral"), ax2.set_aspect("equal")
    return {"epochs": epochs, "train_loss": h.train_loss[-1], "val_loss": h.val_loss[-1],
            "train_acc": h.train_acc[-1], "val_acc": h.val_acc[-1], "seconds": secs,
            "plot": _save(fig, out / "training_spiral.png")}


SECTIONS: dict[str, tuple[str, Callable[[Path, bool, Echo], dict[str, Any]]]] = {
    "logic": ("§2.1–2.3 Linear separability and XOR from threshold neurons", logic),
    "activations": ("§3 Activation functions and their derivatives", activations),
    "vanishing_gradients": ("§2.10, §4 Vanishing gradients and their cures", vanishing_gradients),
    "training": ("§1 Empirical and held-out risk: an MLP on the spiral", training),
}


def run(out_dir: str | Path = "runs/tour", fast: bool = False, sections: list[str] | None = None,
        echo: Echo = print) -> dict[str, Any]:
    """Run the tour (all ``SECTIONS`` or the named ones); plots and ``summary.json`` go to ``out_dir``."""
    chosen = list(SECTIONS) if sections is None else list(sections)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown tour section(s) {unknown}; expected some of {list(SECTIONS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the models are tiny: one thread is fastest (and fair on shared CPUs)
    try:
        for key in chosen:
            title, fn = SECTIONS[key]
            echo(f"\n== {title} ==")
            t1 = time.perf_counter()
            summary[key] = fn(out, fast, echo)
            summary[key]["section_seconds"] = time.perf_counter() - t1
            echo(f"  plot: {summary[key]['plot']}  ({summary[key]['section_seconds']:.1f} s)")
    finally:
        torch.set_num_threads(threads)
    summary["seconds"] = time.perf_counter() - t0
    _io.write_json(out / "summary.json", summary)
    echo(f"\nTour finished in {summary['seconds']:.1f} s; plots and summary.json in {out}")
    return summary
