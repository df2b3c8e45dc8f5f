using System.Runtime.InteropServices;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;

namespace AspireAi.GpuCheck;

/// <summary>
/// The KV offload tier on the GPU: a block's round trip device → pinned host → device (bytes compared, ordered with other
/// work on the stream), and the serving engine's offload scenario on the GPU against itself and against the CPU backend.
/// </summary>
/// <param name="device">The backend under test (the CUDA backend; any backend runs the engine scenario).</param>
internal sealed class OffloadChecks(IBackend device, CpuBackend cpu, Report report)
{
    /// <summary>NaN as cuMemsetD32 writes it.</summary>
    private const uint Poison = 0x7fc00000;

    /// <summary>
    /// Random keys/values in every block; block <c>source</c> goes to a host slot, then the whole cache is poisoned on the
    /// same stream (the copy must have read the block before), then the slot comes back into block <c>target</c>: that block
    /// must hold the source block's bytes exactly, every other one the poison. Float32 and f16 caches: the tier copies bytes,
    /// so the check compares 32-bit words (one float, or two halves).
    /// </summary>
    public void RoundTrip()
    {
        var gpu = (CudaBackend)device;
        KvCacheShape[] shapes =
        [
            new(Layers: 4, KvHeads: 8, HeadDim: 64, BlockSize: 16, BlockCount: 12), new(2, 2, 128, 32, 5), new(28, 8, 128, 16, 4),
            new(4, 8, 64, 16, 12, KvCacheDtype.Float16), new(28, 8, 128, 16, 4, KvCacheDtype.Float16),
        ];
        foreach (var shape in shapes)
        {
            using var cache = (CudaKvCache)gpu.CreateKvCache(shape);
            using var store = gpu.CreateKvOffloadStore(shape, 3);
            var words = (int)(shape.BlockCount * shape.BytesPerLayerBlock / sizeof(uint));
            var blockWords = (int)(shape.BytesPerLayerBlock / sizeof(uint));
            var random = new Random(shape.Layers * 31 + shape.BlockSize);
            var original = new uint[2 * shape.Layers][];
            for (var i = 0; i < original.Length; i++)
            {
                original[i] = Enumerable.Range(0, words).Select(_ => BitConverter.SingleToUInt32Bits(random.NextSingle() * 2 - 1)).ToArray();
                Buffer(cache, i).CopyFrom(gpu.Stream, MemoryMarshal.AsBytes(original[i].AsSpan()));
            }

            int source = shape.BlockCount - 1, target = 1, slot = 2;
            gpu.CopyKvBlockToHost(cache, source, store, slot);
            for (var i = 0; i < original.Length; i++)
            {
                Buffer(cache, i).Fill(gpu.Stream, Poison);
            }

            gpu.CopyKvBlockFromHost(store, slot, cache, target);
            var wrong = 0L;
            var back = new uint[words];
            for (var i = 0; i < original.Length; i++)
            {
                Buffer(cache, i).CopyTo(gpu.Stream, MemoryMarshal.AsBytes(back.AsSpan())); // waits for the stream
                for (var w = 0; w < words; w++)
                {
                    var block = w / blockWords;
                    var expected = block == target ? original[i][source * blockWords + w % blockWords] : Poison;
                    wrong += back[w] == expected ? 0 : 1;
                }
            }

            var what = $"offload round trip, {shape.Dtype.Name()} cache, {shape.Layers} layers × {shape.KvHeads}×{shape.HeadDim} × {shape.BlockSize}-token blocks: block {source} → pinned slot {slot} → block {target}";
            if (wrong == 0)
            {
                report.Pass(what + ", bytes identical");
            }
            else
            {
                report.Fail(what, $"{wrong:N0} of {(long)words * original.Length:N0} 32-bit words differ from the expected bytes");
            }
        }
    }

    private static Inference.Backends.Cuda.Driver.CudaDeviceBuffer<byte> Buffer(CudaKvCache cache, int i) =>
        i % 2 == 0 ? cache.Keys(i / 2) : cache.Values(i / 2);

    private sealed record Outcome(int[] Tokens, float[] Logprobs, int CachedTokens);

    private sealed record Scenario(Outcome Again, long OffloadHits, long Stored, bool AllFree);

