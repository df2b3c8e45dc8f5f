using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Serving;

namespace AspireAi.Inference.Cli;

/// <summary>
/// <c>bench-serve</c>: serving throughput and latency like vLLM's <c>bench serve</c>, on nano-vllm's workload — N requests of
/// random token ids with prompt and output lengths uniform in [100, 1024] (scaled down by context/2048 for models with a
/// shorter context, e.g. stories15M's 256 → [12, 128]), <c>ignore_eos</c>. Offline (all at once, the default) or online
/// with Poisson arrivals (<c>--request-rate</c>). Against a server (<c>--url</c>, streaming <c>/v1/completions</c>) or the
/// engine in-process (<c>--model</c>). <c>--batch-requests N</c> first queues N lowest-priority batch requests (the Batch API
/// over HTTP) so the interactive numbers show what batch work costs them; <c>--json</c> (in-process) constrains every output
/// to a JSON object, to measure the grammar mask.
/// </summary>
public static class BenchServeCommand
{
    private sealed record Outcome(double Ttft, double E2e, int OutputTokens, List<double> Itl);

    /// <summary>One request's output arrivals since <paramref name="start"/> (a timestamp): the first is its TTFT, the gaps after it its ITLs.</summary>
    private sealed class Arrivals(long start)
    {
        private readonly List<double> _gaps = [];
        private double _first, _last;

        public int Count { get; private set; }

        public void Arrived()
        {
            var now = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (Count++ == 0)
            {
                _first = now;
            }
            else
            {
                _gaps.Add(now - _last);
            }

            _last = now;
        }

        public Outcome Outcome(int outputTokens) => new(_first, Stopwatch.GetElapsedTime(start).TotalSeconds, outputTokens, _gaps);
    }

    public static int Run(string[] argv)
    {
        var args = new CommandLine("bench-serve", argv, new HashSet<string>([.. LoadedModel.Flags, "url", "served-model-name", "num-prompts",
            "request-rate", "seed", "context", "vocab", "max-num-seqs", "max-batched-tokens", "kv-cache-tokens", "kv-offload-tokens", "batch-requests", "batch-share", "batch-step-tokens", "output", "temperature"]), new HashSet<string> { "json", "enforce-eager" });
        if (args.Has("url") == args.Has("model"))
        {
            throw new UsageException("bench-serve: give exactly one of --url (a running server) or --model (in-process).");
        }

        var prompts = args.Int("num-prompts", 256, 1, 100_000);
        var rate = args.String("request-rate") is { } r && r != "inf"
            ? args.Float("request-rate", 0, float.Epsilon, 1e6f) : float.PositiveInfinity;
        var seed = args.Int("seed", 0);
        var batchRequests = args.Int("batch-requests", 0, 0, 100_000);
        var temperature = args.Float("temperature", 0.6f, 0, 2);
        var json = args.Choice("output", "text", "text", "json") == "json";
        return args.Has("url")
            ? RunHttp(args, prompts, rate, seed, batchRequests, temperature, json).GetAwaiter().GetResult()
            : RunInProcess(args, prompts, rate, seed, batchRequests, temperature, json, args.Has("json")).GetAwaiter().GetResult();
    }

