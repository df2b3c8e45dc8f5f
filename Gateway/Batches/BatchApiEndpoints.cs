using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Limits;
using AspireAi.Gateway.Replicas;
using AspireAi.Gateway.Usage;
using AspireAi.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Batches;

/// <summary>
/// OpenAI's Files and Batch APIs through the gateway, for the authenticated caller's tenant, over every inference replica.
/// <list type="bullet">
/// <item><b>Tenant scoping lives in Inference</b>: the gateway sends the caller's tenant (<c>X-AspireAi-Tenant</c>, which it
/// always sets itself), Inference stores it with each file and batch and answers another tenant's id exactly as a missing
/// one (404). The data and its owner stay in one place, so a direct call to Inference, a restart or a second gateway replica
/// cannot see it differently, and the gateway keeps no per-object state.</item>
/// <item><b>Replica affinity from the ids</b>: each id carries the tag of the replica that made it (<see cref="BatchIds"/>);
/// a file's batch is created on the file's replica, and its output files are written there. Calls for an id go to the
/// replica of its tag (<see cref="BatchReplicaDirectory"/>); if that replica is down the answer is 503 for its ids only.</item>
/// <item><b>Lists</b> ask every replica for the same page and merge by the ids' time-ordered keys; a replica that does not
/// answer is left out and named in <c>x-aspireai-unreachable-replicas</c> (all of them unreachable: 503).</item>
/// </list>
/// Each call passes the <c>inference</c> scope check and the key's request rate limit and is recorded in usage; a finished
/// batch's tokens are charged once (<see cref="BatchUsageCharger"/>).
/// </summary>
internal static class BatchApiEndpoints
{
    public const string UnreachableHeader = "x-aspireai-unreachable-replicas";

    public static void MapBatchApiEndpoints(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").RequireAuthorization();
        v1.MapPost("/files", (HttpContext context) => GatedAsync(context, caller => UploadAsync(context, caller)));
        v1.MapGet("/files", (HttpContext context) => GatedAsync(context, caller =>
            ListAsync(context, caller, "v1/files", BatchListQuery.MaxFileLimit, BatchListQuery.MaxFileLimit, allowOrder: true, batches: false)));
        v1.MapGet("/files/{id}", (string id, HttpContext context) => GatedAsync(context, caller =>
            ByIdAsync(context, caller, id, HttpMethod.Get, $"v1/files/{Uri.EscapeDataString(id)}", Kind.File)));
        v1.MapGet("/files/{id}/content", (string id, HttpContext context) => GatedAsync(context, caller =>
            ByIdAsync(context, caller, id, HttpMethod.Get, $"v1/files/{Uri.EscapeDataString(id)}/content", Kind.File)));
        v1.MapDelete("/files/{id}", (string id, HttpContext context) => GatedAsync(context, caller =>
            ByIdAsync(context, caller, id, HttpMethod.Delete, $"v1/files/{Uri.EscapeDataString(id)}", Kind.File)));

        v1.MapPost("/batches", (HttpContext context) => GatedAsync(context, caller => CreateBatchAsync(context, caller)));
        v1.MapGet("/batches", (HttpContext context) => GatedAsync(context, caller =>
            ListAsync(context, caller, "v1/batches", BatchListQuery.DefaultBatchLimit, BatchListQuery.MaxBatchLimit, allowOrder: false, batches: true)));
        v1.MapGet("/batches/{id}", (string id, HttpContext context) => GatedAsync(context, caller =>
            ByIdAsync(context, caller, id, HttpMethod.Get, $"v1/batches/{Uri.EscapeDataString(id)}", Kind.Batch)));
        v1.MapPost("/batches/{id}/cancel", (string id, HttpContext context) => GatedAsync(context, caller =>
            ByIdAsync(context, caller, id, HttpMethod.Post, $"v1/batches/{Uri.EscapeDataString(id)}/cancel", Kind.Batch)));
    }

