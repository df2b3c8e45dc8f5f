using System.Diagnostics;
using AspireAi.GpuCheck;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Cli;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Synthetic;
using AspireAi.Inference.Models.Gguf;

// GpuCheck: the CUDA backend against the CPU backend on the GPU machine, then its timings (docs/cuda.md).
//   GpuCheck [--ptx-dir DIR] [--model FILE.gguf]... [--out DIR] [--quick] [--no-bench | --only-bench] [--big | --only-big]
//   GpuCheck --shapes [SHAPE,...] [--kv-cache-dtype auto|fp32|fp16|fp8] [--out DIR]   the GPU performance table
//            (ShapeBenchmarks) for the named model shapes: 1b-bf16, 1b-q8_0, 8b-bf16, 8b-q8_0, 8b-q4_0, 8b-q4_k, 8b-q5_k, 8b-q6_k,
//            qwen3-bf16 (all when none are named), over a KV cache of that type (auto: what serving uses, f16); --decode
//            B:C,... decodes only at those (batch, context) pairs and skips the prefill (tuning runs); --attention-policy
//            U,B,M sets the decode attention split policy (AttentionSplitPolicy: unsplit context, blocks per SM, minimum
//            partition); --omit K1+K2,K3: at batch 1 also the replayed step without kernels K1 and K2, then without K3
//            (what each set costs on the step's critical path; the step's results are then wrong)
//   GpuCheck --gemm-bench   only the F16/BF16 GEMM timings (Benchmarks.HalfGemms: gemm_half_tc against the Hopper GEMM's
//            tiles at Llama-3-8B's shapes)
//   GpuCheck --tp N [--quick] [--out DIR]   only tensor parallelism: TP = N against TP = 1 (docs/tensor-parallel.md);
//            --quick: two models and the graph replays
//   GpuCheck inference <verb> ...   runs the Inference CLI (e.g. generate --device cuda) from this binary.
if (args.Length > 0 && args[0] == "inference")
{
    return CliApp.Run(args[1..]);
}

string? ptxDirectory = null, outDirectory = null;
var models = new List<string>();
bool quick = false, bench = true, big = false, onlyBig = false, onlyBench = false, gemmBench = false;
string[]? shapes = null;
(int, int)[]? decodeOnly = null;
AttentionSplitPolicy? attentionPolicy = null;
var tensorParallel = 1;
var kvCacheDtype = KvCacheDtype.Auto;
var omissions = new List<string[]>();
List<string>? besideFilter = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--ptx-dir": ptxDirectory = args[++i]; break;
        case "--out": outDirectory = args[++i]; break;
        case "--model": models.Add(args[++i]); break;
        case "--quick": quick = true; break;
        case "--no-bench": bench = false; break;
        case "--big": big = true; break;
        case "--only-big": big = onlyBig = true; break;
        case "--only-bench": onlyBench = true; break;
        case "--gemm-bench": gemmBench = true; break;
        case "--shapes": shapes = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i].Split(',') : ["all"]; break;
        case "--kv-cache-dtype": kvCacheDtype = KvCacheDtypes.Parse(args[++i], "--kv-cache-dtype"); break;
        case "--decode":
            decodeOnly = [.. args[++i].Split(',').Select(pair => pair.Split(':') is [var b, var c]
                ? (int.Parse(b, System.Globalization.CultureInfo.InvariantCulture), int.Parse(c, System.Globalization.CultureInfo.InvariantCulture))
                : throw new ArgumentException($"--decode takes BATCH:CONTEXT pairs, not '{pair}'."))];
            break;
        case "--attention-policy":
            attentionPolicy = args[++i].Split(',').Select(v => int.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray() is [var u, var b, var m]
                ? new AttentionSplitPolicy(u, b, m)
                : throw new ArgumentException("--attention-policy takes UNSPLIT,BLOCKS,MIN (three integers).");
            break;
        case "--omit": omissions = [.. args[++i].Split(',').Select(set => set.Split('+'))]; break;
        case "--beside": besideFilter = args[++i] == "none" ? [] : [.. args[i].Split(',')]; break;
        case "--tp": tensorParallel = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine($"error: unknown argument '{args[i]}' (--ptx-dir DIR, --out DIR, --model FILE, --quick, --no-bench, --only-bench, --gemm-bench, --big, --only-big, --shapes [LIST], --decode B:C,..., --attention-policy U,B,M, --kv-cache-dtype auto|fp32|fp16|fp8, --omit K+K,K, --beside none|TEXT,..., --tp N; or: inference <verb> ...)");
            return 2;
    }
}