    /// <summary>nano-vllm's workload scaled to the context: (prompt ids, output length) per request.</summary>
    private static List<(int[] Prompt, int Output)> Workload(int count, int context, int vocabulary, int seed)
    {
        var scale = Math.Min(1.0, context / 2048.0);
        int low = Math.Max(1, (int)(100 * scale)), high = Math.Max(low, (int)(1024 * scale));
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var prompt = Enumerable.Range(0, random.Next(low, high + 1)).Select(_ => random.Next(3, Math.Min(vocabulary, 10_000))).ToArray();
            return (prompt, Math.Min(random.Next(low, high + 1), context - prompt.Length));
        }).ToList();
    }

    /// <param name="constrained">Every request's output constrained to a JSON object (<c>--json</c>): the cost of the grammar mask.</param>
    private static async Task<int> RunInProcess(CommandLine args, int count, float rate, int seed, int batchRequests, float temperature, bool json, bool constrained)
    {
        var options = new InferenceOptions
        {
            Model = args.RequiredString("model"),
            Threads = args.Int("threads", 0, 0, 1024),
            Device = args.Choice("device", "auto", BackendSelector.Devices),
            TensorParallelSize = LoadedModel.TensorParallelSize(args),
            MaxNumSeqs = args.Int("max-num-seqs", 32, 1),
            MaxBatchedTokens = args.Int("max-batched-tokens", 512, 1),
            KvCacheTokens = args.Int("kv-cache-tokens", 0, 0),
            KvOffloadTokens = args.Int("kv-offload-tokens", 0, 0),
            KvCacheDtype = LoadedModel.KvCacheDtypeFlag(args).Name(),
            ServedModelName = args.String("served-model-name"),
            Quantize = args.String("quantize"),
            BatchShare = args.Float("batch-share", 0, 0, 1),
            BatchStepTokens = args.Int("batch-step-tokens", 64, 1),
            EnforceEager = args.Has("enforce-eager"),
        };
        using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
        using var model = ServedModel.Load(options, loggerFactory.CreateLogger("bench-serve"));
        var engine = model.Engine;
        var context = model.Config.ContextLength;
        var workload = Workload(count, context, model.Config.VocabularySize, seed);
        var batch = Workload(batchRequests, context, model.Config.VocabularySize, seed + 1)
            .Select(w => engine.Submit(new EngineRequest { PromptTokenIds = w.Prompt, MaxTokens = w.Output, Priority = RequestPriority.Batch }))
            .ToList();

        async Task<Outcome> One((int[] Prompt, int Output) w, int i)
        {
            var start = Stopwatch.GetTimestamp();
            var handle = engine.Submit(new EngineRequest
            {
                PromptTokenIds = w.Prompt,
                MaxTokens = w.Output,
                Sampling = new SamplingParams { Temperature = temperature, Seed = seed + i },
                Constraint = constrained ? Serving.StructuredOutput.GrammarConstraint.ForJson(model.TokenTrie, model.TokenBytes, null) : null,
            });
            var arrivals = new Arrivals(start);
            await foreach (var e in handle.ReadAllAsync())
            {
                if (e.TokenId >= 0)
                {
                    arrivals.Arrived();
                }
            }

            return arrivals.Outcome(arrivals.Count);
        }

        var (outcomes, seconds, cpuSeconds) = await Drive(workload, rate, seed, One);
        foreach (var handle in batch)
        {
            handle.Abort();
        }

        Report(json, $"in-process {model.Id}{(constrained ? " json_object" : "")} ({engine.Options.MaxNumSeqs} seqs, {engine.Options.MaxBatchedTokens} tokens/step, {engine.Options.KvCacheBlocks * engine.Options.BlockSize} {engine.Options.KvCacheDtype.Name()} KV tokens)",
            workload, outcomes, seconds, cpuSeconds, rate, batchRequests, engine.Snapshot);
        return 0;
    }

    private static async Task<int> RunHttp(CommandLine args, int count, float rate, int seed, int batchRequests, float temperature, bool json)
    {
        using var http = new HttpClient { BaseAddress = new Uri(args.RequiredString("url")), Timeout = TimeSpan.FromHours(1) };
        var models = JsonNode.Parse(await http.GetStringAsync("/v1/models"))!;
        var modelId = args.String("served-model-name") ?? models["data"]![0]!["id"]!.GetValue<string>();
        var context = args.Int("context", 256, 8);
        var workload = Workload(count, context, args.Int("vocab", 32_000, 4), seed);
        if (batchRequests > 0)
        {
            await StartBatch(http, modelId, Workload(batchRequests, context, args.Int("vocab", 32_000, 4), seed + 1));
        }

        async Task<Outcome> One((int[] Prompt, int Output) w, int i)
        {
            var start = Stopwatch.GetTimestamp();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
            {
                Content = JsonContent.Create(new
                {
                    model = modelId,
                    prompt = w.Prompt,
                    max_tokens = w.Output,
                    temperature,
                    seed = seed + i,
                    ignore_eos = true,
                    stream = true,
                    stream_options = new { include_usage = true },
                }),
            };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            var arrivals = new Arrivals(start);
            var tokens = 0;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: {", StringComparison.Ordinal))
                {
                    continue;
                }

                var chunk = JsonNode.Parse(line[6..])!;
                if (chunk["usage"] is JsonObject usage)
                {
                    tokens = usage["completion_tokens"]!.GetValue<int>();
                }

                if (chunk["choices"] is JsonArray { Count: > 0 } choices && choices[0]!["text"]!.GetValue<string>().Length > 0)
                {
                    arrivals.Arrived();
                }
            }

            return arrivals.Outcome(tokens);
        }

        var (outcomes, seconds, cpuSeconds) = await Drive(workload, rate, seed, One);
        Report(json, $"{http.BaseAddress} {modelId}", workload, outcomes, seconds, cpuSeconds, rate, batchRequests, null);
        return 0;
    }

    private static async Task StartBatch(HttpClient http, string model, List<(int[] Prompt, int Output)> requests)
    {
        var lines = string.Join('\n', requests.Select((w, i) => JsonSerializer.Serialize(new
        {
            custom_id = $"bench-{i}",
            method = "POST",
            url = "/v1/completions",
            body = new { model, prompt = w.Prompt, max_tokens = w.Output, ignore_eos = true },
        })));
        using var form = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(lines)), "file", "bench.jsonl" },
        };
        var file = JsonNode.Parse(await (await http.PostAsync("/v1/files", form)).EnsureSuccessStatusCode().Content.ReadAsStringAsync())!;
        (await http.PostAsJsonAsync("/v1/batches", new { input_file_id = file["id"]!.GetValue<string>(), endpoint = "/v1/completions", completion_window = "24h" }))
            .EnsureSuccessStatusCode();
    }

    /// <summary>Sends every request (all at once, or with exponential gaps of mean 1/rate) and waits for all.</summary>
    private static async Task<(Outcome[] Outcomes, double Seconds, double CpuSeconds)> Drive(List<(int[] Prompt, int Output)> workload, float rate, int seed,
        Func<(int[] Prompt, int Output), int, Task<Outcome>> one)
    {
        var random = new Random(seed + 7);
        var process = Process.GetCurrentProcess();
        var cpuStart = process.TotalProcessorTime;
        var start = Stopwatch.GetTimestamp();
        var tasks = new List<Task<Outcome>>();
        for (var i = 0; i < workload.Count; i++)
        {
            tasks.Add(one(workload[i], i));
            if (!float.IsPositiveInfinity(rate))
            {
                await Task.Delay(TimeSpan.FromSeconds(-Math.Log(1 - random.NextDouble()) / rate));
            }
        }

        var outcomes = await Task.WhenAll(tasks);
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        process.Refresh();
        return (outcomes, seconds, (process.TotalProcessorTime - cpuStart).TotalSeconds);
    }

    /// <param name="cpuSeconds">CPU time of this process during the run (in-process: the engine's too). On a machine shared
    /// with other work, output tokens per CPU second compare runs better than wall-clock throughput — with <c>--threads 1</c>,
    /// where no worker spins waiting for a descheduled sibling.</param>
    private static void Report(bool json, string target, List<(int[] Prompt, int Output)> workload, Outcome[] outcomes, double seconds, double cpuSeconds, float rate,
        int batchRequests, EngineSnapshot? snapshot)
    {
        var input = workload.Sum(w => w.Prompt.Length);
        var output = outcomes.Sum(o => o.OutputTokens);
        var tpot = outcomes.Where(o => o.OutputTokens > 1).Select(o => (o.E2e - o.Ttft) / (o.OutputTokens - 1)).ToList();
        var itl = outcomes.SelectMany(o => o.Itl).ToList();
        var stats = new Dictionary<string, object>
        {
            ["target"] = target,
            ["requests"] = outcomes.Length,
            ["request_rate"] = float.IsPositiveInfinity(rate) ? "inf" : rate,
            ["batch_requests_queued"] = batchRequests,
            ["duration_s"] = Math.Round(seconds, 3),
            ["input_tokens"] = input,
            ["output_tokens"] = output,
            ["request_throughput"] = Math.Round(outcomes.Length / seconds, 3),
            ["output_throughput"] = Math.Round(output / seconds, 1),
            ["total_token_throughput"] = Math.Round((input + output) / seconds, 1),
            ["process_cpu_s"] = Math.Round(cpuSeconds, 2),
            ["output_tokens_per_cpu_s"] = Math.Round(output / cpuSeconds, 1),
        };
        foreach (var (name, values) in new[] { ("ttft", outcomes.Select(o => o.Ttft).ToList()), ("tpot", tpot), ("itl", itl), ("e2e", outcomes.Select(o => o.E2e).ToList()) })
        {
            stats[$"mean_{name}_ms"] = Math.Round(values.DefaultIfEmpty().Average() * 1000, 2);
            stats[$"p50_{name}_ms"] = Math.Round(Percentile(values, 50) * 1000, 2);
            stats[$"p99_{name}_ms"] = Math.Round(Percentile(values, 99) * 1000, 2);
        }

        if (snapshot is not null)
        {
            stats["preemptions"] = snapshot.Preemptions;
            if (snapshot.Steps > 0)
            {
                // The engine thread's time per step, and the host's share of it (all but the forward pass).
                stats["engine_steps"] = snapshot.Steps;
                stats["mean_step_ms"] = Math.Round(snapshot.StepSeconds / snapshot.Steps * 1000, 3);
                stats["mean_step_host_ms"] = Math.Round((snapshot.StepSeconds - snapshot.ForwardSeconds) / snapshot.Steps * 1000, 3);
            }

            stats["prefix_cache_hit_tokens"] = snapshot.PrefixHitTokens;
            if (snapshot.OffloadTotalBlocks > 0)
            {
                stats["kv_offload_hit_tokens"] = snapshot.OffloadHitTokens;
                stats["kv_offload_stored_blocks"] = snapshot.OffloadStoredBlocks;
                stats["kv_offload_loaded_blocks"] = snapshot.OffloadLoadedBlocks;
            }

            if (snapshot.GraphRecordings > 0 || snapshot.GraphFailure is not null)
            {
                stats["cuda_graph_replays"] = snapshot.GraphReplays;
                stats["cuda_graph_recordings"] = snapshot.GraphRecordings;
                if (snapshot.GraphFailure is not null)
                {
                    stats["cuda_graph_failure"] = snapshot.GraphFailure;
                }
            }
        }

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(stats));
            return;
        }

        Console.WriteLine("============ Serving Benchmark Result ============");
        foreach (var (key, value) in stats)
        {
            Console.WriteLine($"{key,-28}{value}");
        }
    }

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        var sorted = values.Order().ToArray();
        var rank = p / 100 * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }
}
