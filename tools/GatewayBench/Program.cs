using System.Net.Http.Json;
using System.Text.Json;
using AspireAi.GatewayBench;
using AspireAi.TestSupport;

// Gateway overhead: the same small requests sent straight to an upstream and through the gateway (auth, rate limits in
// Redis, schema validation, routing, usage records), on loopback, in one process. Prints p50/p99 of each and the difference.
//   dotnet run -c Release --project tools/GatewayBench -- [--rate 200] [--seconds 10] [--concurrency 16] [--streams 20]
int Option(string name, int fallback) =>
    Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var value) ? value : fallback;
var rate = Option("--rate", 200);
var duration = TimeSpan.FromSeconds(Option("--seconds", 10));
var concurrency = Option("--concurrency", 16);
var streams = Option("--streams", 20);

Console.WriteLine($"GatewayBench — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, load average {LoadAverage()}");
await using var postgres = new PostgresServer();
await using var redis = new RedisServer();
await Task.WhenAll(postgres.InitializeAsync().AsTask(), redis.InitializeAsync().AsTask());
await using var upstream = await BenchUpstream.StartAsync(FreePort(), chunks: 50, chunkInterval: TimeSpan.FromMilliseconds(10));
const string master = "bench-master-key";
await using var gateway = new BenchGateway(new Dictionary<string, string?>
{
    ["ConnectionStrings:gatewaydb"] = await postgres.CreateDatabaseAsync("gateway_bench"),
    ["ConnectionStrings:redis"] = redis.ConnectionString,
    ["Gateway:MasterKey"] = master,
    ["Gateway:Deployments:bench"] = "http://bench",
    ["services:bench:http:0"] = upstream.Address,
}, FreePort()).Start();

using var admin = LoadRunner.Client(gateway.Address, master);
var created = await (await admin.PostAsJsonAsync("/admin/keys", new { tenant = "bench", limits = new { requests_per_minute = 1_000_000_000, tokens_per_minute = 1_000_000_000 } }))
    .Content.ReadFromJsonAsync<JsonElement>();
var unlimited = await (await admin.PostAsJsonAsync("/admin/keys", new { tenant = "bench" })).Content.ReadFromJsonAsync<JsonElement>();
using var direct = LoadRunner.Client(upstream.Address, null);
using var viaGatewayNoLimits = LoadRunner.Client(gateway.Address, unlimited.GetProperty("key").GetString());
using var viaGateway = LoadRunner.Client(gateway.Address, created.GetProperty("key").GetString());

Console.WriteLine("warming up (JIT, connection pools, Redis scripts)…");
await LoadRunner.SaturationAsync("warm-up direct", direct, 4, TimeSpan.FromSeconds(2));
await LoadRunner.SaturationAsync("warm-up gateway", viaGateway, 4, TimeSpan.FromSeconds(3));

var results = new List<(RunResult Direct, RunResult Gateway)>
{
    (await LoadRunner.FixedRateAsync($"direct, {rate}/s", direct, rate, duration),
     await LoadRunner.FixedRateAsync($"gateway, {rate}/s", viaGateway, rate, duration)),
    (await LoadRunner.FixedRateAsync($"direct, {rate}/s", direct, rate, duration),
     await LoadRunner.FixedRateAsync($"gateway, {rate}/s, key w/o limits", viaGatewayNoLimits, rate, duration)),
    (await LoadRunner.SaturationAsync($"direct, {concurrency} clients", direct, concurrency, duration),
     await LoadRunner.SaturationAsync($"gateway, {concurrency} clients", viaGateway, concurrency, duration)),
    (await LoadRunner.StreamingAsync($"direct, chunk delay", direct, streams),
     await LoadRunner.StreamingAsync($"gateway, chunk delay", viaGateway, streams)),
};

Console.WriteLine();
foreach (var (d, g) in results)
{
    Console.WriteLine(d);
    Console.WriteLine(g);
    Console.WriteLine($"{"  added by the gateway",-34} p50 {g.Percentile(50) - d.Percentile(50):+0.000;-0.000} ms  p99 {g.Percentile(99) - d.Percentile(99):+0.000;-0.000} ms");
}

Console.WriteLine($"load average at the end: {LoadAverage()}");
return 0;

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

static int FreePort()
{
    using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
    listener.Start();
    return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
}