    private enum Kind
    {
        File,
        Batch,
    }

    /// <summary>Scope check, request rate limit and usage record around one Batch API call, as for the other proxied routes.</summary>
    private static async Task GatedAsync(HttpContext context, Func<Caller, Task> handle)
    {
        var started = Stopwatch.GetTimestamp();
        var caller = Caller.Of(context);
        var services = context.RequestServices;
        try
        {
            if (!caller.HasScope("inference"))
            {
                await OpenAiError.WriteAsync(context, 403, $"This key lacks the 'inference' scope needed for {context.Request.Path}.", code: "insufficient_scope");
                return;
            }

            var decision = await services.GetRequiredService<ILimiter>().AdmitAsync(caller);
            RateLimitHeaders.Write(context.Response, decision);
            if (!decision.Allowed)
            {
                services.GetRequiredService<GatewayMetrics>().RateLimited(decision.Refused.ToString().ToLowerInvariant());
                await RateLimitHeaders.Refusal(decision).ExecuteAsync(context);
                return;
            }

            await handle(caller);
        }
        finally
        {
            services.GetRequiredService<UsageWriter>().Record(new UsageRecord(DateTimeOffset.UtcNow, caller.KeyId, caller.Tenant,
                context.Request.Path.Value ?? "", null, 0, 0, Stopwatch.GetElapsedTime(started).TotalMilliseconds, context.Response.StatusCode, null));
        }
    }

    private static Task NotFound(HttpContext context, Kind kind, string id) => kind == Kind.File
        ? OpenAiError.WriteAsync(context, 404, $"No file with id '{id}'.", "file_id", "file_not_found")
        : OpenAiError.WriteAsync(context, 404, $"No batch with id '{id}'.", "batch_id", "batch_not_found");

    private static Task Unavailable(HttpContext context, string what) =>
        Unavailable503(context, $"The inference replica that holds {what} is not reachable now; try again shortly.");

    private static Task Unavailable503(HttpContext context, string message)
    {
        var breakSeconds = context.RequestServices.GetRequiredService<IOptions<GatewayOptions>>().Value.Replicas.BreakSeconds;
        context.Response.Headers.RetryAfter = Math.Ceiling(breakSeconds).ToString(CultureInfo.InvariantCulture);
        return OpenAiError.WriteAsync(context, 503, message, code: "upstream_unavailable");
    }

    /// <summary>The replica holding the objects of <paramref name="id"/>'s tag, or null once a 404/503 has been written.</summary>
    private static async Task<Replica?> LocateAsync(HttpContext context, string id, Func<Task> notFound, string what)
    {
        if (!BatchIds.TryParse(id, out _, out var tag))
        {
            await notFound(); // not an id this API made
            return null;
        }

        var (result, replica) = await context.RequestServices.GetRequiredService<BatchReplicaDirectory>().LocateAsync(tag, context.RequestAborted);
        switch (result)
        {
            case TagLookup.Found:
                return replica;
            case TagLookup.Unknown:
                await notFound(); // every replica answered and none has the tag
                return null;
            default:
                await Unavailable(context, what);
                return null;
        }
    }

    private static async Task ByIdAsync(HttpContext context, Caller caller, string id, HttpMethod method, string path, Kind kind)
    {
        var what = $"'{id}'";
        if (await LocateAsync(context, id, () => NotFound(context, kind, id), what) is not { } replica)
        {
            return;
        }

        var upstream = context.RequestServices.GetRequiredService<BatchUpstream>();
        using var response = await upstream.SendAsync(replica, caller, new HttpRequestMessage(method, path), context.RequestAborted);
        if (response is null)
        {
            await Unavailable(context, what);
            return;
        }

        if (kind == Kind.Batch && response.IsSuccessStatusCode)
        {
            // Charged before the answer is written, so a client that sees the batch finished sees its tokens counted too.
            var body = await response.Content.ReadAsByteArrayAsync(context.RequestAborted);
            using (var batch = JsonDocument.Parse(body))
            {
                await context.RequestServices.GetRequiredService<BatchUsageCharger>().ObserveAsync(caller, [batch.RootElement]);
            }

            await BatchUpstream.WriteAsync(response, body, context);
            return;
        }

        await BatchUpstream.CopyAsync(response, context); // file content streams through
    }

