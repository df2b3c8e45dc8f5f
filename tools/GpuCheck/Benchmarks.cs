using System.Diagnostics;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Backends.Sampling;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Synthetic;

namespace AspireAi.GpuCheck;

/// <summary>
/// Per-kernel timings with CUDA events (warm-up first, median of many runs, inputs rotated through more memory than the
/// L2 cache holds where the input would fit in it), as achieved bandwidth or FLOP/s against the device-to-device copy
/// bandwidth measured here; then end-to-end decode tokens/s.
/// </summary>
internal sealed class Benchmarks(CudaBackend gpu, Report report)
{
    private const int Runs = 50;
    private readonly Random _random = new(7);
    private double _copyBandwidth;

    public void Run(bool quick)
    {
        _ = CopyBandwidth();
        GemvAndGemm(quick);
        AttentionDecode();
        ElementWise();
        Sampling();
    }

    /// <summary>Median milliseconds of <paramref name="runs"/> timed calls of <paramref name="work"/> (i = run index).</summary>
    private double Time(Action<int> work, int runs = Runs)
    {
        using var start = new CudaEvent(gpu.Context);
        using var stop = new CudaEvent(gpu.Context);
        for (var i = 0; i < 3; i++)
        {
            work(i);
        }

        var times = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            start.Record(gpu.Stream);
            work(i);
            stop.Record(gpu.Stream);
            stop.Synchronize();
            times[i] = stop.ElapsedSince(start);
        }

