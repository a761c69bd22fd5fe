r"""Training-step throughput of the PyTorch ORIGINALS, for side-by-side tables.

    python benchmarks/originals.py [--torch_python=/work/torchvenv/bin/python]
        [--originals_dir=/work/originals] [--which=ram,recap,patchdrop]
        [--steps=N] [--threads=2] [--max_seconds=120]

What is measured: for each workload, the original PyTorch repository's own
training code runs on synthetic random tensors shaped like keras_glimpse's
preset (below), with `torch.set_num_threads(threads)`, in a fresh child process
of a separate torch interpreter (so peak RSS, `ru_maxrss`, is that workload's
alone; the child never imports TensorFlow or keras_glimpse). After a few
untimed warm-up steps, `--steps` steps are timed (stopping early once
`--max_seconds` have passed, with at least 2 steps; the row says how many ran).
Steps/s and images/s (steps/s x batch) are wall-clock rates that include the
original loop's own per-step bookkeeping (`.item()` calls, meters; tqdm bars
are disabled with TQDM_DISABLE=1, as keras_glimpse's side runs fit with
verbose=0), but not data loading: the synthetic DataLoader hands out a few
ready-made batches. Each row records the 1-minute load average at its end
(`loadavg_1min`): on a loaded machine torch's OpenMP threads wait on each
other and 2-thread rates collapse (seen: RAM 2-6 steps/s at load 5-6 on 2
cores against 24 on a quieter one), so compare numbers taken at a low load.

Workloads (keras_glimpse's side: benchmarks/ram.py, recap.py, patchdrop.py):

* ram_mnist28 (kevinzakka/recurrent-visual-attention): the original's
  `trainer.Trainer(config, loaders).train_one_epoch(epoch)`, its whole training
  epoch, over a synthetic loader of 28x28x1 images, batch 128. `config` is the
  original's own `config.parser` defaults (6 glimpses of 8x8, 1 patch, hidden
  256, std 0.05, M=1, Adam 3e-4) with use_gpu=False, tensorboard off and no
  glimpse pickles (plot_freq beyond the epoch index).
* recap_cluttered64 (Evan-Kaiden/Reinforcement-Learning-for-Visual-
  Comprehension): the original's `glimpse_agent.GlimpseAgent.train_agent(
  epochs=1, trainloader, testloader=None, steps=6)` (REINFORCE + value head +
  supervised branch, its three Adam optimisers), with the networks built as its
  `main.py` builds them for the README's cluttered run: 64x64x1 images, 8x8
  patches, stride 4 (15x15 action grid), 6 steps, embedding 64, gamma 0.98,
  entropy weight 0.03, batch 32; device "cpu" (main.py hard-codes "mps");
  random initialisation (the agent step's cost does not depend on pretraining).
* patchdrop_r32_c10 (ermongroup/PatchDrop): the policy pretraining step of its
  `pretrain.py` for R32_C10 at batch 256 (its default), penalty -0.5, alpha 0.8,
  lr_size 8, Adam 1e-4 on the policy only. `pretrain.py` itself cannot be run
  or imported: it is a SyntaxError on Python >= 3.7 (`.cuda(async=True)`), and
  at import it parses argv, downloads CIFAR, loads the HR-classifier checkpoint
  and moves everything to CUDA. So this file drives the smallest piece of its
  own code that makes one step, in the order its `train()` runs it: the
  networks from its `utils.utils.get_model("R32_C10")` (the release's
  `models/resnet.py` is missing; `models.resnet` is aliased to the release's
  `models/resnet_cifar.py`, whose `ResNet(block, blocks, kernel, classes)`
  signature is the one get_model calls: a 64-512-wide ResNet with [3,4,6,3]
  blocks as HR classifier and [1,1,1,1] as policy, not the ResNet-32/ResNet-8
  of the paper that keras_glimpse builds), its `utils.action_space_model`,
  `utils.agent_chosen_input` and `utils.compute_reward`; the forward passes,
  Bernoulli sampling, greedy baseline, advantage, loss, backward and Adam step
  are this file's glue. The HR classifier is RANDOMLY INITIALISED (no CIFAR
  checkpoint; the step's cost does not depend on the weights), in eval mode and
  outside the optimiser; as in the script, its two forwards run with autograd
  on. `torch.Tensor.cuda` is made a no-op (agent_chosen_input ends in
  `.cuda()`); tensorboard logging and the epoch-end `performance_stats` (which
  uses `np.int`, removed from NumPy) are not run.

Imports the originals do at module level but the measured code never uses
(tensorboard_logger, matplotlib, PIL, imageio, torchvision, pandas) are
replaced, in the child only and only where not installed, by empty stand-in
modules. Nothing from the original repositories is in this project: they are
imported from `--originals_dir` at run time, and all code here is glue.

Set-up, outside the project, in 3 commands (a CPU-only torch wheel, here the
local one; tqdm from PyPI; clone from GitHub or from local mirrors of it):

    python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install \
        /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl numpy tqdm
    mkdir -p /work/originals && cd /work/originals
    for r in kevinzakka/recurrent-visual-attention:ram \
             Evan-Kaiden/Reinforcement-Learning-for-Visual-Comprehension:recap \
             ermongroup/PatchDrop:patchdrop; do git clone https://github.com/${r%%:*} ${r#*:}; done

Measured against: ram a38ac89 (2020-05-23), recap 6cb8467 (2025-10-24),
patchdrop 35b45e7 (2020-07-27); each row carries its clone's `commit`.

(Any torch >= 2.0 with numpy and tqdm will do; do not install torchvision from
PyPI against a local torch build.) The paths default to $KG_TORCH_PYTHON and
$KG_ORIGINALS_DIR, else the ones above; a missing interpreter or original
folder gives a "skipped" row and exit status 0. A workload whose child fails
gives a "skipped" row with "failed": True, and the CLI exits 1.

From another script:

    from originals import measure_originals   # with benchmarks/ on sys.path
    rows = measure_originals(which=("ram",), steps=30)
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

DEFAULT_TORCH_PYTHON = "/work/torchvenv/bin/python"
DEFAULT_ORIGINALS_DIR = "/work/originals"

# name -> (workload, GitHub owner/repo, folder under originals_dir, batch,
#          warm-up steps, default timed steps)
WORKLOADS = {
    "ram": ("ram_mnist28", "kevinzakka/recurrent-visual-attention", "ram", 128, 10, 50),
    "recap": ("recap_cluttered64", "Evan-Kaiden/Reinforcement-Learning-for-Visual-Comprehension",
              "recap", 32, 10, 50),
    "patchdrop": ("patchdrop_r32_c10", "ermongroup/PatchDrop", "patchdrop", 256, 1, 10),
}
# The modules each original must be able to import from its folder.
ENTRY_FILES = {"ram": "trainer.py", "recap": "glimpse_agent.py", "patchdrop": "utils/utils.py"}


# ----------------------------------------------------------------------------
# Parent side (no torch, no TensorFlow).
# ----------------------------------------------------------------------------

def _resolve(torch_python, originals_dir):
    torch_python = torch_python or os.environ.get("KG_TORCH_PYTHON") or DEFAULT_TORCH_PYTHON
    originals_dir = originals_dir or os.environ.get("KG_ORIGINALS_DIR") or DEFAULT_ORIGINALS_DIR
    return torch_python, originals_dir


def _probe_torch(torch_python):
    """`(torch version, None)` or `(None, reason)` for the torch interpreter."""
    if not (os.path.isfile(torch_python) and os.access(torch_python, os.X_OK)):
        return None, (f"torch python {torch_python} not found "
                      "(set-up: see benchmarks/originals.py's docstring)")
    try:
        out = subprocess.run([torch_python, "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"torch python {torch_python} unusable: {err}"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"torch not importable under {torch_python}: {last}"
    return out.stdout.strip(), None


def _commit(folder):
    try:
        out = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def measure_originals(which=("ram", "recap", "patchdrop"), steps=None, threads=2,
                      torch_python=None, originals_dir=None, max_seconds=120.0):
    """Times the originals' training steps, each in a child of `torch_python`.

    Args:
        which: names among "ram", "recap", "patchdrop" (or a comma-separated str).
        steps: timed steps per workload; None: 50 for ram and recap, 10 for
            patchdrop (about 7 s a step on 2 CPU threads).
        threads: torch intra-op threads (and OMP/MKL threads) in the child.
        torch_python: interpreter with torch; default $KG_TORCH_PYTHON, else
            /work/torchvenv/bin/python.
        originals_dir: folder holding the clones ram/, recap/, patchdrop/;
            default $KG_ORIGINALS_DIR, else /work/originals.
        max_seconds: wall-clock cap on each workload's timed steps (at least 2
            steps run).

    Returns:
        list of dicts, one per workload: `workload`, `original` (owner/repo),
        `steps_per_s`, `images_per_s`, `batch_size`, `peak_mb` (child's peak
        RSS, MiB), `steps` (timed), `warmup`, `threads`, `torch`, `commit`,
        `how` (what was driven); or `{"workload", "original", "skipped": reason}`
        (plus `"failed": True` and `"error"` when the child failed). Never raises
        for a missing interpreter or folder.
    """
    if isinstance(which, str):
        which = [w for w in which.split(",") if w]
    torch_python, originals_dir = _resolve(torch_python, originals_dir)
    unknown = [w for w in which if w not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    version, why_not = _probe_torch(torch_python)
    rows = []
    for name in which:
        workload, repo, folder, batch, warmup, default_steps = WORKLOADS[name]
        row = {"workload": workload, "original": repo}
        path = os.path.join(originals_dir, folder)
        if why_not:
            rows.append({**row, "skipped": why_not})
            continue
        if not os.path.isfile(os.path.join(path, ENTRY_FILES[name])):
            rows.append({**row, "skipped": f"original not found: no {ENTRY_FILES[name]} in {path} "
                                           f"(git clone https://github.com/{repo} {path})"})
            continue
        n = int(steps) if steps else default_steps
        cmd = [torch_python, os.path.abspath(__file__), f"--_child={name}", f"--steps={n}",
               f"--warmup={warmup}", f"--threads={threads}", f"--max_seconds={max_seconds}",
               f"--originals_dir={originals_dir}"]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                   PYTHONDONTWRITEBYTECODE="1", TQDM_DISABLE="1")
        env.pop("PYTHONPATH", None)
        budget = 600 + 4 * float(max_seconds)
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=budget)
        except subprocess.TimeoutExpired:
            rows.append({**row, "skipped": f"child timed out after {budget:.0f} s", "failed": True})
            continue
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            tail = out.stderr.strip().splitlines() or ["(no stderr)"]
            rows.append({**row, "skipped": f"child failed (exit {out.returncode}): {tail[-1]}",
                         "failed": True, "error": "\n".join(tail[-30:])})
            continue
        result = json.loads(lines[-1][len("RESULT "):])
        rows.append({**row, **result, "torch": version, "commit": _commit(path)})
    return rows


def format_table(rows):
    """The rows as a Markdown table (skipped rows say why)."""
    out = ["| workload | original | batch | steps timed | steps/s | images/s | peak RSS (MB) "
           "| load |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['workload']} | {r.get('original', '')} | | | "
                       f"{'FAILED' if r.get('failed') else 'skipped'}: {r['skipped']} | | | |")
        else:
            out.append(f"| {r['workload']} | {r['original']} | {r['batch_size']} | {r['steps']} | "
                       f"{r['steps_per_s']:.3f} | {r['images_per_s']:.1f} | {r['peak_mb']:.0f} | "
                       f"{r.get('loadavg_1min', float('nan')):.1f} |")
    return "\n".join(out)


# ----------------------------------------------------------------------------
# Child side: runs under the torch interpreter; stdlib, torch and the original.
# ----------------------------------------------------------------------------

def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _stub_missing(names):
    """Registers empty stand-in modules for `names` that are not installed.

    Attribute access on a stand-in gives a placeholder class (a Warning
    subclass, so `warnings.simplefilter(..., stub.Something)` works) that
    raises if it is ever instantiated: the measured code must not use them.
    """
    import importlib.machinery
    import importlib.util
    import types

    def placeholder(modname, attr):
        def init(self, *args, **kwargs):
            raise RuntimeError(f"{modname}.{attr} is a stand-in (benchmarks/originals.py)")
        return type(attr, (Warning,), {"__init__": init, "__call__": init})

    def getter(modname):
        def module_getattr(attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return placeholder(modname, attr)
        return module_getattr

    for name in names:
        top = name.split(".")[0]
        if top not in sys.modules:
            try:
                if importlib.util.find_spec(top) is not None:
                    continue
            except (ImportError, ValueError):
                pass
        elif not getattr(sys.modules[top], "_kg_stub", False):
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            sub = ".".join(parts[:i])
            if sub in sys.modules:
                continue
            mod = types.ModuleType(sub)
            mod._kg_stub = True
            # A spec without origin: importlib.util.find_spec(sub) works (torch._dynamo
            # calls it for a list of well-known packages) and points nowhere.
            mod.__spec__ = importlib.machinery.ModuleSpec(sub, None, is_package=True)
            mod.__path__ = []  # a package, so submodules can be imported
            mod.__getattr__ = getter(sub)
            sys.modules[sub] = mod
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], mod)


class _Deadline:
    """How many steps a loader may still hand out: `n`, or fewer once past `deadline`."""

    def __init__(self, n, max_seconds=None):
        self.n, self.max_seconds, self.done = n, max_seconds, 0

    def start(self):
        self.t0 = time.perf_counter()

    def more(self):
        if self.done >= self.n:
            return False
        if (self.max_seconds is not None and self.done >= 2
                and time.perf_counter() - self.t0 > self.max_seconds):
            return False
        self.done += 1
        return True


def _loader(batches, budget):
    """A torch DataLoader yielding ready-made `(x, y)` batches while `budget` allows.

    Batches are whole items (batch_size=None), so no per-example collation is
    timed; the sampler has `.indices` (the RAM Trainer reads its length).
    """
    import torch.utils.data as tud

    class Batches(tud.Dataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, i):
            return batches[i % len(batches)]

    class Sampler(tud.Sampler):
        def __init__(self):
            self.indices = list(range(budget.n))

        def __len__(self):
            return len(self.indices)

        def __iter__(self):
            i = 0
            while budget.more():
                yield i
                i += 1

    return tud.DataLoader(Batches(), batch_size=None, sampler=Sampler(), num_workers=0)


def _random_batches(shape, num_classes, count=4, normal=False):
    import torch

    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        x = torch.randn(shape, generator=g) if normal else torch.rand(shape, generator=g)
        out.append((x, torch.randint(0, num_classes, (shape[0],), generator=g)))
    return out


def _run_epochs(run_epoch, make_loader, warmup, steps, max_seconds):
    """Runs `run_epoch(loader)` on `warmup` steps, then times it on `steps` steps."""
    if warmup:
        budget = _Deadline(warmup)
        budget.start()
        run_epoch(make_loader(budget))
    budget = _Deadline(steps, max_seconds)
    loader = make_loader(budget)
    budget.start()
    start = time.perf_counter()
    run_epoch(loader)
    seconds = time.perf_counter() - start
    return budget.done, seconds


def _child_ram(folder, args):
    import torch

    _stub_missing(["tensorboard_logger", "matplotlib.pyplot", "matplotlib.patches", "PIL.Image"])
    sys.path.insert(0, folder)
    import config as ram_config
    import trainer as ram_trainer

    batch = WORKLOADS["ram"][3]
    cfg = ram_config.parser.parse_args([])  # the original's own defaults
    cfg.use_gpu = False
    cfg.is_train = True
    cfg.use_tensorboard = False
    cfg.resume = False
    cfg.batch_size = batch
    cfg.plot_freq = 10**9  # epoch index 1 below: no glimpse pickles
    cfg.ckpt_dir = os.path.join(os.getcwd(), "ckpt")
    cfg.logs_dir = os.path.join(os.getcwd(), "logs") + os.sep
    torch.manual_seed(cfg.random_seed)
    batches = _random_batches((batch, 1, 28, 28), 10)

    def make_loader(budget):
        return _loader(batches, budget)

    first = make_loader(_Deadline(1))
    trainer = ram_trainer.Trainer(cfg, (first, first))

    def run_epoch(loader):
        trainer.train_loader = loader
        trainer.num_train = len(loader.sampler.indices) * batch
        trainer.train_one_epoch(1)

    done, seconds = _run_epochs(run_epoch, make_loader, args.warmup, args.steps, args.max_seconds)
    how = ("trainer.Trainer(config, loaders).train_one_epoch(1) over a synthetic DataLoader; "
           "config = config.parser defaults (patch 8, 1 patch, 6 glimpses, hidden 256, std 0.05, "
           f"M {cfg.M}, Adam {cfg.init_lr}), use_gpu False, no tensorboard, no glimpse pickles")
    return done, seconds, batch, how


def _child_recap(folder, args):
    import torch

    _stub_missing(["imageio.v2", "matplotlib.pyplot", "matplotlib.patches",
                   "matplotlib.animation"])
    sys.path.insert(0, folder)
    import glimpse_agent
    import networks

    batch, img, patch, stride, steps_per_episode, embd = WORKLOADS["recap"][3], 64, 8, 4, 6, 64
    torch.manual_seed(32)
    grid = int((img - patch) / stride) + 1
    agent = glimpse_agent.GlimpseAgent(
        policy=networks.PerceptionPolicy(action_space=grid ** 2, embd_dim=embd),
        encoder=networks.PerceptionEncoder(embd_dim=embd, in_channels=1),
        classifier=networks.Classifier(embd_dim=embd, n_classes=10),
        gate=networks.gate(embd_dim=embd),
        seq_summarizer=networks.SequenceSummarizer(embd_dim=embd),
        context_memory=networks.ContextMemory(embd_dim=embd),
        image_size=img, stride=stride, patch_size=patch, embd_dim=embd, device="cpu",
        action_space=grid, gamma=0.98, init_entropy_weight=0.03)
    batches = _random_batches((batch, 1, img, img), 10)

    def run_epoch(loader):
        agent.train_agent(epochs=1, trainloader=loader, testloader=None, steps=steps_per_episode)

    done, seconds = _run_epochs(run_epoch, lambda b: _loader(batches, b), args.warmup,
                                args.steps, args.max_seconds)
    how = ("glimpse_agent.GlimpseAgent(networks.* as main.py builds them).train_agent(epochs=1, "
           f"trainloader=synthetic, testloader=None, steps={steps_per_episode}); 64x64x1, patch 8, "
           f"stride 4 ({grid}x{grid} grid), embedding 64, device cpu, random init")
    return done, seconds, batch, how


def _child_patchdrop(folder, args):
    import torch
    import torch.nn.functional as F
    from torch.distributions import Bernoulli

    _stub_missing(["torchvision.transforms", "torchvision.datasets", "torchvision.models",
                   "pandas", "PIL.Image"])
    torch.Tensor.cuda = lambda self, *a, **k: self  # CPU run: agent_chosen_input ends in .cuda()
    sys.path.insert(0, folder)
    import models
    import models.resnet_cifar
    from utils import utils as pd_utils

    if not os.path.exists(os.path.join(folder, "models", "resnet.py")):
        sys.modules["models.resnet"] = models.resnet_cifar
        models.resnet = models.resnet_cifar

    batch, lr_size, alpha, penalty, model = WORKLOADS["patchdrop"][3], 8, 0.8, -0.5, "R32_C10"
    dset = model.split("_")[1]
    torch.manual_seed(0)
    rnet, _, agent = pd_utils.get_model(model)  # random init: no HR checkpoint
    mappings, _, patch_size = pd_utils.action_space_model(dset)
    rnet.eval()  # the HR classifier is fixed in this stage
    agent.train()
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-4)

    def step(images, labels):
        # One iteration of pretrain.py's train(), re-enacted with its functions.
        low = F.interpolate(images.clone(), (lr_size, lr_size))
        p = torch.sigmoid(agent.forward(low, dset, "lr"))
        p = alpha * p + (1 - alpha) * (1 - p)
        dist = Bernoulli(p)
        sampled = dist.sample()
        greedy = (p.detach() >= 0.5).float()
        hr_greedy = pd_utils.agent_chosen_input(images.clone(), greedy, mappings, patch_size)
        hr_sampled = pd_utils.agent_chosen_input(images.clone(), sampled.int(), mappings,
                                                 patch_size)
        out_greedy = rnet.forward(hr_greedy, dset, "hr")
        out_sampled = rnet.forward(hr_sampled, dset, "hr")
        r_greedy, match = pd_utils.compute_reward(out_greedy, labels, greedy, penalty)
        r_sampled, _ = pd_utils.compute_reward(out_sampled, labels, sampled, penalty)
        adv = (r_sampled.float() - r_greedy.float()).expand_as(sampled)
        loss = (-dist.log_prob(sampled) * adv).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return match.cpu(), r_sampled.cpu(), r_greedy.cpu(), sampled.detach().cpu()

    batches = _random_batches((batch, 3, 32, 32), 10, normal=True)

    def run_epoch(loader):
        logs = []
        for images, labels in loader:
            logs.append(step(images, labels))

    done, seconds = _run_epochs(run_epoch, lambda b: _loader(batches, b), args.warmup,
                                args.steps, args.max_seconds)
    n_hr = sum(p.numel() for p in rnet.parameters()) / 1e6
    n_pn = sum(p.numel() for p in agent.parameters()) / 1e6
    how = ("pretrain.py's train() step re-enacted (the script is a SyntaxError on Python>=3.7 and "
           "runs CUDA/data/checkpoint code at import): utils.get_model('R32_C10') with "
           "models.resnet := models/resnet_cifar.py (missing from the release) -> HR classifier "
           f"ResNet[3,4,6,3] 64-512 wide ({n_hr:.1f}M params, RANDOM INIT, eval, autograd on) and "
           f"policy ResNet[1,1,1,1] ({n_pn:.1f}M) on the 8x8 view; utils.action_space_model, "
           "utils.agent_chosen_input, utils.compute_reward (penalty -0.5), alpha 0.8, "
           "Bernoulli sample vs greedy baseline, Adam 1e-4 on the policy; "
           "Tensor.cuda no-op; no tensorboard, no performance_stats")
    return done, seconds, batch, how


CHILDREN = {"ram": _child_ram, "recap": _child_recap, "patchdrop": _child_patchdrop}


def _child_main(name, args):
    import tempfile

    import torch

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass
    # Nothing of this project may shadow the original's modules (utils, model, ...).
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    folder = os.path.abspath(os.path.join(args.originals_dir, WORKLOADS[name][2]))
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="kg_originals_") as tmp:
        os.chdir(tmp)  # the originals write plots/ and checkpoints relative to the cwd
        try:
            done, seconds, batch, how = CHILDREN[name](folder, args)
        finally:
            os.chdir(cwd)
    result = {"steps_per_s": done / seconds, "images_per_s": done * batch / seconds,
              "batch_size": batch, "peak_mb": _peak_rss_mb(), "steps": done,
              "warmup": args.warmup, "seconds": seconds, "threads": args.threads,
              "loadavg_1min": os.getloadavg()[0], "how": how}
    print("RESULT " + json.dumps(result), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--torch_python", default=None,
                   help=f"interpreter with torch (default $KG_TORCH_PYTHON or "
                        f"{DEFAULT_TORCH_PYTHON})")
    p.add_argument("--originals_dir", default=None,
                   help=f"clones ram/, recap/, patchdrop/ (default $KG_ORIGINALS_DIR or "
                        f"{DEFAULT_ORIGINALS_DIR})")
    p.add_argument("--which", default="ram,recap,patchdrop")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per workload (default 50; patchdrop 10)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max_seconds", type=float, default=120.0,
                   help="cap on each workload's timed phase (at least 2 steps)")
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    p.add_argument("--warmup", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        args.warmup = WORKLOADS[args._child][4] if args.warmup is None else args.warmup
        args.steps = args.steps or WORKLOADS[args._child][5]
        _, args.originals_dir = _resolve(None, args.originals_dir)
        _child_main(args._child, args)
        return 0
    rows = measure_originals(which=args.which, steps=args.steps, threads=args.threads,
                             torch_python=args.torch_python, originals_dir=args.originals_dir,
                             max_seconds=args.max_seconds)
    torch_version = next((r["torch"] for r in rows if r.get("torch")), None)
    print(f"PyTorch originals' training steps on synthetic data, {args.threads} CPU threads"
          + (f", torch {torch_version}" if torch_version else ""))
    print(format_table(rows))
    for r in rows:
        if "how" in r:
            print(f"- {r['workload']}: {r['how']}")
        if r.get("error"):
            print(f"- {r['workload']} failed:\n{r['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 1 if any(r.get("failed") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
