using System.Diagnostics;
using System.Text.Json;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Serving;

namespace AspireAi.Inference.Cli;

/// <summary>
/// <c>bench</c>: prefill and decode speed like <c>llama-bench</c>'s pp/tg. Each repetition prefills a fresh sequence of
/// pseudo-random tokens in one step (logits of the last token only), then decodes one token per step after it (greedy, so
/// the argmax over the vocabulary is included, as a real decode step needs it). One untimed repetition first warms the JIT.
/// <c>--batch N</c> runs N such sequences side by side: each prefilled in its own step, then every decode step carries one
/// token of each (one forward pass over N tokens, as the serving engine's decode steps do), so decode tokens/s is the
/// batched throughput.
/// </summary>
public static class BenchCommand
{
    public static int Run(string[] argv)
    {
        var args = new CommandLine("bench", argv, new HashSet<string>([.. LoadedModel.Flags, "prompt-tokens", "gen-tokens", "repetitions", "batch", "output"]));
        var promptTokens = args.Int("prompt-tokens", 128, 1);
        var genTokens = args.Int("gen-tokens", 128, 1);
        var repetitions = args.Int("repetitions", 5, 1, 1000);
        var sequences = args.Int("batch", 1, 1, 1024);
        var json = args.Choice("output", "text", "text", "json") == "json";
        using var loaded = LoadedModel.Open(args, maxBatchTokens: Math.Max(promptTokens, sequences), maxLogitRows: sequences, needTokenizer: false);
        var model = loaded.Model;
        var config = model.Config;
        if (promptTokens + genTokens > config.ContextLength || promptTokens > model.MaxBatchTokens)
        {
            throw new UsageException($"bench: --prompt-tokens {promptTokens} + --gen-tokens {genTokens} exceed the model's context of {config.ContextLength}.");
        }

        const int blockSize = 16;
        var blocks = (config.ContextLength + blockSize - 1) / blockSize;
        using var cache = model.CreateKvCache(model.KvCacheShape(blockSize, blocks * sequences, loaded.KvCacheDtype));
        var pool = new KvBlockPool(blocks * sequences, blockSize);
        var batch = new ForwardBatch(Math.Max(promptTokens, sequences), sequences, blocks);
        var vocabulary = config.VocabularySize;
        var logits = new float[sequences * vocabulary];
        var random = new Random(42);
        var prompt = Enumerable.Range(0, promptTokens).Select(_ => random.Next(3, config.VocabularySize)).ToArray();

        var prefill = new List<double>();
        var decode = new List<double>();
        var decodeCpu = new List<double>();
        var fastestStep = double.MaxValue;
        var process = System.Diagnostics.Process.GetCurrentProcess();
        for (var rep = -1; rep < repetitions; rep++)
        {
            var owned = Enumerable.Range(0, sequences).Select(_ => new SequenceBlocks(pool)).ToArray();
            var tables = owned.Select(o =>
            {
                o.TryReserve(promptTokens + genTokens);
                return o.Blocks.ToArray();
            }).ToArray();
            var tokens = new int[sequences];

            var start = Stopwatch.GetTimestamp();
            for (var s = 0; s < sequences; s++)
            {
                batch.Clear();
                batch.AddSequence(tables[s]);
                for (var p = 0; p < promptTokens; p++)
                {
                    batch.AddToken(prompt[p], p, 0, owned[s].Slot(p), needsLogits: p == promptTokens - 1);
                }

                model.Forward(batch, cache, logits);
                tokens[s] = Sampler.ArgMax(logits.AsSpan(0, vocabulary));
            }

            var prefillSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;

            start = Stopwatch.GetTimestamp();
            process.Refresh();
            var cpuStart = process.TotalProcessorTime;
            for (var i = 0; i < genTokens; i++)
            {
                var position = promptTokens + i;
                batch.Clear();
                for (var s = 0; s < sequences; s++)
                {
                    batch.AddToken(tokens[s], position, batch.AddSequence(tables[s]), owned[s].Slot(position), needsLogits: true);
                }

                var stepStart = Stopwatch.GetTimestamp();
                model.Forward(batch, cache, logits);
                for (var s = 0; s < sequences; s++)
                {
                    tokens[s] = Sampler.ArgMax(logits.AsSpan(s * vocabulary, vocabulary));
                }

                fastestStep = Math.Min(fastestStep, Stopwatch.GetElapsedTime(stepStart).TotalSeconds);
            }

            var decodeSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            process.Refresh();
            var decodeCpuSeconds = (process.TotalProcessorTime - cpuStart).TotalSeconds;
            foreach (var o in owned)
            {
                o.Release();
            }

            if (rep >= 0)
            {
                prefill.Add(sequences * promptTokens / prefillSeconds);
                decode.Add(sequences * genTokens / decodeSeconds);
                decodeCpu.Add(decodeCpuSeconds * 1000 / (sequences * genTokens));
            }
        }

        // Per decoded token: every weight once, plus the keys and values of the average context (at the cache's element size).
        var kvBytes = KvCacheSizing.BytesPerToken(config, loaded.KvCacheDtype) * (promptTokens + genTokens / 2);
        var result = new Dictionary<string, object>
        {
            ["model"] = Path.GetFileName(loaded.Source.Path.TrimEnd('/', '\\')),
            ["backend"] = model.Description,
            ["prompt_tokens"] = promptTokens,
            ["gen_tokens"] = genTokens,
            ["batch"] = sequences,
            ["kv_cache_dtype"] = loaded.KvCacheDtype.Name(),
            ["repetitions"] = repetitions,
            ["prefill_tokens_per_s"] = Math.Round(Median(prefill), 1),
            ["prefill_tokens_per_s_best"] = Math.Round(prefill.Max(), 1),
            ["decode_tokens_per_s"] = Math.Round(Median(decode), 1),
            ["decode_tokens_per_s_best"] = Math.Round(decode.Max(), 1),
            ["decode_fastest_step_ms"] = Math.Round(fastestStep * 1000, 3),
            ["decode_cpu_ms_per_token"] = Math.Round(Median(decodeCpu), 3),
            ["weight_bytes_per_token"] = model.WeightBytesPerStep,
            ["kv_bytes_per_token"] = kvBytes,
            ["bytes_per_token"] = model.WeightBytesPerStep + kvBytes,
        };
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(result));
            return 0;
        }

        Console.WriteLine($"model    {result["model"]} ({config.Architecture}, {config.LayerCount} layers, dim {config.EmbeddingLength}), {model.Description}, {loaded.KvCacheDtype.Name()} KV cache");
        Console.WriteLine($"prefill  {promptTokens} tokens: {Median(prefill),9:F1} tokens/s median, {prefill.Max(),9:F1} best of {repetitions}");
        Console.WriteLine($"decode   {genTokens} tokens × {sequences} sequences: {Median(decode),9:F1} tokens/s median, {decode.Max(),9:F1} best of {repetitions}");
        // CPU time of all threads per decoded token: with spinning workers ≈ threads × wall time on an idle machine; much
        // less wall time than CPU time / threads means the machine was busy (other processes took the cores).
        Console.WriteLine($"cpu      {Median(decodeCpu):F3} ms of CPU (all threads) per decoded token; fastest single step {fastestStep * 1000:F3} ms");
        Console.WriteLine($"bytes    {(model.WeightBytesPerStep + kvBytes) / 1e6:F2} MB per decoded token ({model.WeightBytesPerStep / 1e6:F2} MB weights, {kvBytes / 1e6:F2} MB KV)");
        return 0;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
