"""Benchmarks, each timed against a baseline in the same run
(`python -m colorjax.benchmark NAME`; `__main__`: its flags, their
dispatch and the usage).

By job: `common` (config loading, timing, other processes' CPU share,
peak memory, the PyTorch peers' paths), `pipeline` (grain against a plain
PIL + numpy loop), `train` (train step against the PyTorch peer, FLOPs,
throughput; `model`: parameters and forward FLOPs), `sample` (PixSem's
cached against the naive sampler, its FLOP bound, scaling), `infer`
(SemanticDriven's inference against PyTorch), `editor` (the web editor's
stroke latency against the model call).
"""