    /// <summary>POST /v1/batches: to the replica holding the input file, so the batch and its file are in one state folder.</summary>
    private static async Task CreateBatchAsync(HttpContext context, Caller caller)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<GatewayOptions>>().Value;
        var bytes = await Routing.ModelRequestHandler.ReadBodyAsync(context.Request, options.Validation.MaxBodyBytes, context.RequestAborted);
        if (bytes is null)
        {
            await OpenAiError.WriteAsync(context, 413,
                $"The request body is larger than the gateway's limit of {options.Validation.MaxBodyBytes} bytes (Gateway:Validation:MaxBodyBytes).");
            return;
        }

        string? inputFileId;
        try
        {
            using var document = JsonDocument.Parse(bytes);
            inputFileId = document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("input_file_id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
        }
        catch (JsonException e)
        {
            await OpenAiError.WriteAsync(context, 400, $"The request body is not valid JSON: {e.Message}", "body");
            return;
        }

        if (inputFileId is null)
        {
            await OpenAiError.WriteAsync(context, 400, "Missing required parameter: 'input_file_id' (a string: the id of an uploaded batch file).",
                "input_file_id", "invalid_value");
            return;
        }

        var notUploaded = () => OpenAiError.WriteAsync(context, 400, $"Invalid 'input_file_id': '{inputFileId}' is not an uploaded file.",
            "input_file_id", "invalid_value");
        if (await LocateAsync(context, inputFileId, notUploaded, $"the file '{inputFileId}'") is not { } replica)
        {
            return;
        }

        var request = new HttpRequestMessage(HttpMethod.Post, "v1/batches") { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new("application/json");
        using var response = await context.RequestServices.GetRequiredService<BatchUpstream>().SendAsync(replica, caller, request, context.RequestAborted);
        if (response is null)
        {
            await Unavailable(context, $"the file '{inputFileId}'");
            return;
        }

        await BatchUpstream.CopyAsync(response, context);
    }

    /// <summary>
    /// POST /v1/files: the file goes to the least busy replica of the deployment serving its models (<see cref="BatchFilePlacer"/>);
    /// a replica that cannot be reached or answers 503 before taking it is replaced by another.
    /// </summary>
    private static async Task UploadAsync(HttpContext context, Caller caller)
    {
        var services = context.RequestServices;
        if (!context.Request.HasFormContentType)
        {
            await OpenAiError.WriteAsync(context, 400, "Upload a file as multipart/form-data with fields 'file' and 'purpose'.", "file", "invalid_value");
            return;
        }

        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        var purpose = form["purpose"].ToString();
        if (form.Files.GetFile("file") is not { } file)
        {
            await OpenAiError.WriteAsync(context, 400, "Invalid file upload: 'file' is required.", "file", "invalid_value");
            return;
        }

        byte[] content;
        using (var buffer = new MemoryStream())
        {
            await file.CopyToAsync(buffer, context.RequestAborted);
            content = buffer.ToArray();
        }

        var (placement, error) = await services.GetRequiredService<BatchFilePlacer>().PlaceAsync(caller, content, context.RequestAborted);
        if (error is { } refused)
        {
            await OpenAiError.WriteAsync(context, refused.Status, refused.Message, "file", refused.Code);
            return;
        }

        var options = services.GetRequiredService<IOptions<GatewayOptions>>().Value;
        var replicas = await services.GetRequiredService<ReplicaRegistry>().For(placement!.Service).GetAsync(context.RequestAborted);
        var upstream = services.GetRequiredService<BatchUpstream>();
        var tried = new List<Replica>();
        while (ReplicaSelector.Select(replicas, null, options.Replicas.AffinitySlack, tried) is { } replica)
        {
            tried.Add(replica);
            var request = new HttpRequestMessage(HttpMethod.Post, "v1/files")
            {
                Content = new MultipartFormDataContent
                {
                    { new StringContent(purpose), "purpose" },
                    { new ByteArrayContent(placement.Content), "file", file.FileName },
                },
            };
            using var response = await upstream.SendAsync(replica, caller, request, context.RequestAborted);
            if (response is null || (response.StatusCode == HttpStatusCode.ServiceUnavailable && tried.Count < replicas.Count))
            {
                continue;
            }

            await BatchUpstream.CopyAsync(response, context);
            return;
        }

        await Unavailable503(context, "No inference replica of the file's deployment could take the upload; try again shortly.");
    }

    /// <summary>
    /// A list merged from every replica: each is asked for the same page (same <c>limit</c>, <c>after</c>, <c>order</c>,
    /// <c>purpose</c>), since any of its items may belong on the merged page; the merged page is the first <c>limit</c> of
    /// them in key order, and more follow if any replica had more or more were returned than fit.
    /// </summary>
    private static async Task ListAsync(HttpContext context, Caller caller, string path, int defaultLimit, int maxLimit, bool allowOrder, bool batches)
    {
        if (BatchListQuery.Read(context.Request.Query, defaultLimit, maxLimit, allowOrder, out var invalid) is not { } query)
        {
            await invalid!.ExecuteAsync(context);
            return;
        }

        var services = context.RequestServices;
        var replicas = await services.GetRequiredService<BatchReplicaDirectory>().AllAsync(context.RequestAborted);
        var upstream = services.GetRequiredService<BatchUpstream>();
        var pages = await Task.WhenAll(replicas.Select(async replica =>
        {
            using var response = await upstream.SendAsync(replica, caller, new HttpRequestMessage(HttpMethod.Get, path + context.Request.QueryString), context.RequestAborted);
            if (response is null || !response.IsSuccessStatusCode)
            {
                return null;
            }

            try
            {
                return JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(context.RequestAborted));
            }
            catch (JsonException)
            {
                return null; // not an Inference list: counted as a replica that did not answer
            }
        }));

        try
        {
            var answered = pages.OfType<JsonDocument>().ToList();
            if (answered.Count == 0)
            {
                await Unavailable503(context, "No inference replica answered; try again shortly.");
                return;
            }

            var items = answered.SelectMany(p => p.RootElement.GetProperty("data").EnumerateArray());
            var page = query.Page(items, SortKey, out var hasMore);
            hasMore |= answered.Any(p => p.RootElement.TryGetProperty("has_more", out var more) && more.ValueKind == JsonValueKind.True);
            if (answered.Count < pages.Length)
            {
                context.Response.Headers[UnreachableHeader] = (pages.Length - answered.Count).ToString(CultureInfo.InvariantCulture);
            }

            if (batches)
            {
                await services.GetRequiredService<BatchUsageCharger>().ObserveAsync(caller, page);
            }

            await Results.Json(new
            {
                @object = "list",
                data = page,
                first_id = page.Count > 0 ? page[0].GetProperty("id").GetString() : null,
                last_id = page.Count > 0 ? page[^1].GetProperty("id").GetString() : null,
                has_more = hasMore,
            }).ExecuteAsync(context);
        }
        finally
        {
            foreach (var document in pages)
            {
                document?.Dispose();
            }
        }
    }

    private static string SortKey(JsonElement item) =>
        BatchIds.SortKey(item.GetProperty("id").GetString() ?? "", item.TryGetProperty("created_at", out var created) && created.TryGetInt64(out var at) ? at : 0);

}