    /// <summary>
    /// The engine test's scenario (tests/…/KvOffloadEngineTests): a 64-token prefix is computed, evicted from a one-context
    /// device cache by other traffic into the host tier, and asked for again. On the GPU the tiered run must give the roomy
    /// run's (prefix never evicted) tokens and logprobs bit for bit and the untiered run's tokens; against the CPU backend's
    /// tiered run the tokens must agree (<paramref name="exactTokens"/>: a real model's greedy text; a random model's near-ties
    /// may flip, so its agreement is only reported) and the logprobs be close.
    /// </summary>
    public void EngineScenario(string name, IModelSource source, bool exactTokens)
    {
        var config = source.Config;
        const int blockSize = 16;
        var cacheBlocks = (config.ContextLength + blockSize - 1) / blockSize;
        var random = new Random(17);
        int Token() => 3 + random.Next(Math.Min(config.VocabularySize, 10_000) - 3);
        var prefix = Enumerable.Range(0, 64).Select(_ => Token()).ToArray();
        var first = new EngineRequest { PromptTokenIds = [.. prefix, Token(), Token()], MaxTokens = 4, Sampling = SamplingParams.Greedy };
        var traffic = new EngineRequest { PromptTokenIds = [.. Enumerable.Range(0, config.ContextLength - 24).Select(_ => Token())], MaxTokens = 20, Sampling = SamplingParams.Greedy };
        var again = new EngineRequest { PromptTokenIds = [.. prefix, Token(), Token(), Token()], MaxTokens = 12, Logprobs = true, Sampling = SamplingParams.Greedy };
        var small = new EngineOptions { BlockSize = blockSize, KvCacheBlocks = cacheBlocks, MaxBatchedTokens = 64, MaxNumSeqs = 4 };

        var tiered = Run(device, source, small with { KvOffloadBlocks = 64 }, first, traffic, again);
        var roomy = Run(device, source, small with { KvCacheBlocks = 4 * cacheBlocks }, first, traffic, again);
        var untiered = Run(device, source, small, first, traffic, again);
        var cpuTiered = Run(cpu, source, small with { KvOffloadBlocks = 64 }, first, traffic, again);
        var label = $"{name} offload scenario";

        Expect($"{label}: GPU prefix came back from the host (64 offload hit tokens, {tiered.Stored} blocks stored, cached_tokens {tiered.Again.CachedTokens})",
            tiered.OffloadHits == 64 && tiered.Again.CachedTokens == 64, $"offload hits {tiered.OffloadHits}, cached {tiered.Again.CachedTokens}");
        Expect($"{label}: GPU every block free afterwards", tiered.AllFree && roomy.AllFree && untiered.AllFree, "blocks still held");
        Expect($"{label}: GPU tiered = prefix kept on the device, tokens and logprobs bit for bit",
            tiered.Again.Tokens.SequenceEqual(roomy.Again.Tokens)
            && tiered.Again.Logprobs.Select(BitConverter.SingleToInt32Bits).SequenceEqual(roomy.Again.Logprobs.Select(BitConverter.SingleToInt32Bits)),
            $"tiered [{string.Join(",", tiered.Again.Tokens)}] roomy [{string.Join(",", roomy.Again.Tokens)}]");
        Expect($"{label}: CPU prefix came back from the host too", cpuTiered.OffloadHits == 64 && cpuTiered.AllFree, $"offload hits {cpuTiered.OffloadHits}");

        var agreeUntiered = Agreement(tiered.Again.Tokens, untiered.Again.Tokens);
        var agreeCpu = Agreement(tiered.Again.Tokens, cpuTiered.Again.Tokens);
        if (exactTokens)
        {
            Expect($"{label}: GPU tiered tokens = GPU recomputed tokens", agreeUntiered == again.MaxTokens, $"agree on {agreeUntiered} of {again.MaxTokens}");
            Expect($"{label}: GPU tiered tokens = CPU tiered tokens", agreeCpu == again.MaxTokens, $"agree on {agreeCpu} of {again.MaxTokens}");
        }
        else
        {
            report.Line($"     {label}: leading tokens agree, GPU tiered vs recomputed {agreeUntiered}/{again.MaxTokens}, vs CPU tiered {agreeCpu}/{again.MaxTokens}");
        }

        // Logprobs of the tokens both chose, while they agree (after a difference the contexts differ): reported, not bounded
        // here. How close GPU and CPU numbers must be is the engine checks' job, with a bound calibrated per model and type;
        // a fixed 1e-2 on a dozen near-zero logprobs of a confident model failed at 1.8e-2 (H200, 2026-11-26) while those
        // checks passed. This scenario's claims are the bit-identity and token agreement above.
        if (agreeCpu > 0)
        {
            report.Line($"     {label}: logprobs of {agreeCpu} tokens, GPU vs CPU rel.err {Report.RelativeError(tiered.Again.Logprobs, cpuTiered.Again.Logprobs, agreeCpu):E2}");
        }
    }

    private void Expect(string what, bool ok, string why)
    {
        if (ok)
        {
            report.Pass(what);
        }
        else
        {
            report.Fail(what, why);
        }
    }

    private static int Agreement(int[] a, int[] b) => a.Zip(b).TakeWhile(p => p.First == p.Second).Count();

    private static Scenario Run(IBackend backend, IModelSource source, EngineOptions options, params EngineRequest[] requests)
    {
        using var model = new LlamaModel(source, backend, options.MaxBatchedTokens, options.MaxNumSeqs);
        using var engine = new LlmEngine(model, null, options, "gpucheck");
        Outcome? last = null;
        var snapshot = engine.Snapshot;
        foreach (var request in requests)
        {
            var idle = engine.NextIdleAsync();
            last = Collect(engine.Submit(request)).GetAwaiter().GetResult();
            if (!idle.Wait(TimeSpan.FromMinutes(5)))
            {
                throw new TimeoutException("The engine did not become idle.");
            }

            snapshot = idle.Result;
        }

        return new Scenario(last!, snapshot.OffloadHitTokens, snapshot.OffloadStoredBlocks, snapshot.FreeBlocks == snapshot.TotalBlocks);
    }

    private static async Task<Outcome> Collect(EngineRequestHandle handle)
    {
        var tokens = new List<int>();
        var logprobs = new List<float>();
        var cached = 0;
        await foreach (var e in handle.ReadAllAsync())
        {
            if (e.TokenId >= 0)
            {
                tokens.Add(e.TokenId);
                logprobs.Add(e.Logprob);
            }

            cached = e.Usage?.CachedPromptTokens ?? cached;
        }

        return new Outcome([.. tokens], [.. logprobs], cached);
    }
}