var report = new Report();
var clock = Stopwatch.StartNew();
if (!CudaContext.IsAvailable(out var reason))
{
    Console.Error.WriteLine($"no GPU: {reason}");
    return 1;
}

if (tensorParallel > 1)
{
    var tp = new TensorParallelChecks(tensorParallel, report);
    Guarded(report, "NCCL", tp.Header);
    if (shapes is not null)
    {
        // --tp N --shapes: decode scaling over 1, 2, … N GPUs (ASPIREAI_CUDA_PTX_DIR for fresh PTX; every rank loads it).
        double copy;
        using (var gpu = new CudaBackend(ptxDirectory: ptxDirectory))
        {
            copy = new Benchmarks(gpu, report).CopyBandwidth();
        }

        var sizes = new[] { 1, 2, 4, 8 }.Where(n => n <= tensorParallel).ToArray();
        if (shapes.Contains("all") || shapes.Contains("8b-bf16"))
        {
            Guarded(report, "scaling Llama-3-8B BF16", () => tp.Scaling("Llama-3-8B", ModelShapes.Llama3_8B(1024), GgmlType.BF16, sizes, copy));
        }

        if (shapes.Contains("all") || shapes.Contains("70b-q8_0"))
        {
            Guarded(report, "scaling Llama-3-70B Q8_0", () => tp.Scaling("Llama-3-70B", ModelShapes.Llama3_70B(1024), GgmlType.Q8_0, [.. sizes.Where(n => n >= 2)], copy));
        }

        if (shapes.Contains("all") || shapes.Contains("70b-bf16"))
        {
            Guarded(report, "scaling Llama-3-70B BF16", () => tp.Scaling("Llama-3-70B", ModelShapes.Llama3_70B(1024), GgmlType.BF16, [.. sizes.Where(n => n >= 4)], copy));
        }

        report.Line($"total {clock.Elapsed.TotalSeconds:F0} s");
        report.Write(outDirectory);
        return report.Failed == 0 ? 0 : 1;
    }

    // --quick: the two small models of different families and the graph replays (tuning runs); the rest in full runs.
    if (!quick)
    {
        Guarded(report, "Llama-3.2-1B Q8_0", () => tp.Compare("Llama-3.2-1B", ModelShapes.Llama32_1B(1024), GgmlType.Q8_0));
    }

    Guarded(report, "Llama-3.2-1B BF16", () => tp.Compare("Llama-3.2-1B", ModelShapes.Llama32_1B(1024), GgmlType.BF16));
    Guarded(report, "Qwen3-0.6B F16", () => tp.Compare("Qwen3-0.6B", ModelShapes.Qwen3_06B(1024), GgmlType.F16));
    Guarded(report, "Llama-3.2-1B Q4_0", () => tp.Compare("Llama-3.2-1B", ModelShapes.Llama32_1B(1024), GgmlType.Q4_0));
    if (!quick)
    {
        Guarded(report, "Qwen2-0.5B Q8_0", () => tp.Compare("Qwen2-0.5B", ModelShapes.Qwen2_05B(1024), GgmlType.Q8_0));
        Guarded(report, "Llama-3-8B Q4_K", () => tp.Compare("Llama-3-8B", ModelShapes.Llama3_8B(1024), GgmlType.Q4_K));
    }

    Guarded(report, "graphs Llama-3.2-1B Q8_0", () => tp.GraphReplay("Llama-3.2-1B", ModelShapes.Llama32_1B(1024), GgmlType.Q8_0));
    Guarded(report, "graphs Qwen3-0.6B BF16", () => tp.GraphReplay("Qwen3-0.6B", ModelShapes.Qwen3_06B(1024), GgmlType.BF16));
    Guarded(report, "graphs Llama-3.2-1B BF16 one sequence", () => tp.GraphReplay("Llama-3.2-1B", ModelShapes.Llama32_1B(1024), GgmlType.BF16, sequences: 1));
    // An odd vocabulary, which no size divides: padded logit shards (ShardPlan.VocabularyShard), gathered without the
    // padding by NCCL's staging copies, eagerly and replayed.
    var oddVocabulary = ModelShapes.Llama32_1B(1024) with { VocabularySize = 128257 };
    Guarded(report, "Llama-3.2-1B vocabulary 128,257 BF16", () => tp.Compare("Llama-3.2-1B V128257", oddVocabulary, GgmlType.BF16));
    Guarded(report, "graphs Llama-3.2-1B vocabulary 128,257 Q8_0", () => tp.GraphReplay("Llama-3.2-1B V128257", oddVocabulary, GgmlType.Q8_0));
    if (!quick)
    {
        // Q8_0: random BF16 weights of 8B parameters take minutes to draw on the host (one normal deviate each).
        Guarded(report, "decode Llama-3-8B Q8_0", () => tp.Decode("Llama-3-8B", ModelShapes.Llama3_8B(1024), GgmlType.Q8_0));
    }

    report.Line($"total {clock.Elapsed.TotalSeconds:F0} s");
    report.Write(outDirectory);
    return report.Failed == 0 ? 0 : 1;
}