        Array.Sort(times);
        return times[runs / 2];
    }

    public double CopyBandwidth()
    {
        const long bytes = 1L << 30;
        using var a = new CudaDeviceBuffer<byte>(gpu.Context, bytes);
        using var b = new CudaDeviceBuffer<byte>(gpu.Context, bytes);
        a.Fill(gpu.Stream, 0x3F800000);
        var ms = Time(_ => a.CopyTo(gpu.Stream, b), 20);
        _copyBandwidth = 2.0 * bytes / (ms * 1e-3) / 1e9;
        report.Timing($"device-to-device copy 1 GiB: {ms:F3} ms, {_copyBandwidth:F0} GB/s (read + write) = the bandwidth ceiling below");
        return _copyBandwidth;
    }

    private string OfCeiling(double gbPerSecond) => $"{gbPerSecond:F0} GB/s ({100 * gbPerSecond / _copyBandwidth:F0}% of copy)";

    private void GemvAndGemm(bool quick)
    {
        var shapes = quick ? new[] { (4096, 4096) } : new[] { (4096, 4096), (14336, 4096), (4096, 14336) };
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.F16, GgmlType.BF16 })
        {
            foreach (var (n, k) in shapes)
            {
                // Copies enough to exceed the 50 MB L2 cache, used in turn.
                using var host = new HostTensor("w", type, [k, n], RandomWeights.Tensor(type, n, k, _random.Next()));
                var first = gpu.LoadWeight(host.View);
                var copies = (int)Math.Max(1, Math.Ceiling(150e6 / first.ByteSize));
                var weights = new List<DeviceWeight> { first };
                for (var i = 1; i < copies; i++)
                {
                    weights.Add(gpu.LoadWeight(host.View));
                }

                // Batches of 64 and 256 and a 2048-token prefill only for the half types, whose GEMM is the prefill's.
                var half = type is GgmlType.F16 or GgmlType.BF16;
                foreach (var rows in new[] { 1, 8, 16, 32, 64, 256, 512, 2048 })
                {
                    if (rows == 512 && n != 4096 || quick && rows is > 1 and < 512 || rows is 16 && n != 4096
                        || rows is 64 or 256 or 2048 && (!half || quick && rows != 2048))
                    {
                        continue;
                    }

                    using var x = gpu.CreateTensor(rows, k);
                    using var y = gpu.CreateTensor(rows, n);
                    gpu.WriteRows(x, RandomWeights.Floats(rows * k, _random));
                    // Quantize the activations once (as the forward pass does for q, k and v together), then time the matmul.
                    gpu.MatMul(x, first, y, rows);
                    var ms = Time(i => gpu.MatMul(x, weights[i % weights.Count], y, rows));
                    var flops = 2.0 * rows * n * k / (ms * 1e-3);
                    var bytes = first.ByteSize + (long)rows * (k + n) * 4;
                    var tensorCore = gpu.Kernels.TensorCoreGemm((CudaWeight)first) is not null;
                    var path = CudaLaunchGeometry.UseGemv(rows, type is not (GgmlType.F16 or GgmlType.BF16), tensorCore) ? "gemv" : tensorCore ? "gemm-tc" : "gemm";
                    report.Timing($"matmul {type,-5} {path} M={rows,-3} N={n} K={k}: {ms * 1000,8:F1} us, {OfCeiling(bytes / (ms * 1e-3) / 1e9)}, {flops / 1e12:F2} TFLOP/s");
                    if (half && rows >= 32)
                    {
                        // Every tile variant of gemm_half_tc at this size, for choosing CudaLaunchGeometry.HalfGemmRows.
                        foreach (var tileRows in CudaLaunchGeometry.HalfGemmTileRows)
                        {
                            gpu.HalfGemmTileRowsOverride = tileRows;
                            var variant = Time(i => gpu.MatMul(x, weights[i % weights.Count], y, rows));
                            report.Timing($"matmul {type,-5} gemm-tc tile 128×{tileRows} M={rows,-3} N={n} K={k}: {variant * 1000,8:F1} us, {2.0 * rows * n * k / (variant * 1e-3) / 1e12:F2} TFLOP/s");
                        }

                        gpu.HalfGemmTileRowsOverride = null;
                        // And every tile of the Hopper GEMM (wgmma), for choosing CudaLaunchGeometry.WarpgroupGemmTile.
                        foreach (var tile in gpu.Kernels.HasWarpgroupGemm && k % CudaLaunchGeometry.WarpgroupGemmStageColumns == 0 ? CudaLaunchGeometry.WarpgroupGemmTiles : [])
                        {
                            gpu.WarpgroupGemmOverride = tile;
                            var variant = Time(i => gpu.MatMul(x, weights[i % weights.Count], y, rows));
                            var splits = CudaLaunchGeometry.WarpgroupGemmSplits(rows, n, k, gpu.Context.MultiprocessorCount, tile);
                            report.Timing($"matmul {type,-5} gemm-wgmma tile {tile} ({splits} split) M={rows,-3} N={n} K={k}: {variant * 1000,8:F1} us, {2.0 * rows * n * k / (variant * 1e-3) / 1e12:F2} TFLOP/s");
                        }

                        gpu.WarpgroupGemmOverride = null;
                    }
                }

                foreach (var w in weights)
                {
                    w.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// The F16/BF16 GEMMs alone, for choosing between gemm_half_tc and the Hopper GEMM and the latter's tile width: BF16 at
    /// Llama-3-8B's product shapes (q/o, k/v, gate/up, down) for decode batches and a prefill, each as the backend chooses,
    /// on gemm_half_tc, and on each Hopper tile (its split count as WarpgroupGemmSplits gives it). Weights rotated through
    /// more than L2 holds, as in GemvAndGemm.
    /// </summary>
    public void HalfGemms()
    {
        foreach (var (n, k) in new[] { (4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336) })
        {
            using var host = new HostTensor("w", GgmlType.BF16, [k, n], RandomWeights.Tensor(GgmlType.BF16, n, k, _random.Next()));
            var weights = new List<DeviceWeight> { gpu.LoadWeight(host.View) };
            while (weights.Count * weights[0].ByteSize < 150e6)
            {
                weights.Add(gpu.LoadWeight(host.View));
            }

            foreach (var rows in new[] { 64, 128, 256, 512, 2048 })
            {
                using var x = gpu.CreateTensor(rows, k);
                using var y = gpu.CreateTensor(rows, n);
                gpu.WriteRows(x, RandomWeights.Floats(rows * k, _random));
                var variants = new List<(string Label, WarpgroupTile? Override)> { ("as chosen", null), ("gemm_half_tc", WarpgroupTile.None) };
                if (gpu.Kernels.HasWarpgroupGemm)
                {
                    variants.AddRange(CudaLaunchGeometry.WarpgroupGemmTiles.Select(t =>
                        ($"wgmma {t}, {CudaLaunchGeometry.WarpgroupGemmSplits(rows, n, k, gpu.Context.MultiprocessorCount, t)} split", (WarpgroupTile?)t)));
                }

                var line = new List<string>();
                foreach (var (label, forced) in variants)
                {
                    gpu.WarpgroupGemmOverride = forced;
                    var ms = Time(i => gpu.MatMul(x, weights[i % weights.Count], y, rows));
                    line.Add($"{label} {ms * 1000:F1} us = {2.0 * rows * n * k / (ms * 1e-3) / 1e12:F0} TFLOP/s");
                }

                gpu.WarpgroupGemmOverride = null;
                report.Timing($"gemm BF16 M={rows,-4} N={n,-5} K={k,-5}: {string.Join("; ", line)}");
            }

            foreach (var w in weights)
            {
                w.Dispose();
            }
        }
    }

    private void AttentionDecode()
    {
        // Llama-3-8B attention (32 query heads, 8 KV heads of 128) at batch 1 and 32 and the issue's contexts (129: a
        // 128-token prompt's first decode), each under the default split policy and a few others side by side, for choosing
        // AttentionSplitPolicy.Default; then Qwen3-0.6B's (16/8 × 128) at 256 sequences, the nano-vllm workload's decode.
        // Both cache types: f16 (CUDA's default) and float32.
        AttentionSplitPolicy[] policies =
        [
            AttentionSplitPolicy.Default,
            AttentionSplitPolicy.TensorCore,
            AttentionSplitPolicy.Default with { UnsplitContext = 256 },
            AttentionSplitPolicy.Default with { UnsplitContext = 512 },
            AttentionSplitPolicy.Default with { MinPartition = 128 },
            AttentionSplitPolicy.Default with { MinPartition = 256 },
            AttentionSplitPolicy.Default with { MinPartition = 512 },
            AttentionSplitPolicy.Default with { BlocksPerMultiprocessor = 2 },
            AttentionSplitPolicy.Default with { BlocksPerMultiprocessor = 2, MinPartition = 256 },
            AttentionSplitPolicy.Default with { BlocksPerMultiprocessor = 8 },
        ];
        var cases = new (int Heads, int Batch, int Context)[] { (32, 1, 129), (32, 1, 2048), (32, 1, 8192), (32, 32, 2048), (32, 32, 8192), (16, 256, 1024) };
        foreach (var dtype in new[] { KvCacheDtype.Float16, KvCacheDtype.Float32 })
        {
            foreach (var (heads, batchSize, context) in cases)
            {
                const int kvHeads = 8, headDim = 128, blockSize = 16;
                var blocksPerSequence = context / blockSize + 1;
                var shape = new KvCacheShape(1, kvHeads, headDim, blockSize, blocksPerSequence * batchSize) { Dtype = dtype };
                using var cache = gpu.CreateKvCache(shape);
                var batch = new ForwardBatch(batchSize, batchSize, blocksPerSequence);
                for (var s = 0; s < batchSize; s++)
                {
                    var table = Enumerable.Range(s * blocksPerSequence, blocksPerSequence).ToArray();
                    batch.AddSequence(table);
                    batch.AddToken(0, context - 1, s, table[(context - 1) / blockSize] * blockSize + (context - 1) % blockSize, true);
                }

                gpu.BeginBatch(batch);
                using var q = gpu.CreateTensor(batchSize, heads * headDim);
                using var o = gpu.CreateTensor(batchSize, heads * headDim);
                gpu.WriteRows(q, RandomWeights.Floats(batchSize * heads * headDim, _random));
                var bytes = 2.0 * batchSize * context * kvHeads * headDim * dtype.ElementBytes();
                foreach (var policy in batchSize == 256 ? [AttentionSplitPolicy.Default] : policies)
                {
                    gpu.AttentionPolicy = policy;
                    var ms = Time(_ => gpu.PagedAttention(q, cache, 0, o));
                    var (partition, splits) = CudaLaunchGeometry.AttentionSplit(batchSize, kvHeads, context, gpu.Context.MultiprocessorCount, policy);
                    report.Timing($"attention decode batch {batchSize,3} context {context,5} ({heads}/{kvHeads}×{headDim}, {dtype.Name()} KV, {splits} splits of {partition}; {policy}): {ms * 1000,8:F1} us, {OfCeiling(bytes / (ms * 1e-3) / 1e9)}");
                }

                gpu.AttentionPolicy = null;
            }
        }
    }

    private void ElementWise()
    {
        const int rows = 512, columns = 14336;
        using var a = gpu.CreateTensor(rows, columns);
        using var b = gpu.CreateTensor(rows, columns);
        using var c = gpu.CreateTensor(rows, columns);
        gpu.WriteRows(a, RandomWeights.Floats(rows * columns, _random));
        gpu.WriteRows(b, RandomWeights.Floats(rows * columns, _random));
        var ms = Time(_ => gpu.SiluMul(a, b, c, rows));
        report.Timing($"silu·mul {rows} × {columns}: {ms * 1000,8:F1} us, {OfCeiling(3.0 * rows * columns * 4 / (ms * 1e-3) / 1e9)}");
        var normBytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(RandomWeights.Floats(4096, _random, 0.1, 1).AsSpan()).ToArray();
        using var normHost = new HostTensor("norm", GgmlType.F32, [4096], normBytes);
        using var norm = gpu.LoadWeight(normHost.View);
        using var x = gpu.CreateTensor(4096, 4096);
        using var d = gpu.CreateTensor(4096, 4096);
        using var y = gpu.CreateTensor(4096, 4096);
        gpu.WriteRows(x, RandomWeights.Floats(4096 * 4096, _random));
        gpu.WriteRows(d, RandomWeights.Floats(4096 * 4096, _random));
        ms = Time(_ => gpu.AddRmsNorm(x, d, norm, 1e-5f, y, 4096));
        report.Timing($"add+rmsnorm 4096 × 4096: {ms * 1000,8:F1} us, {OfCeiling(4.0 * 4096 * 4096 * 4 / (ms * 1e-3) / 1e9)}");
    }

    /// <summary>
    /// Decode tokens/s of a random-weight model: each of <paramref name="batchSize"/> sequences prefilled with
    /// <paramref name="prompt"/> tokens, then <paramref name="steps"/> steps of one token each, greedy on the device (only
    /// ids come back), eagerly and, at batch 1, as a replayed CUDA graph; and with the logits copied to the host.
    /// </summary>
    /// <summary>
    /// A step's token choice for 32 rows of a 128,256-token vocabulary (logits normal(0, 2) with a few 8–14 above): argmax_rows,
    /// and sample_rows with every row at temperature 0.8 alone, with top-k 50 + top-p 0.9, and with top-p 0.9 plus penalty
    /// lists of 2,000 tokens — uploads, launch and the ids' copy back included, as the engine pays them.
    /// </summary>
    private void Sampling()
    {
        const int rows = 32, vocabulary = 128256;
        var values = RandomWeights.Floats(rows * vocabulary, _random, 2);
        for (var i = 0; i < rows * 6; i++)
        {
            values[i / 6 * vocabulary + _random.Next(vocabulary)] += 8 + 6 * (float)_random.NextDouble();
        }

        using var logits = gpu.CreateTensor(rows, vocabulary);
        gpu.WriteRows(logits, values);
        var ids = new int[rows];
        report.Timing($"argmax_rows {rows} × {vocabulary}: {Time(_ => gpu.ArgMax(logits, rows, ids)):F3} ms");
        var penalties = Enumerable.Range(0, rows * 2000).Select(i => new TokenPenalty(i % 2000 * 61, i % 3)).ToArray();
        var cases = new (string Name, SamplingRow Row, bool Penalised)[]
        {
            ("T 0.8", new(0.8f, 0, 1, 0, 1, 0, 0, 0, 0, 0.5), false),
            ("T 0.8 top-k 50 top-p 0.9", new(0.8f, 50, 0.9f, 0, 1, 0, 0, 0, 0, 0.5), false),
            ("T 0.8 top-p 0.9, 2,000 penalised tokens a row", new(0.8f, 0, 0.9f, 0, 1.1f, 0.2f, 0.2f, 0, 2000, 0.5), true),
        };
        foreach (var (name, row, penalised) in cases)
        {
            var samplingRows = Enumerable.Range(0, rows).Select(r => penalised ? row with { PenaltyStart = 2000 * r } : row).ToArray();
            var ms = Time(_ => gpu.Sample(logits, samplingRows, penalised ? penalties : [], ids));
            report.Timing($"sample_rows {rows} × {vocabulary}, {name}: {ms:F3} ms");
        }
    }

    public void Decode(string name, ModelConfig config, GgmlType type, int[] batchSizes, int prompt = 128, int steps = 64)
    {
        using var source = new RandomModel(name, config, type, 99);
        var maxBatch = batchSizes.Max();
        using var model = new LlamaModel(source, gpu, Math.Max(prompt, maxBatch), maxBatch);
        const int blockSize = 16;
        var blocksPerSequence = (prompt + steps + 2 * blockSize) / blockSize;
        using var cache = gpu.CreateKvCache(model.KvCacheShape(blockSize, blocksPerSequence * maxBatch));
        var ids = new int[maxBatch];
        report.Line($"---- decode {name} {type}: {model.WeightBytesPerStep / 1e9:F2} GB of weights per step");
        foreach (var batchSize in batchSizes)
        {
            var tables = Enumerable.Range(0, batchSize).Select(s => Enumerable.Range(s * blocksPerSequence, blocksPerSequence).ToArray()).ToArray();
            var batch = new ForwardBatch(Math.Max(prompt, batchSize), batchSize, blocksPerSequence);
            int Slot(int s, int p) => tables[s][p / blockSize] * blockSize + p % blockSize;
            for (var s = 0; s < batchSize; s++)
            {
                batch.Clear();
                batch.AddSequence(tables[s]);
                for (var p = 0; p < prompt; p++)
                {
                    batch.AddToken(_random.Next(config.VocabularySize), p, 0, Slot(s, p), p == prompt - 1);
                }

                model.ForwardToLogits(batch, cache);
            }

            void DecodeBatch(int position)
            {
                batch.Clear();
                for (var s = 0; s < batchSize; s++)
                {
                    batch.AddSequence(tables[s]);
                }

                for (var s = 0; s < batchSize; s++)
                {
                    batch.AddToken(ids[s], position, s, Slot(s, position), true);
                }
            }

            // Eager: launches from the host each step; greedy on the device.
            Array.Fill(ids, 1);
            DecodeBatch(prompt);
            gpu.ArgMax(model.ForwardToLogits(batch, cache)!, batchSize, ids);
            gpu.Context.Synchronize();
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < steps; i++)
            {
                DecodeBatch(prompt + 1 + i % (steps / 2));
                gpu.ArgMax(model.ForwardToLogits(batch, cache)!, batchSize, ids);
            }

            var eager = batchSize * steps / clock.Elapsed.TotalSeconds;
            var stepMs = clock.Elapsed.TotalMilliseconds / steps;
            report.Timing($"decode {name} {type} batch {batchSize,2}: {eager,8:F1} tokens/s ({stepMs:F2} ms/step, {model.WeightBytesPerStep / (stepMs * 1e-3) / 1e9:F0} GB/s of weights), eager launches, greedy on the GPU");

            // Where a step's GPU time goes: every launch timed with events (a few more eager steps).
            using (var timer = new KernelTimer(gpu.Context))
            {
                const int profiled = 8;
                gpu.Stream.Timer = timer;
                for (var i = 0; i < profiled; i++)
                {
                    DecodeBatch(prompt + 1 + i);
                    gpu.ArgMax(model.ForwardToLogits(batch, cache)!, batchSize, ids);
                }

                gpu.Stream.Timer = null;
                var kernels = timer.Collect();
                var kernelMs = kernels.Sum(k => k.Milliseconds) / profiled;
                report.Timing($"  profile: kernels run {kernelMs:F3} ms of the {stepMs:F3} ms eager step ({kernels.Sum(k => k.Launches) / profiled} launches)");
                foreach (var (kernel, launches, ms) in kernels)
                {
                    report.Timing($"    {kernel,-26} {launches / profiled,4} launches {ms / profiled * 1000,9:F1} us {100 * ms / profiled / kernelMs,5:F1}%");
                }
            }

            // Logits to the host each step (LlamaModel.Forward) and argmax there.
            var logits = new float[batchSize * config.VocabularySize];
            clock.Restart();
            for (var i = 0; i < steps; i++)
            {
                DecodeBatch(prompt + 1 + i % (steps / 2));
                model.Forward(batch, cache, logits);
                for (var s = 0; s < batchSize; s++)
                {
                    ids[s] = AspireAi.Inference.Engine.Sampler.ArgMax(logits.AsSpan(s * config.VocabularySize, config.VocabularySize));
                }
            }

            report.Timing($"decode {name} {type} batch {batchSize,2}: {batchSize * steps / clock.Elapsed.TotalSeconds,8:F1} tokens/s with logits copied to the host");

            // A captured graph of the step, replayed: the same positions each step, so the launch shapes stay fixed.
            DecodeBatch(prompt + 1);
            model.ForwardToLogits(batch, cache);
            using (var graph = model.CaptureStep(batch, cache))
            {
                gpu.Context.Synchronize();
                clock.Restart();
                for (var i = 0; i < steps; i++)
                {
                    gpu.ArgMax(graph.Replay(batch)!, batchSize, ids);
                }
            }

            report.Timing($"decode {name} {type} batch {batchSize,2}: {batchSize * steps / clock.Elapsed.TotalSeconds,8:F1} tokens/s as a replayed CUDA graph, greedy on the GPU");
        }
    }
}
