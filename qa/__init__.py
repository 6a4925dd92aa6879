"""qa: cited answers from the optics and photonics documents of Provence."""

import os

# Models come from installed packages and the local cache: never from a hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads (e5's engine, torch) that spin while idle make a single query take ~1 s on 2 cores instead of ~17 ms;
# the policy is read once, when the first OpenMP library loads, so it is set before anything imports one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
