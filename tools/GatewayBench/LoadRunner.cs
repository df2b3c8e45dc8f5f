using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;

namespace AspireAi.GatewayBench;

/// <summary>Latencies of one run, in milliseconds, with its throughput and failures.</summary>
internal sealed record RunResult(string Name, double[] LatenciesMs, double Seconds, int Failures)
{
    public double Percentile(double p)
    {
        if (LatenciesMs.Length == 0)
        {
            return double.NaN;
        }

        var sorted = LatenciesMs.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100 * sorted.Length) - 1)];
    }

    public double Throughput => LatenciesMs.Length / Seconds;

    public override string ToString() =>
        $"{Name,-34} n={LatenciesMs.Length,6}  {Throughput,8:F0} req/s  p50 {Percentile(50),7:F3} ms  p99 {Percentile(99),7:F3} ms  failures {Failures}";
}

/// <summary>
/// Request loops, bounded in count and time, to loopback only: an open loop at a fixed rate (latency at a load the server
/// keeps up with) and a closed loop of N concurrent clients (saturation: throughput and latency when the CPU is the limit).
/// </summary>
internal static class LoadRunner
{
    private static readonly byte[] SmallChat = Encoding.UTF8.GetBytes(
        $"{{\"model\":\"{BenchUpstream.Model}\",\"temperature\":0.7,\"messages\":[{{\"role\":\"user\",\"content\":\"Say hello.\"}}]}}");

    public static HttpClient Client(string baseAddress, string? key) => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = 512,
        PooledConnectionLifetime = TimeSpan.FromMinutes(10),
        UseProxy = false,
    })
    {
        BaseAddress = new Uri(baseAddress),
        DefaultRequestHeaders = { Authorization = key is null ? null : new AuthenticationHeaderValue("Bearer", key) },
        Timeout = TimeSpan.FromSeconds(30),
    };

    public static async Task<double> SendAsync(HttpClient client)
    {
        var started = Stopwatch.GetTimestamp();
        using var content = new ByteArrayContent(SmallChat) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } };
        using var response = await client.PostAsync("/v1/chat/completions", content);
        await response.Content.ReadAsByteArrayAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"status {(int)response.StatusCode}");
        }

        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    public static async Task<RunResult> FixedRateAsync(string name, HttpClient client, int rate, TimeSpan duration)
    {
        var total = (int)(rate * duration.TotalSeconds);
        var latencies = new double[total];
        var failures = 0;
        var tasks = new Task[total];
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < total; i++)
        {
            var due = TimeSpan.FromSeconds((double)i / rate);
            var wait = due - Stopwatch.GetElapsedTime(start);
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait);
            }

            var index = i;
            tasks[i] = Task.Run(async () =>
            {
                try
                {
                    latencies[index] = await SendAsync(client);
                }
                catch (Exception)
                {
                    latencies[index] = double.NaN;
                    Interlocked.Increment(ref failures);
                }
            });
        }

        await Task.WhenAll(tasks);
        return new RunResult(name, [.. latencies.Where(l => !double.IsNaN(l))], Stopwatch.GetElapsedTime(start).TotalSeconds, failures);
    }

    public static async Task<RunResult> SaturationAsync(string name, HttpClient client, int concurrency, TimeSpan duration)
    {
        var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
        var failures = 0;
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (Stopwatch.GetElapsedTime(start) < duration)
            {
                try
                {
                    latencies.Add(await SendAsync(client));
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })));
        return new RunResult(name, [.. latencies], Stopwatch.GetElapsedTime(start).TotalSeconds, failures);
    }

    /// <summary>
    /// <paramref name="streams"/> streams one after another; for every chunk, the time from the upstream writing it to this
    /// client reading it (both in this process, one clock).
    /// </summary>
    public static async Task<RunResult> StreamingAsync(string name, HttpClient client, int streams)
    {
        var delays = new List<double>();
        var failures = 0;
        var body = $"{{\"model\":\"{BenchUpstream.Model}\",\"stream\":true,\"temperature\":0.7,\"messages\":[{{\"role\":\"user\",\"content\":\"Tell a story.\"}}]}}";
        var start = Stopwatch.GetTimestamp();
        for (var s = 0; s < streams; s++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (!response.IsSuccessStatusCode)
            {
                failures++;
                continue;
            }

            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (await reader.ReadLineAsync() is { } line)
            {
                var at = line.IndexOf("\"t\":", StringComparison.Ordinal);
                if (at >= 0)
                {
                    var end = line.IndexOf(',', at);
                    var sent = long.Parse(line.AsSpan(at + 4, end - at - 4));
                    delays.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
                }
            }
        }

        return new RunResult(name, [.. delays], Stopwatch.GetElapsedTime(start).TotalSeconds, failures);
    }
}