try
{
    using var gpu = new CudaBackend(ptxDirectory: ptxDirectory);
    using var cpu = new CpuBackend();
    var (free, total) = gpu.Context.MemoryInfo();
    var driver = CudaContext.DriverVersion;
    report.Line($"device: {gpu.Description}, {total / (1 << 20)} MiB ({free / (1 << 20)} MiB free), driver API {driver / 1000}.{driver % 1000 / 10}; PTX from {ptxDirectory ?? "embedded resources"}; CPU reference: {cpu.Description}");
    foreach (var kernel in gpu.Kernels.GemvKernels.Concat(gpu.Kernels.HalfGemmKernels).Concat([gpu.Kernels.GemmInt8, gpu.Kernels.GemmInt8TensorCore, gpu.Kernels.GemmNibbleTensorCore, gpu.Kernels.AttentionPartition, gpu.Kernels.SampleRows]))
    {
        report.Line($"     kernel {kernel.Name}: {kernel.Attribute(CudaFunctionAttribute.NumRegisters)} registers, {kernel.Attribute(CudaFunctionAttribute.LocalSizeBytes)} B local, {kernel.Attribute(CudaFunctionAttribute.SharedSizeBytes)} B static shared");
    }

    if (gemmBench)
    {
        Guarded(report, "F16/BF16 GEMMs", () => new Benchmarks(gpu, report).HalfGemms());
        if (shapes is null)
        {
            report.Write(outDirectory);
            return report.Failed == 0 ? 0 : 1;
        }
    }

    if (shapes is not null)
    {
        var copyBandwidth = new Benchmarks(gpu, report).CopyBandwidth();
        gpu.AttentionPolicy = attentionPolicy;
        if (attentionPolicy is { } policy)
        {
            report.Line($"     decode attention split policy {policy}");
        }

        var suite = new ShapeBenchmarks(gpu, report, gpu.ResolveKvCacheDtype(kvCacheDtype), copyBandwidth, omissions, besideFilter);
        (int, int)[] small = [(1, 128), (32, 128)];
        (int, int)[] large = [(1, 128), (32, 128), (64, 128), (256, 128), (1, 2048), (32, 2048), (1, 8192), (32, 8192)];
        var table = new (string Key, string Name, Func<int, ModelConfig> Shape, GgmlType Type, (int, int)[] Decode, int Prefill)[]
        {
            ("1b-bf16", "Llama-3.2-1B", ModelShapes.Llama32_1B, GgmlType.BF16, small, 0),
            ("1b-q8_0", "Llama-3.2-1B", ModelShapes.Llama32_1B, GgmlType.Q8_0, small, 0),
            ("qwen3-bf16", "Qwen3-0.6B", ModelShapes.Qwen3_06B, GgmlType.BF16, small, 0),
            ("8b-bf16", "Llama-3-8B", ModelShapes.Llama3_8B, GgmlType.BF16, large, 2048),
            ("8b-q8_0", "Llama-3-8B", ModelShapes.Llama3_8B, GgmlType.Q8_0, large, 2048),
            ("8b-q4_0", "Llama-3-8B", ModelShapes.Llama3_8B, GgmlType.Q4_0, [(1, 128), (32, 128)], 0),
            ("8b-q4_k", "Llama-3-8B", ModelShapes.Llama3_8B, GgmlType.Q4_K, [(1, 128), (32, 128)], 0),
            ("8b-q5_k", "Llama-3-8B", ModelShapes.Llama3_8B, GgmlType.Q5_K, [(1, 128), (32, 128)], 0),
            ("8b-q6_k", "Llama-3-8B", ModelShapes.Llama3_8B, GgmlType.Q6_K, [(1, 128), (32, 128)], 0),
        };
        foreach (var (key, name, shape, type, decode, prefill) in table)
        {
            if (shapes.Contains("all") || shapes.Contains(key))
            {
                Guarded(report, $"{name} {type}", () => suite.Run(name, shape(8192 + 256), type, decodeOnly ?? decode, decodeOnly is null ? prefill : 0));
            }
        }

        report.Line($"total {clock.Elapsed.TotalSeconds:F0} s");
        report.Write(outDirectory);
        return report.Failed == 0 ? 0 : 1;
    }

    if (onlyBig)
    {
        var only = new EngineChecks(gpu, cpu, report);
        report.Line("==== Llama-3-8B shapes");
        Guarded(report, "Llama-3-8B Q4_K", () => only.RandomModel("Llama-3-8B", ModelShapes.Llama3_8B(4096), GgmlType.Q4_K));
        Guarded(report, "Llama-3-8B Q8_0", () => only.RandomModel("Llama-3-8B", ModelShapes.Llama3_8B(4096), GgmlType.Q8_0));
        report.Line($"total {clock.Elapsed.TotalSeconds:F0} s");
        report.Write(outDirectory);
        return report.Failed == 0 ? 0 : 1;
    }

    if (onlyBench)
    {
        // Timings alone (kernels and decode), for tuning runs: the checks above are the proof and run in full elsewhere.
        var benchmarks = new Benchmarks(gpu, report);
        Guarded(report, "kernel timings", () => benchmarks.Run(quick));
        Guarded(report, "decode Llama-3.2-1B Q8_0", () => benchmarks.Decode("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.Q8_0, [1, 32]));
        Guarded(report, "decode Llama-3.2-1B BF16", () => benchmarks.Decode("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.BF16, [1]));
        if (big)
        {
            Guarded(report, "decode Llama-3-8B Q8_0", () => benchmarks.Decode("Llama-3-8B", ModelShapes.Llama3_8B(4096), GgmlType.Q8_0, [1, 32]));
        }

        report.Line($"total {clock.Elapsed.TotalSeconds:F0} s");
        report.Write(outDirectory);
        return report.Failed == 0 ? 0 : 1;
    }

    report.Line("==== kernels against the CPU backend");
    new KernelChecks(gpu, cpu, report, quick).Run();
    report.Line($"     ({clock.Elapsed.TotalSeconds:F0} s)");

    report.Line("==== whole engine against the CPU backend");
    var engine = new EngineChecks(gpu, cpu, report);
    foreach (var model in models)
    {
        engine.RealModel(model, "Once upon a time", quick ? 12 : 40);
        Guarded(report, $"seeded sampling {Path.GetFileName(model)}", () => engine.SeededSampling(model, "Once upon a time", quick ? 12 : 40));
    }

    // Last of the quick engine checks: a kernel that traps (its barrier watchdog) leaves the context unusable.
    foreach (var (name, config) in EngineChecks.PersistentDecodeShapes())
    {
        Guarded(report, $"{name} persistent decode", () => engine.PersistentDecode(name, config));
    }

    if (!quick)
    {
        var cases = new List<(string Name, ModelConfig Config, GgmlType Type)>
        {
            ("Qwen3-0.6B", ModelShapes.Qwen3_06B(4096), GgmlType.Q8_0),
            ("Qwen3-0.6B", ModelShapes.Qwen3_06B(4096), GgmlType.F16),
            ("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.Q4_0),
            ("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.Q8_0),
            ("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.Q4_K),
            ("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.Q6_K),
            ("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.BF16),
            ("Qwen2-0.5B", ModelShapes.Qwen2_05B(4096), GgmlType.Q5_0),
        };
        foreach (var (name, config, type) in cases)
        {
            Guarded(report, $"{name} {type}", () => engine.RandomModel(name, config, type));
        }

        // A prefill of 90 + 50 tokens: half weights through the prefill GEMMs (wgmma on Hopper: gated gate/up, grouped q/k/v).
        foreach (var (name, config, type) in new[] { ("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.BF16), ("Qwen3-0.6B", ModelShapes.Qwen3_06B(4096), GgmlType.F16) })
        {
            Guarded(report, $"{name} {type} long prefill", () => engine.RandomModel(name, config, type, [90, 50]));
        }
    }

    report.Line($"     ({clock.Elapsed.TotalSeconds:F0} s)");
    report.Line("==== KV offload tier (pinned host memory) against the CPU backend");
    var offload = new OffloadChecks(gpu, cpu, report);
    Guarded(report, "offload round trip", offload.RoundTrip);
    if (!quick) // the engine scenarios run four engines each: too long under compute-sanitizer
    {
        foreach (var model in models)
        {
            Guarded(report, $"offload scenario {Path.GetFileName(model)}", () =>
            {
                using var file = GgufFile.Open(model);
                offload.EngineScenario(Path.GetFileName(model), file, exactTokens: true);
            });
        }

        Guarded(report, "offload scenario Qwen3-0.6B", () =>
        {
            using var source = new RandomModel("Qwen3-0.6B", ModelShapes.Qwen3_06B(256), GgmlType.Q8_0, 61);
            offload.EngineScenario("Qwen3-0.6B Q8_0 (random, context 256)", source, exactTokens: false);
        });
    }

    report.Line($"     ({clock.Elapsed.TotalSeconds:F0} s)");
    if (bench)
    {
        report.Line("==== timings");
        var benchmarks = new Benchmarks(gpu, report);
        Guarded(report, "kernel timings", () => benchmarks.Run(quick));
        Guarded(report, "decode Llama-3.2-1B Q8_0", () => benchmarks.Decode("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.Q8_0, [1, 32]));
        if (!quick)
        {
            Guarded(report, "decode Llama-3.2-1B Q4_0", () => benchmarks.Decode("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.Q4_0, [1, 32]));
            Guarded(report, "decode Qwen3-0.6B Q8_0", () => benchmarks.Decode("Qwen3-0.6B", ModelShapes.Qwen3_06B(4096), GgmlType.Q8_0, [1, 32]));
            Guarded(report, "decode Llama-3.2-1B BF16", () => benchmarks.Decode("Llama-3.2-1B", ModelShapes.Llama32_1B(4096), GgmlType.BF16, [1, 8]));
        }
    }

    // Last, as the largest: Llama-3-8B shapes against the CPU, then its decode speed.
    if (big)
    {
        report.Line("==== Llama-3-8B shapes");
        Guarded(report, "Llama-3-8B Q4_K", () => engine.RandomModel("Llama-3-8B", ModelShapes.Llama3_8B(4096), GgmlType.Q4_K));
        Guarded(report, "decode Llama-3-8B Q8_0", () => new Benchmarks(gpu, report).Decode("Llama-3-8B", ModelShapes.Llama3_8B(4096), GgmlType.Q8_0, [1, 32]));
        Guarded(report, "decode Llama-3-8B Q4_0", () => new Benchmarks(gpu, report).Decode("Llama-3-8B", ModelShapes.Llama3_8B(4096), GgmlType.Q4_0, [1, 32]));
    }
}
catch (Exception e)
{
    report.Fail("GpuCheck", e.ToString());
}

report.Line($"total {clock.Elapsed.TotalSeconds:F0} s");
report.Write(outDirectory);
return report.Failed == 0 ? 0 : 1;

// One section's failure is reported and the run goes on to the next.
static void Guarded(Report report, string what, Action section)
{
    try
    {
        section();
    }
    catch (Exception e) when (e is not OutOfMemoryException)
    {
        report.Fail(what, e.ToString());
    }
}
