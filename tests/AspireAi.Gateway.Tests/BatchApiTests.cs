using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AspireAi.Gateway.Batches;
using AspireAi.Gateway.Tests.Support;
using AspireAi.ServiceDefaults;
using OpenAI;
using OpenAI.Batch;
using OpenAI.Files;

// The OpenAI client marks its Batch API as experimental; it is the client an OpenAI user has, so the test uses it.
#pragma warning disable OPENAI001

namespace AspireAi.Gateway.Tests;

/// <summary>
/// OpenAI's Files and Batch APIs through the gateway, in front of two real serving engines (stories15M) with their own state
/// folders: the official OpenAI client's round trip, tokens charged to the key, tenants isolated, and every id served by the
/// replica that holds it.
/// </summary>
public sealed class BatchApiTests(TestStack stack, TwoBatchReplicas replicas) : IClassFixture<TwoBatchReplicas>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_openai_client_uploads_runs_and_downloads_a_batch_and_its_tokens_count_against_the_key()
    {
        var engines = await replicas.GetAsync(stack);
        // A daily budget rather than tokens per minute: its counter does not decay, so the check cannot straddle a minute.
        const int budget = 1_000_000;
        var (key, keyId) = await engines.Gateway.CreateKeyAsync("batch-client", new { token_budget = budget, budget_period = "day" });
        var options = new OpenAIClientOptions { Endpoint = new Uri(engines.Gateway.Address + "/v1") };
        var files = new OpenAIFileClient(new ApiKeyCredential(key), options);
        var batches = new BatchClient(new ApiKeyCredential(key), options);
        using var http = engines.Gateway.Client(key);

        // The same prompt directly: greedy decoding must give the batch lines the same text.
        var direct = await (await http.PostAsJsonAsync("/v1/completions",
            new { model = BatchEngines.Model, prompt = "Once upon a time", max_tokens = 8, temperature = 0 }, Ct)).JsonAsync(HttpStatusCode.OK);
        var directTokens = direct.GetProperty("usage").GetProperty("total_tokens").GetInt32();

        OpenAIFile input = await files.UploadFileAsync(BinaryData.FromString(Jsonl(3)), "stories.jsonl", FileUploadPurpose.Batch);
        Assert.True(BatchIds.TryParse(input.Id, out _, out var fileReplica), input.Id);
        Assert.Equal("stories.jsonl", input.Filename);

        var operation = await batches.CreateBatchAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(
            new { input_file_id = input.Id, endpoint = "/v1/completions", completion_window = "24h" })), waitUntilCompleted: false);
        Assert.True(BatchIds.TryParse(operation.BatchId, out _, out var batchReplica));
        Assert.Equal(fileReplica, batchReplica); // the batch runs where its file is

        // Poll only for the batch's terminal state (persistent), generously.
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!operation.HasCompleted && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Ct);
            await operation.UpdateStatusAsync();
        }

        Assert.True(operation.HasCompleted, "the batch did not finish within 2 minutes");
        using var batch = JsonDocument.Parse((await operation.GetBatchAsync(null)).GetRawResponse().Content);
        var root = batch.RootElement;
        Assert.Equal("completed", root.GetProperty("status").GetString());
        Assert.Equal(3, root.GetProperty("request_counts").GetProperty("completed").GetInt32());
        var batchTokens = root.GetProperty("usage").GetProperty("total_tokens").GetInt32();
        Assert.Equal(3 * directTokens, batchTokens);

        var output = (await files.DownloadFileAsync(root.GetProperty("output_file_id").GetString()!)).Value.ToString();
        var results = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.Equal(["r0", "r1", "r2"], results.Select(r => r.GetProperty("custom_id").GetString()).Order());
        Assert.All(results, r =>
        {
            Assert.Equal(200, r.GetProperty("response").GetProperty("status_code").GetInt32());
            Assert.Equal(direct.GetProperty("choices")[0].GetProperty("text").GetString(),
                r.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("text").GetString());
        });

        // The batch's tokens were charged once, when the client first saw it finished: reading it again charges nothing.
        using var again = await http.GetAsync($"/v1/batches/{operation.BatchId}", Ct);
        Assert.Equal((budget - directTokens - batchTokens).ToString(System.Globalization.CultureInfo.InvariantCulture),
            again.Header("x-aspireai-budget-remaining-tokens"));
        using var list = await http.GetAsync("/v1/batches", Ct);
        Assert.Equal(again.Header("x-aspireai-budget-remaining-tokens"), list.Header("x-aspireai-budget-remaining-tokens"));
        var charged = await ChargedRowAsync(keyId, operation.BatchId);
        Assert.Equal((BatchEngines.Model, batchTokens), (charged.Model, charged.Prompt + charged.Completion));

        Assert.True((await files.DeleteFileAsync(input.Id)).Value.Deleted);
        await (await http.GetAsync($"/v1/files/{input.Id}", Ct)).ErrorAsync(HttpStatusCode.NotFound, "file_id");
    }

    [Fact]
    public async Task A_tenant_sees_and_touches_only_its_own_files_and_batches()
    {
        var engines = await replicas.GetAsync(stack);
        using var a = await engines.Gateway.ClientForNewKeyAsync("batch-iso-a");
        using var b = await engines.Gateway.ClientForNewKeyAsync("batch-iso-b");
        b.DefaultRequestHeaders.Add(TenantHeaders.TenantHeader, "batch-iso-a"); // forged: the gateway sets its own
        var fileA = (await UploadAsync(a, Jsonl(1))).GetProperty("id").GetString()!;
        var batchA = await RunToEndAsync(a, fileA);
        var outputA = batchA.GetProperty("output_file_id").GetString()!;
        var batchIdA = batchA.GetProperty("id").GetString()!;

        // Another tenant's ids answer exactly as ids that do not exist (same replica tag, a key nobody made).
        BatchIds.TryParse(fileA, out _, out var tag);
        var missingFile = $"file-000000000000000000000000-{tag}";
        var missingBatch = $"batch_000000000000000000000000-{tag}";
        foreach (var (path, missing) in new[]
                 {
                     ($"/v1/files/{fileA}", $"/v1/files/{missingFile}"),
                     ($"/v1/files/{outputA}", $"/v1/files/{missingFile}"),
                     ($"/v1/files/{fileA}/content", $"/v1/files/{missingFile}/content"),
                     ($"/v1/batches/{batchIdA}", $"/v1/batches/{missingBatch}"),
                 })
        {
            var foreign = await (await b.GetAsync(path, Ct)).ErrorAsync(HttpStatusCode.NotFound);
            var absent = await (await b.GetAsync(missing, Ct)).ErrorAsync(HttpStatusCode.NotFound);
            Assert.Equal(absent.GetProperty("code").GetString(), foreign.GetProperty("code").GetString());
            Assert.Equal(absent.GetProperty("message").GetString()!.Replace(missing.Split('/')[3], "?"),
                foreign.GetProperty("message").GetString()!.Replace(path.Split('/')[3], "?"));
        }

        await (await b.DeleteAsync($"/v1/files/{fileA}", Ct)).ErrorAsync(HttpStatusCode.NotFound, "file_id");
        await (await b.PostAsync($"/v1/batches/{batchIdA}/cancel", null, Ct)).ErrorAsync(HttpStatusCode.NotFound, "batch_id");
        await (await b.PostAsJsonAsync("/v1/batches", new { input_file_id = fileA, endpoint = "/v1/completions", completion_window = "24h" }, Ct))
            .ErrorAsync(HttpStatusCode.BadRequest, "input_file_id");

        var fileB = (await UploadAsync(b, Jsonl(1))).GetProperty("id").GetString()!;
        var batchIdB = (await RunToEndAsync(b, fileB)).GetProperty("id").GetString()!;
        Assert.Equal(new[] { fileA, outputA }.Order(StringComparer.Ordinal), (await IdsAsync(a, "/v1/files")).Order(StringComparer.Ordinal));
        Assert.Equal([batchIdA], await IdsAsync(a, "/v1/batches"));
        Assert.DoesNotContain(fileA, await IdsAsync(b, "/v1/files"));
        Assert.DoesNotContain(outputA, await IdsAsync(b, "/v1/files"));
        Assert.Equal([batchIdB], await IdsAsync(b, "/v1/batches"));

        // A key may batch only the models it may use.
        var (narrow, _) = await engines.Gateway.CreateKeyAsync("batch-iso-a", models: ["some-other-model"]);
        using var c = engines.Gateway.Client(narrow);
        var refused = await (await c.PostAsync("/v1/files", Form(Jsonl(1)), Ct)).ErrorAsync(HttpStatusCode.Forbidden, "file");
        Assert.Equal("model_not_allowed", refused.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_model_alias_in_a_batch_file_is_stored_as_the_model_it_names()
    {
        var engines = await replicas.GetAsync(stack);
        using var client = await engines.Gateway.ClientForNewKeyAsync("batch-alias");
        var fileId = (await UploadAsync(client, Jsonl(2, BatchEngines.Alias))).GetProperty("id").GetString()!;

        var stored = await client.GetStringAsync($"/v1/files/{fileId}/content", Ct);
        Assert.Equal([BatchEngines.Model, BatchEngines.Model], stored.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("body").GetProperty("model").GetString()));
        var done = await RunToEndAsync(client, fileId);
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("completed").GetInt32());
    }

    [Fact]
    public async Task Files_and_batches_live_on_both_replicas_and_each_id_is_served_by_its_own()
    {
        var engines = await replicas.GetAsync(stack);
        const string tenant = "batch-replicas";
        using var client = await engines.Gateway.ClientForNewKeyAsync(tenant);
        var tags = await TagsAsync(engines);

        // Uploads go to the least busy replica, ties broken at random: upload until each replica holds a file (the chance
        // that 40 uploads all land on one of two replicas is 2^-39).
        var fileByReplica = new Dictionary<string, string>();
        for (var i = 0; i < 40 && fileByReplica.Count < 2; i++)
        {
            var id = (await UploadAsync(client, Jsonl(2))).GetProperty("id").GetString()!;
            Assert.True(BatchIds.TryParse(id, out _, out var tag));
            fileByReplica.TryAdd(tag, id);
        }

        Assert.Equal(tags.Order(), fileByReplica.Keys.Order());
        var batchIds = new List<string>();
        foreach (var (tag, fileId) in fileByReplica)
        {
            var created = await (await client.PostAsJsonAsync("/v1/batches",
                new { input_file_id = fileId, endpoint = "/v1/completions", completion_window = "24h" }, Ct)).JsonAsync(HttpStatusCode.OK);
            var batchId = created.GetProperty("id").GetString()!;
            Assert.True(BatchIds.TryParse(batchId, out _, out var batchTag));
            Assert.Equal(tag, batchTag);
            batchIds.Add(batchId);
        }

        foreach (var batchId in batchIds)
        {
            var done = await WaitAsync(client, batchId);
            Assert.Equal("completed", done.GetProperty("status").GetString());
            var output = done.GetProperty("output_file_id").GetString()!;
            BatchIds.TryParse(batchId, out _, out var tag);
            Assert.True(BatchIds.TryParse(output, out _, out var outputTag));
            Assert.Equal(tag, outputTag);

            // Held by exactly the replica its tag names: that one knows it, the other does not.
            for (var r = 0; r < engines.Addresses.Count; r++)
            {
                var expected = tags[r] == tag ? HttpStatusCode.OK : HttpStatusCode.NotFound;
                Assert.Equal(expected, await DirectStatusAsync(engines.Addresses[r], $"/v1/batches/{batchId}", tenant));
                Assert.Equal(expected, await DirectStatusAsync(engines.Addresses[r], $"/v1/files/{output}", tenant));
            }

            using var content = await client.GetAsync($"/v1/files/{output}/content", Ct);
            Assert.Equal(HttpStatusCode.OK, content.StatusCode);
            Assert.Null(content.Header(BatchIds.ReplicaHeader)); // the replica's tag stays inside
            Assert.Equal(2, (await content.Content.ReadAsStringAsync(Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }

        // Lists merge both replicas, newest first, and page with limit/after as OpenAI's do.
        var all = await IdsAsync(client, "/v1/batches");
        Assert.Equal(batchIds.OrderByDescending(SortKeyOf, StringComparer.Ordinal), all);
        var paged = new List<string>();
        string? after = null;
        for (var page = 0; page < 5; page++)
        {
            var list = await (await client.GetAsync("/v1/batches?limit=1" + (after is null ? "" : "&after=" + after), Ct)).JsonAsync(HttpStatusCode.OK);
            paged.AddRange(list.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetString()!));
            after = list.GetProperty("last_id").GetString();
            if (!list.GetProperty("has_more").GetBoolean())
            {
                break;
            }
        }

        Assert.Equal(all, paged);
        var files = await IdsAsync(client, "/v1/files?order=asc");
        Assert.Equal(files.Order(StringComparer.Ordinal).OrderBy(SortKeyOf, StringComparer.Ordinal), files);
        Assert.Contains(fileByReplica.Values.First(), files);
        var twoOldest = await (await client.GetAsync("/v1/files?order=asc&limit=2", Ct)).JsonAsync(HttpStatusCode.OK);
        Assert.True(twoOldest.GetProperty("has_more").GetBoolean());
        Assert.Equal(files.Take(2), twoOldest.GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()!));
        await (await client.GetAsync("/v1/batches?limit=101", Ct)).ErrorAsync(HttpStatusCode.BadRequest, "limit");
        await (await client.GetAsync("/v1/batches?after=batch_nope", Ct)).ErrorAsync(HttpStatusCode.BadRequest, "after");
    }

    /// <summary>The usage record of the batch's tokens, once the usage writer has flushed it (it flushes every 0.2 s in tests).</summary>
    private async Task<UsageRows.Row> ChargedRowAsync(string keyId, string batchId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var rows = (await UsageRows.ReadAsync(stack.GatewayDb, keyId)).Where(r => r.Endpoint == $"/v1/batches/{batchId}" && r.Prompt > 0).ToList();
            if (rows.Count > 0 || DateTime.UtcNow > deadline)
            {
                return Assert.Single(rows);
            }

            await Task.Delay(100, Ct);
        }
    }

    internal static string SortKeyOf(string id) => BatchIds.TryParse(id, out var key, out _) ? key : throw new ArgumentException(id);

    [Fact]
    public async Task A_jwt_caller_batches_as_its_tenant_claim_and_another_organisation_cannot_see_it()
    {
        var engines = await replicas.GetAsync(stack);
        await using var authority = await new OidcAuthority().StartAsync();
        await using var gateway = engines.StartGateway(stack, new Dictionary<string, string?>
        {
            ["Gateway:Jwt:Authority"] = authority.Issuer,
            ["Gateway:Jwt:Audience"] = OidcAuthority.Audience,
            ["Gateway:Jwt:RequireHttpsMetadata"] = "false",
            ["Gateway:Jwt:TenantClaim"] = "org",
        });
        var org = "jwt-batch-" + Guid.NewGuid().ToString("N")[..8];
        using var alice = gateway.Client(authority.Issue("alice", new Dictionary<string, object> { ["org"] = org }));
        using var bob = gateway.Client(authority.Issue("bob", new Dictionary<string, object> { ["org"] = org }));
        using var mallory = gateway.Client(authority.Issue("mallory", new Dictionary<string, object> { ["org"] = org + "-other" }));

        var fileId = (await UploadAsync(alice, Jsonl(1))).GetProperty("id").GetString()!;
        var batch = await RunToEndAsync(alice, fileId);
        var batchId = batch.GetProperty("id").GetString()!;

        // The tenant is the organisation claim: a colleague of the same organisation sees the batch, another one gets 404.
        Assert.Contains(batchId, await IdsAsync(bob, "/v1/batches"));
        Assert.Equal(HttpStatusCode.OK, (await bob.GetAsync($"/v1/files/{batch.GetProperty("output_file_id").GetString()}/content", Ct)).StatusCode);
        await (await mallory.GetAsync($"/v1/batches/{batchId}", Ct)).ErrorAsync(HttpStatusCode.NotFound);
        await (await mallory.GetAsync($"/v1/files/{fileId}", Ct)).ErrorAsync(HttpStatusCode.NotFound);
        Assert.DoesNotContain(batchId, await IdsAsync(mallory, "/v1/batches"));

        // An expired token is refused before anything reaches a replica.
        using var expired = gateway.Client(authority.Issue("alice", new Dictionary<string, object> { ["org"] = org }, lifetime: TimeSpan.FromMinutes(-10)));
        await (await expired.GetAsync($"/v1/batches/{batchId}", Ct)).ErrorAsync(HttpStatusCode.Unauthorized);
    }

    /// <summary><paramref name="count"/> completion requests for <paramref name="model"/>, one JSONL line each.</summary>
    internal static string Jsonl(int count, string model = BatchEngines.Model) => string.Concat(Enumerable.Range(0, count).Select(i => JsonSerializer.Serialize(new
    {
        custom_id = $"r{i}",
        method = "POST",
        url = "/v1/completions",
        body = new { model, prompt = "Once upon a time", max_tokens = 8, temperature = 0 },
    }) + "\n"));

    internal static MultipartFormDataContent Form(string jsonl) => new()
    {
        { new StringContent("batch"), "purpose" },
        { new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl)), "file", "input.jsonl" },
    };

    internal static async Task<JsonElement> UploadAsync(HttpClient client, string jsonl) =>
        await (await client.PostAsync("/v1/files", Form(jsonl), Ct)).JsonAsync(HttpStatusCode.OK);

    /// <summary>Creates a batch of <paramref name="fileId"/> and waits for it to finish.</summary>
    internal static async Task<JsonElement> RunToEndAsync(HttpClient client, string fileId)
    {
        var created = await (await client.PostAsJsonAsync("/v1/batches",
            new { input_file_id = fileId, endpoint = "/v1/completions", completion_window = "24h" }, Ct)).JsonAsync(HttpStatusCode.OK);
        var done = await WaitAsync(client, created.GetProperty("id").GetString()!);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        return done;
    }

    /// <summary>Reads the batch until it is in a terminal state (which persists), for at most two minutes.</summary>
    internal static async Task<JsonElement> WaitAsync(HttpClient client, string batchId)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            var batch = await (await client.GetAsync($"/v1/batches/{batchId}", Ct)).JsonAsync(HttpStatusCode.OK);
            if (batch.GetProperty("status").GetString() is "completed" or "failed" or "cancelled" or "expired")
            {
                return batch;
            }

            Assert.True(DateTime.UtcNow < deadline, $"batch {batchId} is still {batch.GetProperty("status")} after 2 minutes");
            await Task.Delay(100, Ct);
        }
    }

    internal static async Task<List<string>> IdsAsync(HttpClient client, string path)
    {
        var list = await (await client.GetAsync(path, Ct)).JsonAsync(HttpStatusCode.OK);
        return [.. list.GetProperty("data").EnumerateArray().Select(item => item.GetProperty("id").GetString()!)];
    }

    /// <summary>Each replica's tag, as it names it in its answers.</summary>
    internal static async Task<List<string>> TagsAsync(BatchEngines engines)
    {
        using var http = new HttpClient();
        var tags = new List<string>();
        foreach (var address in engines.Addresses)
        {
            using var response = await http.GetAsync(address.TrimEnd('/') + "/v1/models", Ct);
            tags.Add(response.Header(BatchIds.ReplicaHeader)!);
        }

        Assert.Equal(tags.Count, tags.Distinct().Count());
        return tags;
    }

    /// <summary>A call straight to one replica, for <paramref name="tenant"/> (as the gateway makes it).</summary>
    internal static async Task<HttpStatusCode> DirectStatusAsync(string address, string path, string tenant)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, address.TrimEnd('/') + path);
        request.Headers.Add(TenantHeaders.TenantHeader, tenant);
        using var response = await http.SendAsync(request, Ct);
        return response.StatusCode;
    }
}

