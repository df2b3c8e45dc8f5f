#!/usr/bin/env python3
"""PyTorch/transformers peer measurement for issue #11, run on the GPU machine beside our own benchmarks.

What it measures (random bf16 weights of real shapes; nothing is downloaded: every model is built from a config):
  copy      device-to-device copy of a 1 GiB buffer (bytes read + written), CUDA events, median of 20: the bandwidth
            ceiling every decode figure is divided by.
  matmul    bf16 torch.matmul 8192 x 8192 x 8192 (cuBLAS tensor cores), median of 20: the compute ceiling.
  gemms     cuBLAS on the Llama-3-8B decode products at --gemm-rows activation rows (default 256): q/k/v, attention
            output, gate+up, down and the LM head, each x · Wᵀ with W (N × K) bf16, weights rotated through ≥ 256 MB so
            L2 does not serve them (as a decode step reads them): what the best library reaches at exactly the shapes
            of the "GEMMs at batch 256" target, against `matmul`.
  decode    batch 1, 128-token random prompt, 128 new tokens, greedy, min_new_tokens = max_new_tokens, for the
            Llama-3.2-1B and Llama-3-8B shapes: (a) plain model.generate, (b) the gpt-fast recipe (static KV cache +
            torch.compile(mode="reduce-overhead"), i.e. CUDA graphs) measured two ways: through generate
            (cache_implementation="static", which compiles the decode step itself) and as gpt-fast's own loop (a
            StaticCache + a compiled one-token step, no generate overhead per token); compile and warm-up are
            reported separately, never counted.
  prefill   Llama-3-8B shape, one forward of 2048 tokens at batch 1: time and TFLOP/s against `matmul`.
  batched   Llama-3-8B shape decode at batch 64 and 256 (prompt 128, 64 new tokens): tok/s, and the GEMMs' TFLOP/s
            against `matmul` (both compiled variants when they work, else plain generate; the row says which).
  nanovllm  nano-vllm's bench.py workload on the Qwen3-0.6B shape (256 requests, prompt and output lengths uniform in
            [100, 1024], Python's random seeded 0 in bench.py's call order) served by plain generate in left-padded
            batches: useful output tokens/s (each request counts only its own output length).

How to run (on the GPU machine; PyTorch and transformers are installed there; no network is needed):
    python3 tools/gpu/torch-peer.py --out $OUT/torch-peer.jsonl                    # everything (can exceed 10 min)
    python3 tools/gpu/torch-peer.py --out $OUT/torch-peer.jsonl --only copy,matmul,decode
    python3 tools/gpu/torch-peer.py --out $OUT/torch-peer.jsonl --only prefill,batched,nanovllm
Each section runs in its own try/except (a failure prints its traceback and the next section runs) under a time budget
(--budget-s, one number for every section or `section=seconds,...`); a section over budget skips its remaining parts and
reports what it did. Sections that divide by a ceiling measure it first when `copy`/`matmul` were not selected, so every
fraction comes from the same run. Results: progress lines with timestamps while running, a short table at the end, and
one JSON object per measurement appended to --out.

Conventions (the same as issue #11's figures): bytes per decode step = every parameter byte once (tied embeddings
counted once) + the KV cache of the useful context (mean of prompt and final length) for every sequence; decode tok/s =
tokens produced by decode steps / time after the first token (the first token comes from the prefill; the end-to-end
rate, new tokens / whole generate time, is reported beside it). Weights: matrices normal(0, 0.02), norm gains 1.

It never changes GPU clocks or settings; it only reads them (torch, nvidia-smi --query).
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import os
import random
import statistics
import subprocess
import sys
import time
import traceback

T0 = time.time()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{time.time() - T0:7.1f}s] {message}", flush=True)


SECTIONS = ["copy", "matmul", "gemms", "decode", "prefill", "batched", "nanovllm"]
# Measured on an H200 (torch 2.11, transformers 5.17), defaults otherwise: copy+matmul ~20 s (with start-up), decode
# 160 s, prefill 4 s, batched 164 s, nanovllm 236 s (all 256 requests; its first batch of 64 took 84 s, the others
# ~46 s). So `--only copy,matmul,decode,prefill,batched` fits one 10-minute device command and nanovllm needs its own;
# on a slower host give nanovllm more (--budget-s nanovllm=500) to finish every request.
DEFAULT_BUDGET_S = {"copy": 60, "matmul": 60, "gemms": 60, "decode": 480, "prefill": 120, "batched": 480, "nanovllm": 240}

# Real shapes (the published configs' sizes); rope theta and context length do not change the speed but are set as the
# real models have them.
SHAPES = {
    "llama-3.2-1b": dict(family="llama", hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=64, intermediate_size=8192, vocab_size=128256,
                         tie_word_embeddings=True, rope_theta=500000.0, max_position_embeddings=131072,
                         rms_norm_eps=1e-5),
    "llama-3-8b": dict(family="llama", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, head_dim=128, intermediate_size=14336, vocab_size=128256,
                       tie_word_embeddings=False, rope_theta=500000.0, max_position_embeddings=8192,
                       rms_norm_eps=1e-5),
    "qwen3-0.6b": dict(family="qwen3", hidden_size=1024, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, intermediate_size=3072, vocab_size=151936,
                       tie_word_embeddings=True, rope_theta=1000000.0, max_position_embeddings=40960,
                       rms_norm_eps=1e-6),
}
DECODE_MODELS = {"1b": "llama-3.2-1b", "8b": "llama-3-8b"}

torch = None  # imported in main() so that --help works without it


# ----------------------------------------------------------------------------------------------------------------------
# bookkeeping


class Budget:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.time()
        self.deadline = self.start + seconds

    def left(self) -> float:
        return self.deadline - time.time()

    def exceeded(self) -> bool:
        return self.left() <= 0


class Recorder:
    """Appends one JSON object per measurement to the --out file (flushed at once) and keeps them for the table."""

    def __init__(self, path: str, env: dict):
        self.path = path
        self.env = env
        self.rows = []
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)

    def add(self, **fields) -> dict:
        row = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        row.update(fields)
        row["env"] = self.env
        self.rows.append(row)
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, default=str) + "\n")
        except Exception:
            traceback.print_exc()
        shown = {k: v for k, v in row.items() if k not in ("env", "ts")}
        log("RESULT " + json.dumps(shown, default=_short))
        return row

    def table(self) -> None:
        header = f"{'section':<9} {'name':<34} {'model':<13} {'B':>4} {'prompt':>6} {'new':>5} {'time':>10} " \
                 f"{'tok/s':>10}  note"
        print("\n" + header, flush=True)
        print("-" * len(header), flush=True)
        for r in self.rows:
            time_s = r.get("time_s")
            tok_s = r.get("tok_s")
            print(f"{r.get('section', ''):<9} {str(r.get('name', ''))[:34]:<34} {str(r.get('model', '') or ''):<13} "
                  f"{_fmt(r.get('batch'), '{}'):>4} {_fmt(r.get('prompt'), '{}'):>6} {_fmt(r.get('new_tokens'), '{}'):>5} "
                  f"{_fmt(time_s, '{:.4g} s'):>10} {_fmt(tok_s, '{:.1f}'):>10}  {r.get('note', '')}", flush=True)


def _fmt(value, pattern: str) -> str:
    if value is None:
        return ""
    try:
        return pattern.format(value)
    except Exception:
        return str(value)


def _short(value):
    return str(value)


def median(values):
    return statistics.median(values) if values else None


def cleanup(label: str = "") -> None:
    gc.collect()
    try:
        torch._dynamo.reset()  # drops compiled graphs and (in current torch) the CUDA-graph trees' memory pools
    except Exception:
        traceback.print_exc()
    gc.collect()
    torch.cuda.empty_cache()
    log(f"memory after cleanup{(' ' + label) if label else ''}: allocated "
        f"{torch.cuda.memory_allocated() / 2**30:.2f} GiB, reserved {torch.cuda.memory_reserved() / 2**30:.2f} GiB")


def environment() -> dict:
    env = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda_runtime": torch.version.cuda}
    try:
        import transformers
        env["transformers"] = transformers.__version__
    except Exception as error:  # the ceilings still run without it
        env["transformers"] = f"unavailable: {error!r}"
    try:
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = props.name
        env["sm"] = f"{props.major}.{props.minor}"
        env["sms"] = props.multi_processor_count
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    except Exception as error:
        env["gpu"] = f"unknown: {error!r}"
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm,clocks.max.mem,power.limit",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        env["nvidia_smi"] = query.stdout.strip()
    except Exception as error:
        env["nvidia_smi"] = f"unavailable: {error!r}"
    return env


class Context:
    def __init__(self, args, recorder: Recorder):
        self.args = args
        self.rec = recorder
        self.copy_bw = None  # bytes/s, from section copy
        self.matmul_flops = None  # flop/s, from section matmul
        self.compiled_strategy = None  # the first compiled-decode strategy that worked (tried first next time)


# ----------------------------------------------------------------------------------------------------------------------
# timing helpers


def cuda_event_times_ms(fn, warmup: int, iters: int):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def ensure_measured(ctx: Context, measured, section, what: str) -> None:
    """Runs `section` first when the ceiling it measures (`measured(ctx)`) is missing from this run."""
    if measured(ctx) is None:
        log(f"{what} not measured yet in this run: measuring it first")
        try:
            section(ctx, Budget(60))
        except Exception:
            traceback.print_exc()
            log(f"{what} unavailable: fractions of it are left out")


def ensure_copy_bw(ctx: Context) -> None:
    ensure_measured(ctx, lambda c: c.copy_bw, section_copy, "copy bandwidth")


def ensure_matmul(ctx: Context) -> None:
    ensure_measured(ctx, lambda c: c.matmul_flops, section_matmul, "matmul rate")


# ----------------------------------------------------------------------------------------------------------------------
# models


@contextlib.contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build_config(name: str):
    import transformers
    spec = dict(SHAPES[name])
    family = spec.pop("family")
    config_class = transformers.LlamaConfig if family == "llama" else transformers.Qwen3Config
    theta = spec["rope_theta"]
    # No EOS: every generation runs to max_new_tokens (min_new_tokens is passed as well). Pad id 0 for left padding.
    extra = dict(eos_token_id=None, pad_token_id=0, use_cache=True)
    try:
        config = config_class(**spec, **extra)
    except TypeError:
        # API uncertainty: transformers 5 moved rope_theta into rope_parameters; if the keyword is refused, build
        # without it and set rope_parameters below.
        traceback.print_exc()
        spec.pop("rope_theta")
        config = config_class(**spec, **extra)
    rope = getattr(config, "rope_parameters", None)
    if isinstance(rope, dict) and rope.get("rope_theta") != theta:
        rope["rope_theta"] = theta
    elif rope is None and getattr(config, "rope_theta", theta) != theta:
        config.rope_theta = theta
    return config, family


def build_model(name: str, seed: int = 0):
    """Builds the model directly on the GPU in bf16 and re-randomizes every weight (never zeros, never torch.empty)."""
    import transformers
    config, family = build_config(name)
    model_class = transformers.LlamaForCausalLM if family == "llama" else transformers.Qwen3ForCausalLM
    started = time.time()
    try:
        with torch.device("cuda"), default_dtype(torch.bfloat16):
            model = model_class(config)
    except Exception:
        traceback.print_exc()
        log(f"{name}: building under torch.device('cuda') failed; building on the CPU and moving it")
        gc.collect()
        torch.cuda.empty_cache()
        with default_dtype(torch.bfloat16):
            model = model_class(config)
        model = model.to("cuda")
    if config.tie_word_embeddings:
        try:
            model.tie_weights()
        except Exception:
            traceback.print_exc()
    generator = torch.Generator(device="cuda")
    generator.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dtype != torch.bfloat16 or parameter.device.type != "cuda":
                parameter.data = parameter.data.to(device="cuda", dtype=torch.bfloat16)
            if parameter.dim() >= 2:
                parameter.normal_(0.0, 0.02, generator=generator)
            else:
                parameter.fill_(1.0)  # RMSNorm gains (and Qwen3's q/k norms)
            parameter.requires_grad_(False)
    model.eval()
    generation_config = model.generation_config
    generation_config.eos_token_id = None
    generation_config.pad_token_id = 0
    torch.cuda.synchronize()
    info = model_info(model, config)
    log(f"built {name} ({model_class.__name__}) in {time.time() - started:.1f} s: {info['params'] / 1e9:.3f} B params, "
        f"{info['param_bytes'] / 1e9:.3f} GB, tied={info['tied']}, attention={info['attn_implementation']}, "
        f"rope={getattr(config, 'rope_parameters', None) or getattr(config, 'rope_theta', None)}, "
        f"allocated {torch.cuda.memory_allocated() / 2**30:.2f} GiB")
    if config.tie_word_embeddings != info["tied"]:
        log(f"WARNING {name}: tie_word_embeddings={config.tie_word_embeddings} but tied={info['tied']}")
    return model, info


def model_info(model, config) -> dict:
    params = list(model.parameters())  # parameters() lists a tied tensor once
    total = sum(p.numel() for p in params)
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    tied = embed.data_ptr() == head.data_ptr()
    layer_params = total - embed.numel() - (0 if tied else head.numel())
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {
        "params": total,
        "param_bytes": sum(p.numel() * p.element_size() for p in params),
        "layer_params": layer_params,  # everything but the embedding table and the LM head (≈ the per-token matmuls)
        "head_params": head.numel(),
        "tied": tied,
        "layers": config.num_hidden_layers,
        "heads": config.num_attention_heads,
        "kv_heads": config.num_key_value_heads,
        "head_dim": head_dim,
        "vocab": config.vocab_size,
        "kv_bytes_per_token": config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * 2,
        "attn_implementation": getattr(config, "_attn_implementation", None),
    }


def random_ids(batch: int, length: int, vocab: int, seed: int):
    generator = torch.Generator(device="cuda")
    generator.manual_seed(seed)
    return torch.randint(0, vocab, (batch, length), device="cuda", generator=generator)


def compiled_graph_count():
    """Dynamo's count of compiled graphs (None where this torch does not keep it): a compiled row with 0 new graphs
    means generate did not actually compile, which the row then says."""
    try:
        from torch._dynamo.utils import counters
        return int(counters["stats"]["unique_graphs"])
    except Exception:
        return None


def dynamo_summary() -> str:
    try:
        from torch._dynamo.utils import counters
        stats = dict(counters.get("stats", {}))
        breaks = sum(counters.get("graph_break", {}).values())
        skips = dict(counters.get("inductor", {})).get("cudagraph_skips", 0)
        return f"dynamo stats {stats}, graph breaks {breaks}, cudagraph skips {skips}"
    except Exception as error:
        return f"dynamo counters unavailable ({error!r})"


# ----------------------------------------------------------------------------------------------------------------------
# generate, timed


def make_clock_criteria(deadline=None):
    """A stopping criterion that never stops (unless the wall-clock deadline passes) and times the first token.

    generate calls stopping criteria once per produced token; the first call comes right after the prefill's token. It
    synchronizes once there, so decode time = end - that moment. (generate already synchronizes every step to test
    whether all sequences finished, so one more sync costs nothing measurable.)"""
    from transformers import StoppingCriteria

    class ClockCriteria(StoppingCriteria):
        def __init__(self):
            self.first = None
            self.calls = 0
            self.stopped_at = None

        def __call__(self, input_ids, scores, **kwargs):
            self.calls += 1
            if self.first is None:
                torch.cuda.synchronize()
                self.first = time.perf_counter()
            stop = deadline is not None and time.time() > deadline
            if stop and self.stopped_at is None:
                self.stopped_at = self.calls
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return ClockCriteria()


def timed_generate(model, input_ids, attention_mask, new_tokens: int, extra=None, deadline=None) -> dict:
    from transformers import StoppingCriteriaList
    clock = make_clock_criteria(deadline)
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    kwargs.update(extra or {})
    torch.cuda.synchronize()
    started = time.perf_counter()
    with torch.no_grad():
        output = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                stopping_criteria=StoppingCriteriaList([clock]), **kwargs)
    torch.cuda.synchronize()
    ended = time.perf_counter()
    sequences = output if isinstance(output, torch.Tensor) else output.sequences
    produced = sequences.shape[1] - input_ids.shape[1]
    first = clock.first if clock.first is not None else ended
    return {"total_s": ended - started, "first_s": first - started, "decode_s": ended - first,
            "produced": produced, "stopped_early": clock.stopped_at is not None}


def run_generate_series(model, ids, mask, new_tokens: int, extra, warmups: int, runs: int, budget: Budget, label: str):
    """Warm-up generations (the first one compiles when compiling), then timed ones; stops early on the budget."""
    warm = []
    for i in range(warmups):
        result = timed_generate(model, ids, mask, new_tokens, extra)
        warm.append(result)
        log(f"{label}: warm-up {i + 1}/{warmups} {result['total_s']:.3f} s (first token {result['first_s'] * 1e3:.1f} ms, "
            f"{result['produced']} tokens)")
        if budget.exceeded():
            log(f"{label}: budget exceeded during warm-up")
            break
    timed = []
    for i in range(runs):
        if budget.exceeded() and timed:
            log(f"{label}: budget exceeded after {len(timed)} timed runs")
            break
        result = timed_generate(model, ids, mask, new_tokens, extra)
        timed.append(result)
        log(f"{label}: run {i + 1}/{runs} {result['total_s']:.3f} s (first token {result['first_s'] * 1e3:.1f} ms, "
            f"decode {result['decode_s']:.3f} s, {result['produced']} tokens)")
    return warm, timed


def summarize_runs(timed, batch: int) -> dict:
    produced = timed[0]["produced"]
    decode_rates = [batch * (r["produced"] - 1) / r["decode_s"] for r in timed if r["decode_s"] > 0 and r["produced"] > 1]
    e2e_rates = [batch * r["produced"] / r["total_s"] for r in timed]
    return {
        "produced": produced,
        "time_s": median([r["total_s"] for r in timed]),
        "decode_s": median([r["decode_s"] for r in timed]),
        "first_token_ms": median([r["first_s"] * 1e3 for r in timed]),
        "tok_s": median(decode_rates),
        "tok_s_end_to_end": median(e2e_rates),
        "runs": len(timed),
        "all_total_s": [round(r["total_s"], 4) for r in timed],
        "compiled_graphs": timed[0].get("compiled_graphs"),
    }


# ----------------------------------------------------------------------------------------------------------------------
# compiled decode: the gpt-fast recipe through transformers, with fallbacks
#
# API notes (looked up in transformers' docs/source/en/llm_optims.md and generation/utils.py, late-2025 versions; exact
# behaviour of 5.17 unknown, hence the fallbacks, tried in order until one works):
#  1. "auto-compile": generate(..., cache_implementation="static", compile_config=CompileConfig(...)). Since ~4.48,
#     generate compiles the decode-step forward itself (get_compiled_call(compile_config)) when the cache is compileable
#     (static) and the device is CUDA; CompileConfig defaults to mode="reduce-overhead". The prefill stays eager.
#     fullgraph=True first (a graph break then fails loudly instead of silently costing speed), then fullgraph=False.
#  2. "compiled-forward": the older documented recipe, model.forward = torch.compile(model.forward,
#     mode="reduce-overhead", fullgraph=True) + cache_implementation="static", with disable_compile=True where the
#     generation config has it (so generate does not compile a second time around it).
#  3. "manual-loop": gpt-fast's own loop: a StaticCache object (constructor keywords filtered by its signature: they
#     changed from (config, max_batch_size, max_cache_len, device, dtype) to (config, max_cache_len) with lazy
#     allocation), an eager prefill, and torch.compile(decode_one_token, mode="reduce-overhead", fullgraph=True).


# Two groups, each measured: "generate" (transformers' own static-cache + compile path, strategies 1 and 2, first that
# works) and "loop" (strategy 3, gpt-fast's loop). First run on an H200 with torch 2.11 + transformers 5.17 (1B shape,
# 32 new tokens): auto-compile-fullgraph worked (389 tok/s; generate's per-step Python costs the rest), manual-loop 653
# tok/s, compiled-forward failed ("accessing tensor output of CUDAGraphs that has been overwritten": the cache's
# cumulative_length counter is a graph output), so it is only the last fallback of its group.
COMPILED_GROUPS = {
    "generate": ("generate static+compile", ["auto-compile-fullgraph", "auto-compile", "compiled-forward"]),
    "loop": ("gpt-fast loop static+compile", ["manual-loop"]),
}


def compiled_strategies(ctx: Context, group: str):
    import transformers
    names = list(COMPILED_GROUPS[group][1])
    if not hasattr(transformers, "CompileConfig"):
        names = [n for n in names if not n.startswith("auto-compile")]
    forced = ctx.args.compiled_path
    if forced:
        return [forced] if forced in COMPILED_GROUPS[group][1] else []
    if ctx.compiled_strategy in names:
        names.remove(ctx.compiled_strategy)
        names.insert(0, ctx.compiled_strategy)
    return names


def generation_config_has(field: str) -> bool:
    try:
        from transformers import GenerationConfig
        return hasattr(GenerationConfig(), field)
    except Exception:
        return False


def measure_compiled(ctx: Context, model, ids, mask, new_tokens: int, budget: Budget, label: str, strategies):
    """Returns (strategy, warm-up results, timed results) of the first strategy that works; raises if none does."""
    import transformers
    errors = []
    for strategy in strategies:
        if budget.exceeded():
            raise TimeoutError(f"budget exceeded before trying {strategy}; earlier failures: {errors}")
        log(f"{label}: trying compiled strategy {strategy}")
        cleanup()
        name = f"{label} [{strategy}]"
        graphs_before = compiled_graph_count()
        try:
            if strategy.startswith("auto-compile"):
                config = transformers.CompileConfig(fullgraph=strategy.endswith("fullgraph"), mode="reduce-overhead")
                extra = dict(cache_implementation="static", compile_config=config)
                warm, timed = run_generate_series(model, ids, mask, new_tokens, extra, ctx.args.warmups,
                                                  ctx.args.runs, budget, name)
            elif strategy == "compiled-forward":
                extra = dict(cache_implementation="static")
                if generation_config_has("disable_compile"):
                    extra["disable_compile"] = True
                model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
                try:
                    warm, timed = run_generate_series(model, ids, mask, new_tokens, extra, ctx.args.warmups,
                                                      ctx.args.runs, budget, name)
                finally:
                    try:
                        del model.forward  # back to the class's forward
                    except AttributeError:
                        pass
            elif strategy == "manual-loop":
                warm, timed = manual_static_decode(model, ids, new_tokens, ctx.args.warmups, ctx.args.runs, budget,
                                                   name)
            else:
                raise ValueError(f"unknown compiled strategy {strategy}")
            log(f"{name}: {dynamo_summary()}")
            if not timed:
                raise RuntimeError("no timed run finished")
            graphs_after = compiled_graph_count()
            new_graphs = None if graphs_before is None or graphs_after is None else graphs_after - graphs_before
            if new_graphs == 0:
                log(f"WARNING {name}: dynamo compiled no new graph during this strategy; its timing may be uncompiled")
            for result in timed:
                result["compiled_graphs"] = new_graphs
            if strategy != "manual-loop":
                ctx.compiled_strategy = strategy
            return strategy, warm, timed
        except Exception as error:
            traceback.print_exc()
            errors.append(f"{strategy}: {error!r}"[:300])
            log(f"{label}: strategy {strategy} failed: {error!r}"[:400])
    raise RuntimeError(f"every compiled strategy failed: {errors}")


def make_static_cache(model, batch: int, max_len: int):
    try:
        from transformers import StaticCache
    except ImportError:
        from transformers.cache_utils import StaticCache
    parameters = inspect.signature(StaticCache.__init__).parameters
    candidates = dict(config=model.config, max_cache_len=max_len, device=model.device, dtype=torch.bfloat16)
    if "max_batch_size" in parameters:
        candidates["max_batch_size"] = batch
    elif "batch_size" in parameters:
        candidates["batch_size"] = batch
    return StaticCache(**{k: v for k, v in candidates.items() if k in parameters})


def manual_static_decode(model, ids, new_tokens: int, warmups: int, runs: int, budget: Budget, label: str):
    batch, prompt = ids.shape
    cache = make_static_cache(model, batch, prompt + new_tokens)
    forward_parameters = inspect.signature(model.forward).parameters
    pass_cache_position = "cache_position" in forward_parameters

    def step(tokens, positions):
        kwargs = dict(past_key_values=cache, use_cache=True,
                      position_ids=positions.unsqueeze(0).expand(tokens.shape[0], -1))
        if pass_cache_position:
            kwargs["cache_position"] = positions
        logits = model(input_ids=tokens, **kwargs).logits
        return logits[:, -1].argmax(dim=-1, keepdim=True)

    compiled_step = torch.compile(step, mode="reduce-overhead", fullgraph=True)
    used = []

    def once() -> dict:
        if used:  # a lazily allocated StaticCache (newer transformers) may not accept reset() before its first use
            cache.reset()
        used.append(True)
        torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.no_grad():
            token = step(ids, torch.arange(prompt, device="cuda"))
            torch.cuda.synchronize()
            first = time.perf_counter()
            position = torch.tensor([prompt], device="cuda")
            for _ in range(new_tokens - 1):
                token = compiled_step(token.clone(), position).clone()  # CUDA-graph outputs are overwritten next call
                position += 1
        torch.cuda.synchronize()
        ended = time.perf_counter()
        return {"total_s": ended - started, "first_s": first - started, "decode_s": ended - first,
                "produced": new_tokens, "stopped_early": False}

    warm = []
    for i in range(warmups):
        warm.append(once())
        log(f"{label}: warm-up {i + 1}/{warmups} {warm[-1]['total_s']:.3f} s")
        if budget.exceeded():
            break
    timed = []
    for i in range(runs):
        if budget.exceeded() and timed:
            break
        timed.append(once())
        log(f"{label}: run {i + 1}/{runs} {timed[-1]['total_s']:.3f} s (decode {timed[-1]['decode_s']:.3f} s)")
    return warm, timed


# ----------------------------------------------------------------------------------------------------------------------
# sections


def section_copy(ctx: Context, budget: Budget) -> None:
    size = 1 << 30
    src = torch.empty(size, dtype=torch.uint8, device="cuda")
    src.random_(0, 256)
    dst = torch.empty_like(src)
    times = cuda_event_times_ms(lambda: dst.copy_(src), warmup=5, iters=20)
    ms = median(times)
    ctx.copy_bw = 2 * size / (ms / 1e3)
    ctx.rec.add(section="copy", name="d2d copy 1 GiB (read+write)", dtype="uint8", time_s=ms / 1e3,
                bytes=2 * size, gb_s=ctx.copy_bw / 1e9, min_ms=min(times), max_ms=max(times),
                note=f"{ctx.copy_bw / 1e9:.0f} GB/s (median of 20)")
    del src, dst


def section_matmul(ctx: Context, budget: Budget) -> None:
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    times = cuda_event_times_ms(lambda: torch.matmul(a, b, out=c), warmup=5, iters=20)
    ms = median(times)
    flops = 2 * n ** 3
    ctx.matmul_flops = flops / (ms / 1e3)
    ctx.rec.add(section="matmul", name="bf16 matmul 8192^3", dtype="bf16", time_s=ms / 1e3, flops=flops,
                tflop_s=ctx.matmul_flops / 1e12, min_ms=min(times), max_ms=max(times),
                note=f"{ctx.matmul_flops / 1e12:.0f} TFLOP/s (median of 20)")
    del a, b, c


# Llama-3-8B's products (N, K) per layer in a decode step, and the LM head once.
DECODE_GEMMS = [("q/k/v", 6144, 4096, 32), ("attention output", 4096, 4096, 32), ("gate+up", 28672, 4096, 32),
                ("down", 4096, 14336, 32), ("lm head", 128256, 4096, 1)]


def section_gemms(ctx: Context, budget: Budget) -> None:
    ensure_matmul(ctx)
    m = ctx.args.gemm_rows
    total_flops = total_s = 0.0
    for name, n, k, per_step in DECODE_GEMMS:
        copies = max(2, -(-256 * 2 ** 20 // (n * k * 2)))  # rotate through >= 256 MB of weights: 5x the 50 MB L2
        weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        y = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
        turn = [0]

        def product():
            torch.matmul(x, weights[turn[0] % copies].t(), out=y)
            turn[0] += 1

        times = cuda_event_times_ms(product, warmup=5, iters=40)
        ms = median(times)
        flops = 2.0 * m * n * k
        total_flops += flops * per_step
        total_s += ms / 1e3 * per_step
        ctx.rec.add(section="gemms", name=f"cuBLAS {name} M {m} N {n} K {k}", dtype="bf16", time_s=ms / 1e3, flops=flops,
                    tflop_s=flops / (ms / 1e3) / 1e12, frac_matmul=flops / (ms / 1e3) / ctx.matmul_flops,
                    note=f"{flops / (ms / 1e3) / 1e12:.0f} TFLOP/s = {100 * flops / (ms / 1e3) / ctx.matmul_flops:.1f}% of matmul "
                         f"(median of 40, {copies} weight copies)")
        del weights, x, y
    ctx.rec.add(section="gemms", name=f"cuBLAS, a Llama-3-8B step's products at M {m}", dtype="bf16", time_s=total_s,
                flops=total_flops, tflop_s=total_flops / total_s / 1e12, frac_matmul=total_flops / total_s / ctx.matmul_flops,
                note=f"{total_s * 1e3:.2f} ms a step, {total_flops / total_s / 1e12:.0f} TFLOP/s = "
                     f"{100 * total_flops / total_s / ctx.matmul_flops:.1f}% of matmul")


def decode_bytes(info: dict, batch: int, prompt: int, new_tokens: int) -> dict:
    mean_context = prompt + new_tokens / 2
    kv = info["kv_bytes_per_token"] * mean_context * batch
    return {"param_bytes": info["param_bytes"], "kv_bytes": kv, "bytes_per_step": info["param_bytes"] + kv}


def record_decode(ctx: Context, section: str, name: str, model_name: str, info: dict, batch: int, prompt: int,
                  new_tokens: int, summary: dict, extra: dict) -> None:
    bytes_ = decode_bytes(info, batch, prompt, new_tokens)
    steps_per_s = summary["tok_s"] / batch if summary["tok_s"] else None
    row = dict(section=section, name=name, model=model_name, dtype="bf16", batch=batch, prompt=prompt,
               new_tokens=summary["produced"], **summary, **bytes_, **extra)
    notes = []
    if steps_per_s and ctx.copy_bw:
        achieved = steps_per_s * bytes_["bytes_per_step"]
        row["gb_s"] = achieved / 1e9
        row["frac_copy_bw"] = achieved / ctx.copy_bw
        notes.append(f"{achieved / 1e9:.0f} GB/s = {100 * achieved / ctx.copy_bw:.0f}% of copy")
    if section == "batched" and steps_per_s and ctx.matmul_flops:
        gemm_flops = steps_per_s * 2 * (info["layer_params"] + info["head_params"]) * batch
        row["gemm_tflop_s"] = gemm_flops / 1e12
        row["frac_matmul"] = gemm_flops / ctx.matmul_flops
        notes.append(f"GEMMs {gemm_flops / 1e12:.0f} TFLOP/s = {100 * gemm_flops / ctx.matmul_flops:.0f}% of matmul")
    notes.append(f"e2e {summary['tok_s_end_to_end']:.1f} tok/s, TTFT {summary['first_token_ms']:.1f} ms")
    if "compile_s" in extra:
        notes.append(f"compile+warm-up {extra['compile_s']:.0f} s")
    if summary.get("compiled_graphs") == 0:
        notes.append("NO GRAPH COMPILED")
    if summary["produced"] != new_tokens:
        notes.append(f"PRODUCED {summary['produced']} != {new_tokens}")
    row["note"] = "; ".join(notes)
    ctx.rec.add(**row)


def section_decode(ctx: Context, budget: Budget) -> None:
    ensure_copy_bw(ctx)
    args = ctx.args
    for key in args.decode_models.split(","):
        key = key.strip()
        model_name = DECODE_MODELS.get(key, key)
        if budget.exceeded():
            ctx.rec.add(section="decode", name="skipped (budget)", model=model_name, note="budget exceeded")
            continue
        model = None
        try:
            model, info = build_model(model_name)
            ids = random_ids(1, args.prompt, info["vocab"], seed=1)
            mask = torch.ones_like(ids)
            try:
                if budget.exceeded():
                    raise TimeoutError("budget exceeded before plain generate")
                warm, timed = run_generate_series(model, ids, mask, args.new_tokens, {}, 1, args.runs, budget,
                                                  f"{model_name} plain")
                record_decode(ctx, "decode", "plain generate", model_name, info, 1, args.prompt, args.new_tokens,
                              summarize_runs(timed, 1), {"variant": "plain"})
            except Exception as error:
                traceback.print_exc()
                ctx.rec.add(section="decode", name="plain generate FAILED", model=model_name, error=repr(error)[:500])
            for group, (title, _) in COMPILED_GROUPS.items():
                strategies = compiled_strategies(ctx, group)
                if not strategies:
                    continue
                try:
                    if budget.exceeded():
                        raise TimeoutError(f"budget exceeded before {title}")
                    strategy, warm, timed = measure_compiled(ctx, model, ids, mask, args.new_tokens, budget,
                                                             f"{model_name} {title}", strategies)
                    summary = summarize_runs(timed, 1)
                    compile_s = sum(r["total_s"] for r in warm) - len(warm) * summary["time_s"]
                    record_decode(ctx, "decode", f"{title} ({strategy})", model_name, info, 1, args.prompt,
                                  args.new_tokens, summary,
                                  {"variant": strategy, "compile_s": compile_s,
                                   "warmup_total_s": [round(r["total_s"], 3) for r in warm]})
                except Exception as error:
                    traceback.print_exc()
                    ctx.rec.add(section="decode", name=f"{title} FAILED", model=model_name, error=repr(error)[:500])
        finally:
            del model
            cleanup(model_name)


def section_prefill(ctx: Context, budget: Budget) -> None:
    ensure_matmul(ctx)
    args = ctx.args
    tokens = args.prefill_tokens
    model_name = "llama-3-8b"
    model = None
    try:
        model, info = build_model(model_name)
        ids = random_ids(1, tokens, info["vocab"], seed=2)
        parameters = inspect.signature(model.forward).parameters
        kwargs = {"use_cache": False}
        logits_rows = tokens
        # Our engine computes logits for the last position only; so does generate's prefill (logits_to_keep=1).
        for keyword in ("logits_to_keep", "num_logits_to_keep"):
            if keyword in parameters:
                kwargs[keyword] = 1
                logits_rows = 1
                break

        def forward():
            with torch.no_grad():
                model(input_ids=ids, **kwargs)

        iterations = max(5, args.runs)
        times = cuda_event_times_ms(forward, warmup=2, iters=iterations)
        ms = median(times)
        attention = 2 * info["layers"] * info["heads"] * info["head_dim"] * tokens * tokens  # QK^T and PV, causal half
        flops = 2 * info["layer_params"] * tokens + 2 * info["head_params"] * logits_rows + attention
        rate = flops / (ms / 1e3)
        row = dict(section="prefill", name=f"forward {tokens} tokens", model=model_name, dtype="bf16", batch=1,
                   prompt=tokens, new_tokens=0, time_s=ms / 1e3, tok_s=tokens / (ms / 1e3), flops=flops,
                   attention_flops=attention, logits_rows=logits_rows, tflop_s=rate / 1e12,
                   all_ms=[round(t, 3) for t in times], attn_implementation=info["attn_implementation"])
        note = f"{rate / 1e12:.0f} TFLOP/s"
        if ctx.matmul_flops:
            row["frac_matmul"] = rate / ctx.matmul_flops
            note += f" = {100 * rate / ctx.matmul_flops:.0f}% of matmul"
        row["note"] = note + f" (median of {iterations}; 2 x non-embedding params x tokens + causal attention)"
        ctx.rec.add(**row)
    finally:
        del model
        cleanup(model_name)


def section_batched(ctx: Context, budget: Budget) -> None:
    ensure_copy_bw(ctx)
    ensure_matmul(ctx)
    args = ctx.args
    model_name = "llama-3-8b"
    prompt, new_tokens = args.prompt, args.batched_new_tokens
    model = None
    try:
        model, info = build_model(model_name)
        for batch in [int(b) for b in args.batched_sizes.split(",")]:
            if budget.exceeded():
                ctx.rec.add(section="batched", name="skipped (budget)", model=model_name, batch=batch)
                continue
            ids = random_ids(batch, prompt, info["vocab"], seed=3)
            mask = torch.ones_like(ids)
            cleanup(f"before batch {batch}")
            compiled_ok = False
            for group, (title, _) in COMPILED_GROUPS.items():
                strategies = compiled_strategies(ctx, group)
                if not strategies or (compiled_ok and budget.exceeded()):
                    continue
                try:
                    strategy, warm, timed = measure_compiled(ctx, model, ids, mask, new_tokens, budget,
                                                             f"{model_name} batch {batch} {title}", strategies)
                    summary = summarize_runs(timed, batch)
                    compile_s = sum(r["total_s"] for r in warm) - len(warm) * summary["time_s"]
                    record_decode(ctx, "batched", f"{title} ({strategy})", model_name, info, batch, prompt,
                                  new_tokens, summary, {"variant": strategy, "compile_s": compile_s})
                    compiled_ok = True
                except Exception as error:
                    traceback.print_exc()
                    log(f"batch {batch}: {title} failed ({error!r})"[:400])
            if compiled_ok:
                continue
            log(f"batch {batch}: no compiled decode worked; measuring plain generate")
            try:
                cleanup(f"before plain batch {batch}")
                warm, timed = run_generate_series(model, ids, mask, new_tokens, {}, 1, args.runs, budget,
                                                  f"{model_name} batch {batch} plain")
                record_decode(ctx, "batched", "plain generate (compile failed)", model_name, info, batch, prompt,
                              new_tokens, summarize_runs(timed, batch), {"variant": "plain"})
            except Exception as error:
                traceback.print_exc()
                ctx.rec.add(section="batched", name="FAILED", model=model_name, batch=batch, error=repr(error)[:500])
    finally:
        del model
        cleanup(model_name)


def nanovllm_requests(count: int = 256, max_input: int = 1024, max_output: int = 1024):
    """nano-vllm bench.py's workload with its exact call order on Python's random seeded 0: first every prompt (its length
    drawn, then its token ids in [0, 10000]), then every output length."""
    rng = random.Random(0)
    prompts = [[rng.randint(0, 10000) for _ in range(rng.randint(100, max_input))] for _ in range(count)]
    outputs = [rng.randint(100, max_output) for _ in range(count)]
    return prompts, outputs


def section_nanovllm(ctx: Context, budget: Budget) -> None:
    args = ctx.args
    model_name = "qwen3-0.6b"
    prompts, outputs = nanovllm_requests()
    log(f"nanovllm workload: {len(prompts)} requests, {sum(map(len, prompts))} prompt tokens, {sum(outputs)} output "
        f"tokens (first request: prompt {len(prompts[0])}, output {outputs[0]})")
    # nano-vllm samples at temperature 0.6 (ignore_eos); top_k=0 and top_p=1.0 switch off generate's other warpers.
    sampling = dict(do_sample=True, temperature=0.6, top_k=0, top_p=1.0)
    model = None
    try:
        model, info = build_model(model_name)
        warm_ids = torch.tensor([prompts[0][:16]], device="cuda")
        try:
            timed_generate(model, warm_ids, torch.ones_like(warm_ids), 8, sampling)  # warm-up, as bench.py does
        except Exception:
            traceback.print_exc()
            log("sampling arguments refused by this generate; serving greedy instead")
            sampling = dict(do_sample=False)
            timed_generate(model, warm_ids, torch.ones_like(warm_ids), 8, sampling)
        batch_size = args.nanovllm_batch
        elapsed = 0.0
        useful = 0
        finished = 0
        generated = 0
        batches = 0
        batch_rates = []
        stopped_early = False
        for start in range(0, len(prompts), batch_size):
            if budget.exceeded():
                stopped_early = True
                break
            chunk = list(range(start, min(start + batch_size, len(prompts))))
            width = max(len(prompts[i]) for i in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):  # left padding
                ids[row, width - len(prompts[i]):] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]):] = 1
            ids, mask = ids.cuda(), mask.cuda()
            longest = max(outputs[i] for i in chunk)
            result = timed_generate(model, ids, mask, longest, sampling, deadline=budget.deadline)
            steps = result["produced"]
            batch_useful = sum(min(outputs[i], steps) for i in chunk)
            batch_finished = sum(1 for i in chunk if outputs[i] <= steps)
            elapsed += result["total_s"]
            useful += batch_useful
            finished += batch_finished
            generated += steps * len(chunk)
            batches += 1
            batch_rates.append(round(batch_useful / result["total_s"], 1))
            stopped_early = stopped_early or result["stopped_early"]
            log(f"nanovllm batch {batches}: {len(chunk)} requests, padded prompt {width}, {steps}/{longest} steps in "
                f"{result['total_s']:.1f} s, {batch_useful} useful tokens ({batch_useful / result['total_s']:.0f} tok/s), "
                f"{batch_finished} finished")
            del ids, mask
        rate = useful / elapsed if elapsed else None
        complete = finished == len(prompts)
        ctx.rec.add(section="nanovllm", name=f"generate, batches of {batch_size}", model=model_name, dtype="bf16",
                    batch=batch_size, prompt="100-1024", new_tokens="100-1024", time_s=elapsed, tok_s=rate,
                    useful_output_tokens=useful, generated_tokens=generated, requests_finished=finished,
                    requests=len(prompts), complete=complete, sampling=sampling, batch_tok_s=batch_rates,
                    note=("all 256 requests" if complete else f"BUDGET: {finished}/{len(prompts)} requests finished, "
                          f"rate over the tokens produced so far") + f"; {generated} tokens generated incl. padding "
                          f"waste; target for ours: >= 20x")
    finally:
        del model
        cleanup(model_name)


SECTION_FUNCTIONS = {"copy": section_copy, "matmul": section_matmul, "gemms": section_gemms, "decode": section_decode,
                     "prefill": section_prefill, "batched": section_batched, "nanovllm": section_nanovllm}


# ----------------------------------------------------------------------------------------------------------------------


def parse_budgets(text):
    budgets = dict(DEFAULT_BUDGET_S)
    if not text:
        return budgets
    if "=" not in text:
        return {s: float(text) for s in SECTIONS}
    for part in text.split(","):
        name, _, seconds = part.partition("=")
        if name.strip() not in budgets:
            raise SystemExit(f"--budget-s: unknown section {name.strip()!r} (sections: {', '.join(SECTIONS)})")
        budgets[name.strip()] = float(seconds)
    return budgets


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON-lines file; one object per measurement is appended")
    parser.add_argument("--only", default="", help=f"comma-separated sections ({','.join(SECTIONS)}); default all")
    parser.add_argument("--budget-s", default="",
                        help="seconds per section: one number for all, or section=seconds,... "
                             f"(defaults {DEFAULT_BUDGET_S})")
    parser.add_argument("--decode-models", default="1b,8b", help="decode section: 1b, 8b or shape names")
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens for decode and batched")
    parser.add_argument("--new-tokens", type=int, default=128, help="new tokens for decode")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--warmups", type=int, default=2, help="warm-up generations before compiled timings")
    parser.add_argument("--gemm-rows", type=int, default=256, help="gemms section: activation rows (the decode batch)")
    parser.add_argument("--prefill-tokens", type=int, default=2048)
    parser.add_argument("--batched-sizes", default="64,256")
    parser.add_argument("--batched-new-tokens", type=int, default=64)
    parser.add_argument("--nanovllm-batch", type=int, default=64, help="requests per generate call")
    parser.add_argument("--compiled-path", default="",
                        choices=["", "auto-compile-fullgraph", "auto-compile", "compiled-forward", "manual-loop"],
                        help="force one compiled-decode strategy (only its group is measured) instead of trying "
                             "each group's strategies in order")
    args = parser.parse_args(argv)
    selected = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else list(SECTIONS)
    unknown = [s for s in selected if s not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown sections {unknown} (sections: {', '.join(SECTIONS)})")
    args.sections = [s for s in SECTIONS if s in selected]  # always in the documented order
    args.budgets = parse_budgets(args.budget_s)
    return args


def main(argv=None) -> int:
    global torch
    args = parse_args(argv)
    log(f"torch-peer: sections {args.sections}, budgets {{{', '.join(f'{s}: {args.budgets[s]:g}' for s in args.sections)}}} s")
    try:
        import torch as torch_module
        torch = torch_module
    except Exception:
        traceback.print_exc()
        log("PyTorch is not importable here; nothing measured")
        return 2
    if not torch.cuda.is_available():
        log("torch.cuda.is_available() is False; nothing measured")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    env = environment()
    log("environment: " + json.dumps(env))
    recorder = Recorder(args.out, env)
    ctx = Context(args, recorder)
    for section in args.sections:
        budget = Budget(args.budgets[section])
        log(f"=== section {section} (budget {budget.seconds:g} s)")
        started = time.time()
        try:
            SECTION_FUNCTIONS[section](ctx, budget)
        except Exception as error:
            traceback.print_exc()
            recorder.add(section=section, name="FAILED", error=repr(error)[:500])
        finally:
            try:
                cleanup(section)
            except Exception:
                traceback.print_exc()
        log(f"=== section {section} done in {time.time() - started:.1f} s")
    recorder.table()
    log(f"results appended to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
