"""ffka: measure how language models acquire and forget factual knowledge during pretraining.

A re-implementation, with honest uncertainty, of Chang et al. 2024, "How Do Large Language Models Acquire
Factual Knowledge During Pretraining?" (NeurIPS 2024): continue pretraining a causal LM while injecting
fictional knowledge, score memorization / semantic / compositional probes after every update, and measure
effectivity, retainability, the decay constant of the log-linear forgetting law and the learnability
threshold. Modules: config (run configuration), world / data (knowledge), model, probes, schedule,
streams, train, log, metrics, fit, stats, plots, pipeline, sweep, report, cli; `ffka --help` for the CLI.
"""
__version__ = "0.1.0"