/// <summary>
/// One of two replicas stops: its ids answer 503 (never a 404 that would say they are gone), the other replica's ids and
/// new uploads are served, and lists carry what is reachable and say how many replicas are missing.
/// </summary>
public sealed class BatchReplicaOutageTests(TestStack stack)
{
    [Fact]
    public async Task A_stopped_replica_makes_only_its_own_ids_unavailable()
    {
        await using var engines = await BatchEngines.StartAsync(stack, replicas: 2);
        using var client = await engines.Gateway.ClientForNewKeyAsync("batch-outage");
        var tags = await BatchApiTests.TagsAsync(engines);
        var fileByReplica = new Dictionary<string, string>();
        var uploaded = new List<(string Id, string Tag)>();
        for (var i = 0; i < 40 && fileByReplica.Count < 2; i++)
        {
            var id = (await BatchApiTests.UploadAsync(client, BatchApiTests.Jsonl(1))).GetProperty("id").GetString()!;
            BatchIds.TryParse(id, out _, out var tag);
            fileByReplica.TryAdd(tag, id);
            uploaded.Add((id, tag));
        }

        Assert.Equal(2, fileByReplica.Count);
        await engines.StopAsync(1);
        var (down, up) = (fileByReplica[tags[1]], fileByReplica[tags[0]]);

        using var unavailable = await client.GetAsync($"/v1/files/{down}");
        var error = await unavailable.ErrorAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Equal("upstream_unavailable", error.GetProperty("code").GetString());
        Assert.NotNull(unavailable.Headers.RetryAfter);
        await (await client.PostAsJsonAsync("/v1/batches", new { input_file_id = down, endpoint = "/v1/completions", completion_window = "24h" }))
            .ErrorAsync(HttpStatusCode.ServiceUnavailable);

        await (await client.GetAsync($"/v1/files/{up}")).JsonAsync(HttpStatusCode.OK);
        using var list = await client.GetAsync("/v1/files");
        Assert.Equal(uploaded.Where(u => u.Tag == tags[0]).Select(u => u.Id).OrderByDescending(BatchApiTests.SortKeyOf, StringComparer.Ordinal),
            (await list.JsonAsync(HttpStatusCode.OK)).GetProperty("data").EnumerateArray().Select(f => f.GetProperty("id").GetString()));
        Assert.Equal("1", list.Header(BatchApiEndpoints.UnreachableHeader));

        // New work goes to the replica that is up.
        var fresh = (await BatchApiTests.UploadAsync(client, BatchApiTests.Jsonl(1))).GetProperty("id").GetString()!;
        BatchIds.TryParse(fresh, out _, out var freshTag);
        Assert.Equal(tags[0], freshTag);
        var done = await BatchApiTests.RunToEndAsync(client, fresh);
        Assert.Equal(1, done.GetProperty("request_counts").GetProperty("completed").GetInt32());
    }
}
