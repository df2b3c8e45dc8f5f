using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>Files and batches live in the state folder: a server stopped and started again lists them and resumes its work.</summary>
public sealed class BatchPersistenceTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _temp.Dispose();

    private static async Task<JsonNode> Json(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonNode.Parse(text)!;
    }

    private static object Line(int i) => new
    {
        custom_id = $"req-{i}",
        method = "POST",
        url = "/v1/completions",
        body = new { model = "tiny", prompt = new[] { 1, 10 + i, 20 + i }, max_tokens = 24, temperature = 0, ignore_eos = true },
    };

    private static async Task<string> CreateBatch(HttpClient http, int lines)
    {
        var jsonl = string.Join('\n', Enumerable.Range(0, lines).Select(i => JsonSerializer.Serialize(Line(i))));
        using var form = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl)) { Headers = { ContentType = new MediaTypeHeaderValue("application/jsonl") } }, "file", "input.jsonl" },
        };
        var file = await Json(await http.PostAsync("/v1/files", form, Ct));
        var batch = await Json(await http.PostAsJsonAsync("/v1/batches",
            new { input_file_id = file["id"]!.GetValue<string>(), endpoint = "/v1/completions", completion_window = "24h" }, Ct));
        return batch["id"]!.GetValue<string>();
    }

    /// <summary>Waits for a final status (final statuses persist, so reading them late is never wrong).</summary>
    private static async Task<JsonNode> Finished(HttpClient http, string id)
    {
        for (var i = 0; i < 1200; i++)
        {
            var batch = await Json(await http.GetAsync($"/v1/batches/{id}", Ct));
            if (batch["status"]!.GetValue<string>() is "completed" or "failed" or "cancelled")
            {
                return batch;
            }

            await Task.Delay(50, Ct);
        }

        throw new TimeoutException($"batch {id} did not finish in 60 s");
    }

    [Fact]
    public async Task Restart_lists_files_and_batches_and_resumes_an_unfinished_batch_without_repeating_results()
    {
        var model = _temp.File("tiny.gguf");
        new TinyGgufModel { Vocabulary = 64, Context = 128, Seed = 11 }.CreateWriter().WriteTo(model);
        var state = Path.Combine(_temp.Path, "state");
        string[] flags = ["--state-dir", state, "--kv-cache-tokens", "512", "--max-num-seqs", "1", "--max-batched-tokens", "32"];

        string done, resumed, resultsPath;
        string[] before;
        var expected = new Dictionary<string, string>();
        var first = await ServingHost.StartAsync(model, flags);
        using var hold = new ManualResetEventSlim();
        try
        {
            // What each line gives when asked directly (greedy): a batch's results must be the same.
            for (var i = 0; i < 4; i++)
            {
                var body = JsonSerializer.SerializeToNode(Line(i))!["body"]!;
                var answer = await Json(await first.Http.PostAsJsonAsync("/v1/completions", body, Ct));
                expected[$"req-{i}"] = answer["choices"]![0]!["text"]!.GetValue<string>();
            }

            done = await CreateBatch(first.Http, 1);
            Assert.Equal("completed", (await Finished(first.Http, done))["status"]!.GetValue<string>());

            // The second batch is stopped part-way: once one result is on disk, the engine thread is held at the end of
            // its next step (one line runs at a time, and the next line starts only after the previous one's result is
            // written), so no further result can be written before the server stops. The hold is in place before the
            // batch exists: installed after it, a slow test thread (8 test threads on 2 cores) let two lines finish first.
            var batches = Path.Combine(state, "batches");
            first.Model.Engine.StepCompleted += _ =>
            {
                if (Directory.EnumerateFiles(batches, "*.results.jsonl").Any(f => !Path.GetFileName(f).StartsWith(done, StringComparison.Ordinal)
                    && File.ReadAllText(f).Contains('\n')))
                {
                    hold.Wait();
                }
            };
            resumed = await CreateBatch(first.Http, 4);
            resultsPath = Path.Combine(batches, resumed + ".results.jsonl");
            for (var i = 0; i < 1200 && !(File.Exists(resultsPath) && File.ReadAllText(resultsPath).Contains('\n')); i++)
            {
                await Task.Delay(50, Ct); // a result on disk stays there: this wait cannot miss it
            }

            await first.StopAsync();
            before = File.ReadAllLines(resultsPath);
            Assert.Equal("in_progress", JsonNode.Parse(File.ReadAllText(Path.Combine(state, "batches", resumed + ".json")))!["Status"]!.GetValue<string>());
        }
        finally
        {
            hold.Set();
            await first.DisposeAsync();
        }

        Assert.Single(before);

        await using var second = await ServingHost.StartAsync(model, flags);
        var listed = (await Json(await second.Http.GetAsync("/v1/batches", Ct)))["data"]!.AsArray().Select(b => b!["id"]!.GetValue<string>()).ToList();
        Assert.Contains(done, listed);
        Assert.Contains(resumed, listed);
        var files = await Json(await second.Http.GetAsync("/v1/files", Ct));
        var oldBatch = await Json(await second.Http.GetAsync($"/v1/batches/{done}", Ct));
        Assert.Equal("completed", oldBatch["status"]!.GetValue<string>());
        Assert.Contains(files["data"]!.AsArray(), f => f!["id"]!.GetValue<string>() == oldBatch["output_file_id"]!.GetValue<string>());
        var oldOutput = await second.Http.GetStringAsync($"/v1/files/{oldBatch["output_file_id"]!.GetValue<string>()}/content", Ct);
        Assert.Equal(expected["req-0"], JsonNode.Parse(oldOutput.Trim())!["response"]!["body"]!["choices"]![0]!["text"]!.GetValue<string>());

        var batch = await Finished(second.Http, resumed);
        Assert.Equal("completed", batch["status"]!.GetValue<string>());
        Assert.Equal(4, batch["request_counts"]!["completed"]!.GetValue<int>());
        Assert.Equal(4, batch["request_counts"]!["total"]!.GetValue<int>());
        var output = (await second.Http.GetStringAsync($"/v1/files/{batch["output_file_id"]!.GetValue<string>()}/content", Ct))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var results = output.Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(["req-0", "req-1", "req-2", "req-3"], results.Select(r => r["custom_id"]!.GetValue<string>()).Order());
        foreach (var line in before)
        {
            Assert.Contains(line, output); // kept as written before the restart (same request id), not run again
        }

        Assert.All(results, r => Assert.Equal(expected[r["custom_id"]!.GetValue<string>()],
            r["response"]!["body"]!["choices"]![0]!["text"]!.GetValue<string>()));
        Assert.False(File.Exists(resultsPath), "the results file is folded into the output file");
    }
}
