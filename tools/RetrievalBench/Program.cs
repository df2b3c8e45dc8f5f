using AspireAi.RetrievalBench;

// Retrieval benchmarks (commands that print numbers; record them in docs/performance.md):
//   eval  [--members 4000] [--queries 300]                     retrieval quality on the SDK's XML API docs
//   scale [--chunks 10000] [--embedded 2000] [--queries 200]    ingestion throughput, search latency, ANN recall
// --db CONNECTION_STRING uses an existing PostgreSQL database instead of a throwaway server.
var verb = args.FirstOrDefault();
int Option(string name, int fallback) =>
    Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var value) ? value : fallback;
var db = Array.IndexOf(args, "--db") is var d and >= 0 && d + 1 < args.Length ? args[d + 1] : null;

if (verb is not ("eval" or "scale"))
{
    Console.Error.WriteLine("usage: RetrievalBench eval [--members N] [--queries N] | scale [--chunks N] [--embedded N] [--queries N]  [--db CONNSTR]");
    return 2;
}

Console.WriteLine($"RetrievalBench {verb} — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, load average {LoadAverage()}");
await using var env = await BenchEnvironment.StartAsync(db);
if (verb == "eval")
{
    await EvalCommand.RunAsync(env, Option("--members", 4000), Option("--queries", 300));
}
else
{
    await ScaleCommand.RunAsync(env, Option("--chunks", 10_000), Option("--embedded", 2000), Option("--queries", 200));
}

Console.WriteLine($"load average at the end: {LoadAverage()}");
return 0;

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
